"""The Gradio app: chat with an evidence panel, the library, model status, and the named API endpoints.

Thin by design: every handler calls the pipeline, the library or display helpers; no retrieval, model or
formatting logic lives here.
"""
from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any, Iterator

import gradio as gr

from .display import CSS, answer_markdown, documents_rows, evidence_cards
from .errors import AssistantError
from .pipeline import DISCLAIMER
from .preview import render_page
from .records import Answer, Evidence
from .service import Assistant

log = logging.getLogger(__name__)

MAX_CARDS = 10
EXAMPLES = [
    "What clinic blood pressure confirms stage 1 hypertension, and how is the diagnosis confirmed?",
    "Which antibiotic is first choice for a lower UTI in a non-pregnant woman, and for how long?",
    "How should severe malaria be treated in adults?",
    "Which features make a child under 5 with fever high risk for serious illness?",
    "When should an SGLT2 inhibitor be offered in type 2 diabetes?",
]


class StartupState:
    """What the page shows while the sample library is indexed and the generator loads."""

    def __init__(self) -> None:
        self.message = "Starting..."
        self.done = False

    def run(self, assistant: Assistant) -> None:
        try:
            settings = assistant.settings

            def progress(fraction: float, message: str) -> None:
                self.message = f"Preparing the library ({fraction:.0%}): {message}"
            results = assistant.library.prepare(settings.guidelines_dir, settings.index_samples_on_start, progress)
            if results:
                log.info("Indexed %d documents at start-up", sum(r.status == "indexed" for r in results))
            self.message = "Loading the answer model..."
            _ = assistant.pipeline
            self.message = ""
        except Exception as error:  # shown in the page; the app stays up for the library
            log.exception("Start-up failed")
            self.message = f"Start-up problem: {error}"
        finally:
            self.done = True


def _history_pairs(conversation: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return [(q, a) for q, a in conversation if q and a]


def build_ui(assistant: Assistant, startup: StartupState | None = None) -> gr.Blocks:
    """The whole app. `startup` reports background start-up work, when there is any."""
    library = assistant.library
    settings = assistant.settings
    startup = startup or StartupState()
    if startup.message == "Starting...":
        startup.message, startup.done = "", True

    def doc_choices() -> list[str]:
        return [info.file_name for info in library.documents()]

    def ids_for(names: list[str] | None) -> list[str] | None:
        if not names:
            return None
        wanted = set(names)
        return [info.doc_id for info in library.documents() if info.file_name in wanted] or None

    # -- chat ---------------------------------------------------------------------------------

    def respond(message: str, chat: list, conversation: list, top_k: float, temperature: float,
                max_tokens: float, restrict: list[str]) -> Iterator[tuple]:
        chat = list(chat or [])
        conversation = list(conversation or [])
        answer: Answer | None = None
        chat.append({"role": "user", "content": message})
        chat.append({"role": "assistant", "content": "Searching the guidelines..."})
        yield chat, conversation, gr.update(), None, gr.update(value="")
        try:
            for answer in assistant.pipeline.ask_stream(
                    message, history=_history_pairs(conversation), top_k=int(top_k), doc_ids=ids_for(restrict),
                    temperature=float(temperature), max_new_tokens=int(max_tokens)):
                chat[-1] = {"role": "assistant", "content": answer_markdown(answer.text, len(answer.evidence))}
                yield chat, conversation, evidence_cards(answer), answer.as_dict(), gr.update()
        except AssistantError as error:
            chat = chat[:-2]
            gr.Warning(str(error))
            yield chat, conversation, gr.update(), None, gr.update(value=message)
            return
        if answer is not None:
            conversation.append((answer.question, answer.text))
            yield chat, conversation, evidence_cards(answer), answer.as_dict(), gr.update()

    def page_buttons(answer: dict | None) -> list:
        evidence = (answer or {}).get("evidence", [])
        return [gr.update(visible=i < len(evidence), value=f"Page of [{i + 1}]") for i in range(MAX_CARDS)]

    def show_page(answer: dict | None, number: int):
        evidence = (answer or {}).get("evidence", [])
        if not 1 <= number <= len(evidence):
            return gr.update(visible=False)
        item = Evidence(**evidence[number - 1])
        path = library.file_path(item.doc_id)
        if not path.is_file():
            gr.Warning("The stored copy of this PDF is missing; upload it again to see its pages.")
            return gr.update(visible=False)
        image = render_page(str(path), item.page)
        return gr.update(value=image, visible=True, label=f"[{number}] {item.file}, page {item.page}")

    # -- library ------------------------------------------------------------------------------

    def on_upload(files: list[str] | None, progress=gr.Progress()) -> tuple:
        rows = []
        for number, path in enumerate(files or [], 1):
            name = Path(path).name
            try:
                result = library.add_path(Path(path), lambda f, m: progress(((number - 1) + f) / len(files),
                                                                            desc=f"{name}: {m}"))
                rows.append([result.file_name, result.status, result.message])
            except Exception:  # the store failed: report this file, go on with the others
                log.exception("Upload of %s failed", name)
                rows.append([name, "failed", "The library could not save this file (nothing of it was kept). "
                                             "Try again; if it keeps failing, check the server log."])
        return rows, documents_rows(library.documents()), gr.update(choices=doc_choices()), \
            gr.update(choices=doc_choices())

    def on_delete(name: str | None) -> tuple:
        if not name:
            gr.Warning("Choose a document to delete.")
        elif library.delete(name):
            gr.Info(f"Deleted {name}.")
        return documents_rows(library.documents()), gr.update(choices=doc_choices(), value=None), \
            gr.update(choices=doc_choices())

    def on_reindex(progress=gr.Progress()) -> tuple:
        results = library.reindex_all(lambda f, m: progress(f, desc=m))
        rows = [[r.file_name, r.status, r.message] for r in results]
        return rows, documents_rows(library.documents())

    # -- API endpoints (stable contract, see README) --------------------------------------------

    def api_ask(question: str, top_k: float | None) -> Iterator[tuple[str, dict]]:
        try:
            for answer in assistant.pipeline.ask_stream(question, top_k=int(top_k or settings.top_k)):
                payload = answer.as_dict()
                payload["answer"] = answer.text
                payload["disclaimer"] = DISCLAIMER
                yield answer.text, payload
        except AssistantError as error:
            raise gr.Error(str(error)) from None

    def api_upload(file: str | None) -> dict[str, Any]:
        if not file:
            raise gr.Error("No file was sent: pass one PDF.")
        result = library.add_path(Path(file)).as_dict()
        result["file"] = result["file_name"]
        return result

    def api_documents() -> list[dict[str, Any]]:
        return [info.as_dict() for info in library.documents()]

    def api_delete(name: str) -> dict[str, Any]:
        return {"deleted": library.delete(name), "name": name}

    # -- layout -------------------------------------------------------------------------------

    with gr.Blocks(title="Clinical guideline assistant") as demo:
        gr.Markdown("## Clinical guideline assistant\nAnswers written from the guideline PDFs in the library, "
                    "with every passage shown beside the answer.")
        gr.HTML(f"<div class='disclaimer'>{DISCLAIMER} When the loaded guidelines do not cover a question, the "
                "assistant says so instead of answering.</div>")
        status = gr.Markdown(startup.message)
        timer = gr.Timer(2.0, active=not startup.done)
        conversation = gr.State([])
        last_answer = gr.State(None)

        with gr.Tab("Ask"):
            with gr.Row():
                with gr.Column(scale=3):
                    chatbot = gr.Chatbot(height=520, label="Conversation", sanitize_html=True,
                                         placeholder="Ask a clinical question about the guidelines in the library. "
                                                     "If the library is empty, upload PDFs in the Library tab.")
                    question = gr.Textbox(placeholder="e.g. What is the first-line treatment for ...?",
                                          show_label=False, lines=2, max_lines=6, elem_id="question")
                    with gr.Row():
                        send = gr.Button("Ask", variant="primary", elem_id="ask-button")
                        clear = gr.Button("New conversation")
                    gr.Examples(EXAMPLES, inputs=question, label="Examples (sample guidelines)")
                    with gr.Accordion("Settings", open=False):
                        top_k = gr.Slider(1, 10, value=settings.top_k, step=1, label="Passages (top-k)")
                        temperature = gr.Slider(0.0, 1.5, value=settings.temperature, step=0.1,
                                                label="Temperature (0 = deterministic)")
                        max_tokens = gr.Slider(32, 512, value=settings.max_new_tokens, step=16,
                                               label="Maximum new tokens")
                        restrict = gr.Dropdown(doc_choices(), multiselect=True, value=[],
                                               label="Search only these documents (empty = all)")
                with gr.Column(scale=2):
                    gr.Markdown("### Evidence")
                    evidence = gr.HTML(evidence_cards(None), elem_id="evidence-panel")
                    with gr.Row():
                        buttons = [gr.Button(f"Page of [{i + 1}]", size="sm", visible=False)
                                   for i in range(MAX_CARDS)]
                    page_image = gr.Image(visible=False, label="Page", interactive=False, type="pil", elem_id="page-preview")

        with gr.Tab("Library"):
            uploads = gr.File(file_count="multiple", file_types=[".pdf"], label="Upload guideline PDFs")
            index_button = gr.Button("Index uploaded files", variant="primary")
            results = gr.Dataframe(headers=["File", "Result", "Details"], label="Upload results",
                                   interactive=False, wrap=True)
            documents = gr.Dataframe(documents_rows(library.documents()), label="Indexed documents",
                                     headers=["Title", "File", "Pages", "Passages", "Added"], interactive=False,
                                     wrap=True)
            with gr.Row():
                to_delete = gr.Dropdown(doc_choices(), label="Document", scale=3)
                delete_button = gr.Button("Delete", variant="stop", scale=1)
                reindex_button = gr.Button("Re-index all", scale=1)

        with gr.Tab("Model status"):
            model_status = gr.JSON(label="Loaded models")
            refresh = gr.Button("Refresh")

        with gr.Row(visible=False):  # inputs and outputs of the API-only endpoints
            api_question, api_top_k = gr.Textbox(), gr.Number(value=settings.top_k, precision=0)
            api_answer, api_evidence = gr.Textbox(), gr.JSON()
            api_file, api_result = gr.File(type="filepath"), gr.JSON()
            api_name, api_documents_out = gr.Textbox(), gr.JSON()
            api_buttons = [gr.Button() for _ in range(4)]

        # events
        chat_inputs = [question, chatbot, conversation, top_k, temperature, max_tokens, restrict]
        chat_outputs = [chatbot, conversation, evidence, last_answer, question]
        for trigger in (send.click, question.submit):
            trigger(respond, chat_inputs, chat_outputs, concurrency_id="answer", api_visibility="private") \
                .then(page_buttons, last_answer, buttons, api_visibility="private")
        clear.click(lambda: ([], [], evidence_cards(None), None, gr.update(visible=False)), None,
                    [chatbot, conversation, evidence, last_answer, page_image], api_visibility="private") \
            .then(page_buttons, last_answer, buttons, api_visibility="private")
        for number, button in enumerate(buttons, 1):
            button.click(lambda answer, n=number: show_page(answer, n), last_answer, page_image,
                         api_visibility="private")
        index_button.click(on_upload, uploads, [results, documents, to_delete, restrict], concurrency_id="library",
                           concurrency_limit=1, api_visibility="private")
        delete_button.click(on_delete, to_delete, [documents, to_delete, restrict], concurrency_id="library",
                            api_visibility="private")
        reindex_button.click(on_reindex, None, [results, documents], concurrency_id="library", api_visibility="private")
        refresh.click(assistant.model_status, None, model_status, api_visibility="private")
        demo.load(assistant.model_status, None, model_status, api_visibility="private")

        def poll() -> tuple:
            return startup.message, gr.Timer(active=not startup.done), documents_rows(library.documents()), \
                gr.update(choices=doc_choices()), gr.update(choices=doc_choices())
        timer.tick(poll, None, [status, timer, documents, to_delete, restrict], api_visibility="private")
        demo.load(poll, None, [status, timer, documents, to_delete, restrict], api_visibility="private")

        api_buttons[0].click(api_ask, [api_question, api_top_k], [api_answer, api_evidence], api_name="ask",
                             concurrency_id="answer")
        api_buttons[1].click(api_upload, api_file, api_result, api_name="upload", concurrency_id="library",
                             concurrency_limit=1)
        api_buttons[2].click(api_documents, None, api_documents_out, api_name="documents")
        api_buttons[3].click(api_delete, api_name, api_result, api_name="delete", concurrency_id="library")
    return demo


def start_background(assistant: Assistant) -> StartupState:
    """Index the samples (first start) and load the generator without blocking the page."""
    state = StartupState()
    threading.Thread(target=state.run, args=(assistant,), daemon=True, name="startup").start()
    return state
