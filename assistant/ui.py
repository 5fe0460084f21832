"""The Gradio app: chat with an evidence panel, the library, model status, and the named API endpoints.

Thin by design: each tab is laid out by one function, and every event calls a plain function of
assistant.handlers; this module only turns their results into component updates and their
AssistantError into Gradio's messages.
"""
from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import gradio as gr
from gradio.data_classes import FileData

from . import handlers
from .answering import DISCLAIMER
from .display import answer_markdown, documents_rows, evidence_cards
from .errors import AssistantError
from .records import Answer
from .service import Assistant
from .startup import StartupState

log = logging.getLogger(__name__)

MAX_CARDS = 10
EXAMPLES = [
    "What clinic blood pressure confirms stage 1 hypertension, and how is the diagnosis confirmed?",
    "Which antibiotic is first choice for a lower UTI in a non-pregnant woman, and for how long?",
    "How should severe malaria be treated in adults?",
    "Which features make a child under 5 with fever high risk for serious illness?",
    "When should an SGLT2 inhibitor be offered in type 2 diabetes?",
]


@dataclass
class AskTab:
    question: gr.Textbox
    chatbot: gr.Chatbot
    conversation: gr.State
    last_answer: gr.State
    evidence: gr.HTML
    page_buttons: list[gr.Button]
    page_image: gr.Image
    restrict: gr.Dropdown
    settings: list[Any]  # top-k, temperature, max tokens
    send: gr.Button
    clear: gr.Button


@dataclass
class LibraryTab:
    uploads: gr.File
    index_button: gr.Button
    results: gr.Dataframe
    documents: gr.Dataframe
    to_delete: gr.Dropdown
    delete_button: gr.Button
    reindex_button: gr.Button
    replace: gr.Checkbox


def _ask_layout(assistant: Assistant) -> AskTab:
    settings = assistant.settings
    with gr.Row():
        with gr.Column(scale=3):
            chatbot = gr.Chatbot(height=520, label="Conversation", sanitize_html=True,
                                 placeholder="Ask a clinical question about the guidelines in the library. "
                                             "If the library is empty, upload PDFs in the Library tab.")
            question = gr.Textbox(placeholder="e.g. What is the first-line treatment for ...?", show_label=False,
                                  lines=2, max_lines=6, elem_id="question")
            with gr.Row():
                send = gr.Button("Ask", variant="primary", elem_id="ask-button")
                clear = gr.Button("New conversation")
            gr.Examples(EXAMPLES, inputs=question, label="Examples (sample guidelines)")
            with gr.Accordion("Settings", open=False):
                top_k = gr.Slider(1, 10, value=settings.top_k, step=1, label="Passages (top-k)")
                temperature = gr.Slider(0.0, 1.5, value=settings.temperature, step=0.1,
                                        label="Temperature (0 = deterministic)")
                max_tokens = gr.Slider(32, 512, value=settings.max_new_tokens, step=16, label="Maximum new tokens")
                restrict = gr.Dropdown(handlers.document_names(assistant), multiselect=True, value=[],
                                       label="Search only these documents (empty = all)")
        with gr.Column(scale=2):
            gr.Markdown("### Evidence")
            evidence = gr.HTML(evidence_cards(None), elem_id="evidence-panel")
            with gr.Row():
                buttons = [gr.Button(f"Page of [{i + 1}]", size="sm", visible=False) for i in range(MAX_CARDS)]
            page_image = gr.Image(visible=False, label="Page", interactive=False, type="pil", elem_id="page-preview")
    return AskTab(question, chatbot, gr.State([]), gr.State(None), evidence, buttons, page_image, restrict,
                  [top_k, temperature, max_tokens], send, clear)


def _respond(assistant: Assistant, message: str, chat: list, conversation: list, top_k: float, temperature: float,
             max_tokens: float, restrict: list[str]) -> Iterator[tuple]:
    """The chat turn: the question shown at once, then the answer and its evidence as they grow."""
    chat = [*(chat or []), {"role": "user", "content": message},
            {"role": "assistant", "content": "Searching the guidelines..."}]
    conversation = list(conversation or [])
    yield chat, conversation, gr.update(), None, gr.update(value="")
    answer: Answer | None = None

    def stored(doc_id: str) -> str:
        path = assistant.library.file_path(doc_id)
        return str(path) if path.is_file() else ""

    try:
        for answer in handlers.chat(assistant, message, conversation, top_k, temperature, max_tokens, restrict):
            chat[-1] = {"role": "assistant", "content": answer_markdown(answer.text, len(answer.evidence))}
            yield chat, conversation, evidence_cards(answer, stored), answer.as_dict(), gr.update()
    except AssistantError as error:
        gr.Warning(str(error))
        yield chat[:-2], conversation, gr.update(), None, gr.update(value=message)
        return
    if answer is not None:
        conversation.append((answer.question, answer.text))
        yield chat, conversation, evidence_cards(answer, stored), answer.as_dict(), gr.update()


def _page_buttons(answer: dict | None) -> list:
    count = len((answer or {}).get("evidence", []))
    return [gr.update(visible=i < count, value=f"Page of [{i + 1}]") for i in range(MAX_CARDS)]


def _show_page(assistant: Assistant, number: int, answer: dict | None) -> Any:
    try:
        page = handlers.page_image(assistant, answer, number)
    except AssistantError as error:
        gr.Warning(str(error))
        return gr.update(visible=False)
    except Exception:  # a PDF PDFium cannot draw: say so rather than show Gradio's bare "Error"
        log.exception("Could not draw page of evidence [%d]", number)
        gr.Warning("This page could not be drawn. Open the PDF from the evidence card's page link instead.")
        return gr.update(visible=False)
    if page is None:
        return gr.update(visible=False)
    return gr.update(value=page[0], visible=True, label=page[1])


def _wire_ask(assistant: Assistant, tab: AskTab) -> None:
    inputs = [tab.question, tab.chatbot, tab.conversation, *tab.settings, tab.restrict]
    outputs = [tab.chatbot, tab.conversation, tab.evidence, tab.last_answer, tab.question]
    for trigger in (tab.send.click, tab.question.submit):
        trigger(partial(_respond, assistant), inputs, outputs, concurrency_id="answer",
                concurrency_limit=_answer_slots(assistant), api_visibility="private") \
            .then(_page_buttons, tab.last_answer, tab.page_buttons, api_visibility="private")
    cleared = [tab.chatbot, tab.conversation, tab.evidence, tab.last_answer, tab.page_image]
    tab.clear.click(lambda: ([], [], evidence_cards(None), None, gr.update(visible=False)), None, cleared,
                    api_visibility="private") \
        .then(_page_buttons, tab.last_answer, tab.page_buttons, api_visibility="private")
    for number, button in enumerate(tab.page_buttons, 1):
        button.click(partial(_show_page, assistant, number), tab.last_answer, tab.page_image, api_visibility="private")


def _library_layout(assistant: Assistant) -> LibraryTab:
    names = handlers.document_names(assistant)
    uploads = gr.File(file_count="multiple", file_types=[".pdf"], label="Upload guideline PDFs")
    replace = gr.Checkbox(False, label="Replace documents that have the same file name",
                          info="Unticked, a file whose name is taken is added beside the earlier one as "
                               "'name (2).pdf'; nothing is replaced unless you tick this.")
    index_button = gr.Button("Index uploaded files", variant="primary")
    results = gr.Dataframe(headers=["File", "Result", "Details"], label="Upload results", interactive=False,
                           wrap=True)
    documents = gr.Dataframe(documents_rows(assistant.library.documents()), label="Indexed documents",
                             headers=["Title", "File", "Pages", "Passages", "Added", "Read by OCR"],
                             interactive=False, wrap=True)
    with gr.Row():
        to_delete = gr.Dropdown(names, label="Document", scale=3)
        delete_button = gr.Button("Delete", variant="stop", scale=1)
        reindex_button = gr.Button("Re-index all", scale=1)
    return LibraryTab(uploads, index_button, results, documents, to_delete, delete_button, reindex_button, replace)


def _wire_library(assistant: Assistant, tab: LibraryTab, restrict: gr.Dropdown) -> None:
    def choices() -> dict:
        return gr.update(choices=handlers.document_names(assistant))

    def rows() -> list[list[object]]:
        return documents_rows(assistant.library.documents())

    def on_upload(files: list[str] | None, replace: bool, progress: gr.Progress = gr.Progress()) -> tuple:
        try:
            results = handlers.upload_many(assistant, files or [], lambda f, m: progress(f, desc=m), bool(replace))
        finally:
            for path in files or []:
                handlers.discard_upload(path, _upload_root())
        return results, rows(), choices(), choices()

    def on_delete(name: str | None) -> tuple:
        if not name:
            gr.Warning("Choose a document to delete.")
        elif handlers.delete(assistant, name)["deleted"]:
            gr.Info(f"Deleted {name}.")
        return rows(), gr.update(choices=handlers.document_names(assistant), value=None), choices()

    def on_reindex(progress: gr.Progress = gr.Progress()) -> tuple:
        return handlers.reindex(assistant, lambda f, m: progress(f, desc=m)), rows()

    tab.index_button.click(on_upload, [tab.uploads, tab.replace], [tab.results, tab.documents, tab.to_delete, restrict],
                           concurrency_id="library", concurrency_limit=1, api_visibility="private")
    tab.delete_button.click(on_delete, tab.to_delete, [tab.documents, tab.to_delete, restrict],
                            concurrency_id="library", api_visibility="private")
    tab.reindex_button.click(on_reindex, None, [tab.results, tab.documents], concurrency_id="library",
                             api_visibility="private")


def _api_endpoints(assistant: Assistant) -> None:
    """The stable API (README): /ask, /upload, /documents, /delete, each a typed function (Gradio reads the
    parameters' type hints, resolved in this module's namespace, to describe the endpoints)."""

    def ask(question: str, top_k: int = assistant.settings.top_k) -> Iterator[tuple[str, dict[str, Any]]]:
        """Answer a question from the library: (answer text, result with evidence), streamed."""
        try:
            yield from handlers.ask(assistant, question, top_k)
        except AssistantError as error:
            raise _caller_error(error) from None

    def upload(file: FileData | None, replace: bool = False) -> dict[str, Any]:
        """Index one guideline PDF; the result says indexed, already indexed, replaced or refused, and why.
        A document with the same file name is replaced only with replace=True; otherwise the new one is added
        beside it under a numbered name."""
        # gr.api hands over the payload as sent (a dict), after checking that its path is an upload
        path = file.get("path") if isinstance(file, dict) else getattr(file, "path", None)
        try:
            return handlers.upload(assistant, path, replace)
        except AssistantError as error:
            raise _caller_error(error) from None
        finally:
            handlers.discard_upload(path, _upload_root())

    def documents() -> list[dict[str, Any]]:
        """Every indexed document."""
        return handlers.documents(assistant)

    def delete(name: str) -> dict[str, Any]:
        """Delete a document by file name or document id."""
        return handlers.delete(assistant, name)

    # Questions run at once up to the queue's size: each gets its evidence immediately, and its summary waits
    # for a turn at the model inside the answerer (assistant.gate), which says its place in line.
    gr.api(ask, api_name="ask", concurrency_id="answer", concurrency_limit=_answer_slots(assistant))
    gr.api(upload, api_name="upload", concurrency_id="library", concurrency_limit=1)
    gr.api(documents, api_name="documents")
    gr.api(delete, api_name="delete", concurrency_id="library")


def _answer_slots(assistant: Assistant) -> int:
    """How many questions Gradio runs at once: all that the queue holds (retrieval is quick; the model's turns
    are given out by the answerer's gate)."""
    return max(assistant.settings.queue_size or 64, assistant.settings.concurrency_limit)


def _caller_error(error: AssistantError) -> gr.Error:
    """A caller's mistake for the API: its message to the caller, one log line here (no traceback: nothing
    in the app failed)."""
    log.info("Refused an API call: %s", error)
    return gr.Error(str(error), print_exception=False)


def _upload_root() -> Path:
    """Gradio's folder for files in transit (GRADIO_TEMP_DIR; app.py points it under data_dir)."""
    from gradio.utils import get_upload_folder

    return Path(get_upload_folder())


def build_ui(assistant: Assistant, startup: StartupState | None = None) -> gr.Blocks:
    """The whole app. `startup` reports background start-up work, when there is any."""
    startup = startup or StartupState(message="", done=True)
    # Gradio also deletes, hourly, uploads older than an hour that no handler took (posted but never submitted).
    with gr.Blocks(title="Clinical guideline assistant", delete_cache=(3600, 3600)) as demo:
        gr.Markdown("## Clinical guideline assistant\nAnswers written from the guideline PDFs in the library, "
                    "with every passage shown beside the answer.")
        gr.HTML(f"<div class='disclaimer'>{DISCLAIMER} When the loaded guidelines do not cover a question, the "
                "assistant says so instead of answering.</div>")
        status = gr.Markdown(startup.message)
        timer = gr.Timer(2.0, active=not startup.done)
        with gr.Tab("Ask"):
            ask_tab = _ask_layout(assistant)
        with gr.Tab("Library"):
            library_tab = _library_layout(assistant)
        with gr.Tab("Model status"):
            model_status = gr.JSON(label="Loaded models")
            refresh = gr.Button("Refresh")

        _wire_ask(assistant, ask_tab)
        _wire_library(assistant, library_tab, ask_tab.restrict)
        refresh.click(partial(handlers.model_status, assistant), None, model_status, api_visibility="private")
        demo.load(partial(handlers.model_status, assistant), None, model_status, api_visibility="private")

        def poll() -> tuple:
            names = gr.update(choices=handlers.document_names(assistant))
            return (startup.message, gr.Timer(active=not startup.done),
                    documents_rows(assistant.library.documents()), names, names)
        polled = [status, timer, library_tab.documents, library_tab.to_delete, ask_tab.restrict]
        timer.tick(poll, None, polled, api_visibility="private")
        demo.load(poll, None, polled, api_visibility="private")
        _api_endpoints(assistant)
    return demo
