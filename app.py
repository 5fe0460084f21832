"""Entry point: `python app.py` starts the clinical guideline assistant in the browser.

Also the app file of the Hugging Face Space. Settings come from assistant.toml and ASSISTANT_*
environment variables (GRADIO_SERVER_NAME / GRADIO_SERVER_PORT are honoured too); see the README.
"""
from __future__ import annotations

import logging
import os
import shutil

from starlette.middleware import Middleware

from assistant import datalock
from assistant.config import load_settings
from assistant.display import CSS
from assistant.login_guard import LoginThrottle
from assistant.service import build_assistant, configure_logging
from assistant.startup import start_background
from assistant.ui import build_ui

log = logging.getLogger("app")


def main() -> None:
    configure_logging()
    settings = load_settings()
    if not settings.chroma_host:  # before seconds of model loading: is the data folder free?
        try:
            datalock.acquire(settings.data_dir)
        except datalock.DataFolderBusy as error:
            log.error("%s", error)
            raise SystemExit(2) from None
    # Uploads in transit live under data_dir too, emptied at each start (the library keeps its own copies). A
    # GRADIO_TEMP_DIR the operator set is used as it is and never emptied: it may be shared.
    if not os.environ.get("GRADIO_TEMP_DIR"):
        shutil.rmtree(settings.uploads_dir, ignore_errors=True)
        settings.uploads_dir.mkdir(parents=True, exist_ok=True)
        os.environ["GRADIO_TEMP_DIR"] = str(settings.uploads_dir)
    assistant = build_assistant(settings)
    startup = start_background(assistant)
    demo = build_ui(assistant, startup)
    demo.queue(default_concurrency_limit=settings.concurrency_limit, max_size=settings.queue_size or None)
    auth = (settings.auth_user, settings.auth_password) if settings.auth_user else None
    if settings.server_name not in ("127.0.0.1", "localhost") and not auth:
        log.warning("Listening on %s without a login: anyone who can reach this address can use the app. "
                    "Set ASSISTANT_AUTH_USER and ASSISTANT_AUTH_PASSWORD for a shared deployment.",
                    settings.server_name)
    throttle = Middleware(LoginThrottle, attempts=settings.login_attempts,
                          window_seconds=settings.login_window_seconds)
    demo.launch(server_name=settings.server_name, server_port=settings.server_port, auth=auth, css=CSS,
                show_error=False, footer_links=["api"], max_file_size=int(settings.max_file_mb * 1_000_000),
                app_kwargs={"middleware": [throttle]},
                allowed_paths=[str(settings.files_dir)])  # the stored PDFs, opened at a page from evidence cards


if __name__ == "__main__":
    main()
