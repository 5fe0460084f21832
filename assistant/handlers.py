"""What the app's buttons and API endpoints do, as plain functions of the assistant.

The UI (assistant.ui) only wires these to Gradio components and turns AssistantError into Gradio's
messages, so every behaviour here can be tested without a browser or a server.
"""
from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from .answering import DISCLAIMER
from .documents import ocr_options
from .errors import AssistantError, QuestionError
from .preview import marked_page
from .quotes import quoted_sentences
from .records import Answer, Evidence
from .service import Assistant

log = logging.getLogger(__name__)

MAX_TOP_K = 20


def parse_top_k(value: Any, default: int) -> int:
    """A caller's top_k (number, numeric text or empty) as a whole number of passages, or a clear message."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return default
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise QuestionError(f"top_k must be a whole number of passages from 1 to {MAX_TOP_K} (got {value!r}).") \
            from None
    if not math.isfinite(number) or number != int(number) or not 1 <= number <= MAX_TOP_K:
        raise QuestionError(f"top_k must be a whole number of passages from 1 to {MAX_TOP_K} (got {value!r}).")
    return int(number)


def document_names(assistant: Assistant) -> list[str]:
    return [info.file_name for info in assistant.library.documents()]


def document_ids(assistant: Assistant, names: list[str] | None) -> list[str] | None:
    """The ids of the named documents; None (search everything) when no name is given or none matches."""
    if not names:
        return None
    wanted = set(names)
    return [info.doc_id for info in assistant.library.documents() if info.file_name in wanted] or None


_SERVER_PATH = re.compile(r"(?<![\w.])/(?:[^\s/,;:'\"]+/)+([^\s/,;:'\"]+)")


def without_server_paths(value: Any) -> Any:
    """The same status with every absolute path cut to its last part: visitors learn which model answers, not
    where the server keeps its files."""
    if isinstance(value, dict):
        return {key: without_server_paths(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [without_server_paths(item) for item in value]
    if isinstance(value, (str, Path)):
        return _SERVER_PATH.sub(r"\1", str(value))
    return value


def model_status(assistant: Assistant) -> dict[str, Any]:
    """The Model status tab: what answers and retrieves, without server paths."""
    return without_server_paths(assistant.model_status())


def answer_payload(answer: Answer) -> dict[str, Any]:
    """The /ask result: the answer record, the answer text under `answer`, and the disclaimer."""
    payload = answer.as_dict()
    payload["models"] = without_server_paths(payload.get("models", {}))
    payload["answer"] = answer.text
    payload["disclaimer"] = DISCLAIMER
    return payload


def ask(assistant: Assistant, question: str, top_k: Any = None) -> Iterator[tuple[str, dict[str, Any]]]:
    """/ask: (answer text, result) as the answer grows. Raises AssistantError for a question that cannot be asked."""
    k = parse_top_k(top_k, assistant.settings.top_k)
    for answer in assistant.answerer.ask_stream(question, top_k=k):
        yield answer.text, answer_payload(answer)


def chat(assistant: Assistant, message: str, conversation: list[tuple[str, str]], top_k: float,
         temperature: float, max_tokens: float, restrict: list[str] | None) -> Iterator[Answer]:
    """The chat box: the answer as it grows, with the conversation so far folded into follow-ups."""
    history = [(question, answer) for question, answer in conversation if question and answer]
    yield from assistant.answerer.ask_stream(message, history=history, top_k=int(top_k),
                                             doc_ids=document_ids(assistant, restrict),
                                             temperature=float(temperature), max_new_tokens=int(max_tokens))


def upload(assistant: Assistant, path: str | None, replace: Any = False) -> dict[str, Any]:
    """/upload: one PDF; the result says indexed, already indexed, replaced or refused, and why. Replacing a
    same-named document happens only when asked (`replace`)."""
    if not path:
        raise AssistantError("No file was sent: pass one PDF.")
    if not isinstance(replace, bool):
        raise AssistantError(f"replace must be true or false (got {replace!r}).")
    result = assistant.library.add_path(Path(path), replace=replace).as_dict()
    result["file"] = result["file_name"]
    return result


def upload_many(assistant: Assistant, paths: list[str], progress: Callable[[float, str], None],
                replace: bool = False) -> list[list[str]]:
    """The Library tab: one result row (file, result, details) per file; a store failure on one file is reported
    and the others go on."""
    rows = []
    for number, path in enumerate(paths, 1):
        name = Path(path).name

        def report(fraction: float, message: str, number: int = number, name: str = name) -> None:
            progress(((number - 1) + fraction) / len(paths), f"{name}: {message}")
        try:
            result = assistant.library.add_path(Path(path), report, replace)
            rows.append([result.file_name, result.status, result.message])
        except Exception:
            log.exception("Upload of %s failed", name)
            rows.append([name, "failed", "The library could not save this file (nothing of it was kept). "
                                         "Try again; if it keeps failing, check the server log."])
    return rows


def discard_upload(path: str | None, upload_root: Path) -> None:
    """Delete a web upload once the library has read or refused it (the library keeps its own copy), so nothing
    uploaded stays on disk or downloadable after indexing, refusal or deletion. Only files inside the upload
    folder are touched, with the per-upload folder the web server made for them."""
    if not path:
        return
    file, root = Path(path).resolve(), upload_root.resolve()
    if root not in file.parents:
        return
    file.unlink(missing_ok=True)
    folder = file.parent
    while folder != root and root in folder.parents and not any(folder.iterdir()):
        folder.rmdir()
        folder = folder.parent


def documents(assistant: Assistant) -> list[dict[str, Any]]:
    """/documents: every indexed document."""
    return [info.as_dict() for info in assistant.library.documents()]


def delete(assistant: Assistant, name: str) -> dict[str, Any]:
    """/delete: by file name or document id."""
    return {"deleted": assistant.library.delete(name), "name": name}


def reindex(assistant: Assistant, progress: Callable[[float, str], None]) -> list[list[str]]:
    return [[r.file_name, r.status, r.message] for r in assistant.library.reindex_all(progress)]


def page_image(assistant: Assistant, answer: dict[str, Any] | None, number: int) -> tuple[Any, str] | None:
    """The PDF page of evidence [number] of the last answer with the passage marked (its quoted sentences more
    strongly), and its caption; None when there is no such card."""
    evidence = (answer or {}).get("evidence", [])
    if not 1 <= number <= len(evidence):
        return None
    item = Evidence(**evidence[number - 1])
    path = assistant.library.file_path(item.doc_id)
    if not path.is_file():
        raise AssistantError("The stored copy of this PDF is missing; upload it again to see its pages.")
    quotes = quoted_sentences((answer or {}).get("text", ""), number)
    image, boxes, _ = marked_page(str(path), item.page, item.text, quotes, ocr_options(assistant.settings),
                                  scanned=item.read_by == "ocr")
    where = "the passage is marked" if boxes else "the passage could not be located on the page"
    return image, f"[{number}] {item.file}, page {item.page}: {where}" + (", the quoted sentence more strongly"
                                                                         if any(b.strong for b in boxes) else "")
