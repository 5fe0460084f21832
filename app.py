"""Entry point: `python app.py` starts the clinical guideline assistant in the browser.

Also the app file of the Hugging Face Space. Settings come from assistant.toml and ASSISTANT_*
environment variables (GRADIO_SERVER_NAME / GRADIO_SERVER_PORT are honoured too); see the README.
"""
from __future__ import annotations

import logging

from assistant import datalock
from assistant.config import load_settings
from assistant.display import CSS
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
    assistant = build_assistant(settings)
    startup = start_background(assistant)
    demo = build_ui(assistant, startup)
    demo.queue(default_concurrency_limit=settings.concurrency_limit)
    auth = (settings.auth_user, settings.auth_password) if settings.auth_user else None
    if settings.server_name not in ("127.0.0.1", "localhost") and not auth:
        log.warning("Listening on %s without a login: anyone who can reach this address can use the app. "
                    "Set ASSISTANT_AUTH_USER and ASSISTANT_AUTH_PASSWORD for a shared deployment.",
                    settings.server_name)
    demo.launch(server_name=settings.server_name, server_port=settings.server_port, auth=auth, css=CSS,
                show_error=False, footer_links=["api"])


if __name__ == "__main__":
    main()
