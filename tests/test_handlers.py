"""What the app's buttons and API endpoints do, called as plain functions of a real assistant (no server)."""
from __future__ import annotations

import pytest

from assistant import handlers
from assistant.errors import AssistantError, QuestionError
from assistant.records import Answer
from assistant.service import build_assistant

from pdfs import GUIDELINE_PAGES, make_pdf


@pytest.fixture
def answering(settings, encoder, tiny_generator):
    """A real assistant (store, library, retriever) whose answers come from the tiny generator."""
    return build_assistant(settings, query_encoder=encoder, generator=tiny_generator)


@pytest.fixture
def protocol(tmp_path):
    path = tmp_path / "anaphylaxis-protocol.pdf"
    path.write_bytes(make_pdf(GUIDELINE_PAGES, title="Anaphylaxis protocol"))
    return str(path)


@pytest.mark.parametrize("value", ["abc", "nan", "inf", "-inf", "0", 0, 21, "2.5", 2.5, [], {}])
def test_a_bad_top_k_is_refused_with_the_allowed_range(value):
    with pytest.raises(QuestionError, match="whole number of passages from 1 to 20"):
        handlers.parse_top_k(value, 5)


@pytest.mark.parametrize(("value", "expected"), [(None, 5), ("", 5), ("  ", 5), ("3", 3), (3.0, 3), (20, 20)])
def test_top_k_accepts_whole_numbers_and_falls_back_to_the_setting(value, expected):
    assert handlers.parse_top_k(value, 5) == expected


def test_upload_list_ask_delete_round_trip(answering, protocol):
    result = handlers.upload(answering, protocol)
    assert result["status"] == "indexed" and result["file"] == result["file_name"] == "anaphylaxis-protocol.pdf"
    assert handlers.upload(answering, protocol)["status"] == "already indexed"
    assert [d["file_name"] for d in handlers.documents(answering)] == ["anaphylaxis-protocol.pdf"]

    steps = list(handlers.ask(answering, "After how many minutes can IM adrenaline be repeated?", "2"))
    text, payload = steps[-1]
    assert payload["answer"] == text and "supports, and does not replace" in payload["disclaimer"]
    assert len(payload["evidence"]) == 2 and "5 minutes" in text  # the verbatim wording quotes the passage
    assert steps[0][0].startswith("Guideline wording")  # the wording comes before the model writes

    assert handlers.delete(answering, "anaphylaxis-protocol.pdf") == {"deleted": True,
                                                                       "name": "anaphylaxis-protocol.pdf"}
    assert handlers.documents(answering) == []


def test_asking_with_a_bad_top_k_or_an_empty_question_says_why(answering):
    with pytest.raises(QuestionError, match="top_k"):
        next(handlers.ask(answering, "How is anaphylaxis treated?", "abc"))
    with pytest.raises(QuestionError, match="type a question"):
        next(handlers.ask(answering, "   ", 5))


def test_upload_without_a_file_says_so(answering):
    with pytest.raises(AssistantError, match="No file was sent"):
        handlers.upload(answering, None)


def test_upload_many_reports_one_row_per_file_and_progress(answering, protocol, tmp_path):
    notes = tmp_path / "notes.pdf"
    notes.write_text("not a pdf at all")
    seen = []
    rows = handlers.upload_many(answering, [protocol, str(notes)], lambda fraction, message: seen.append(fraction))
    assert [row[:2] for row in rows] == [["anaphylaxis-protocol.pdf", "indexed"], ["notes.pdf", "refused"]]
    assert seen and max(seen) <= 1.0 and seen == sorted(seen)


def test_restricting_to_named_documents(answering, protocol):
    handlers.upload(answering, protocol)
    assert handlers.document_ids(answering, None) is None
    assert handlers.document_ids(answering, ["no-such.pdf"]) is None  # nothing matches: search everything
    assert handlers.document_ids(answering, ["anaphylaxis-protocol.pdf"]) == [
        handlers.documents(answering)[0]["doc_id"]]


def test_page_image_of_an_evidence_card(answering, protocol):
    handlers.upload(answering, protocol)
    *_, (_, payload) = handlers.ask(answering, "After how many minutes can IM adrenaline be repeated?", 1)
    image, caption = handlers.page_image(answering, payload, 1)
    assert image.width > 500
    assert caption.startswith(f"[1] anaphylaxis-protocol.pdf, page {payload['evidence'][0]['page']}: the passage is "
                              "marked")
    assert handlers.page_image(answering, payload, 2) is None
    answering.library.file_path(payload["evidence"][0]["doc_id"]).unlink()
    with pytest.raises(AssistantError, match="stored copy of this PDF is missing"):
        handlers.page_image(answering, payload, 1)


def test_the_ui_declares_exactly_the_four_api_endpoints(answering):
    from assistant.ui import build_ui

    demo = build_ui(answering)
    public = sorted(d["api_name"] for d in demo.config["dependencies"] if d.get("api_visibility") == "public")
    assert public == ["ask", "delete", "documents", "upload"]
    queues = {fn.api_name: (fn.concurrency_id, fn.concurrency_limit) for fn in demo.fns.values()}
    assert queues["ask"][0] == "answer"  # answers share the chat's generation queue
    assert queues["upload"] == ("library", 1) and queues["delete"][0] == "library"  # one library writer at a time


def test_failed_logins_wait_out_their_window_and_a_success_clears_them():
    from assistant.login_guard import FailedLogins

    now = [0.0]
    failures = FailedLogins(attempts=3, window_seconds=60, clock=lambda: now[0])
    for second in (0, 10, 20):
        now[0] = second
        assert failures.wait_seconds("10.0.0.1") == 0
        failures.failed("10.0.0.1")
    assert failures.wait_seconds("10.0.0.1") == pytest.approx(40)  # the first failure leaves at 60 s
    assert failures.wait_seconds("10.0.0.2") == 0  # per address
    now[0] = 60.5
    assert failures.wait_seconds("10.0.0.1") == 0  # two failures left in the window
    failures.failed("10.0.0.1")
    assert failures.wait_seconds("10.0.0.1") > 0
    failures.succeeded("10.0.0.1")
    assert failures.wait_seconds("10.0.0.1") == 0


def test_an_upload_is_discarded_only_inside_the_upload_folder(tmp_path):
    root = tmp_path / "uploads"
    inside = root / "abc123" / "guideline.pdf"
    inside.parent.mkdir(parents=True)
    inside.write_bytes(b"%PDF")
    outside = tmp_path / "mine.pdf"
    outside.write_bytes(b"%PDF")
    handlers.discard_upload(str(inside), root)
    handlers.discard_upload(str(outside), root)  # a command-line path: never touched
    handlers.discard_upload(None, root)
    assert not inside.exists() and not inside.parent.exists() and root.is_dir() and outside.exists()


def test_model_status_and_answers_show_no_server_paths(assistant):
    raw = assistant.model_status()
    assert str(assistant.settings.data_dir) in raw["chroma"]  # what the server knows...
    shown = handlers.model_status(assistant)
    text = repr(shown)
    assert str(assistant.settings.data_dir) not in text and "/" + "work" not in text  # ...not what visitors see
    assert shown["collection"] == raw["collection"] and shown["chroma"] == "embedded at chroma"
    answer = Answer(question="q", text="t", evidence=[], covered=False,
                    models={"source": "/srv/models/qwen2.5-coder-0.5b", "generator": "Qwen (packaged)"})
    payload = handlers.answer_payload(answer)
    assert payload["models"] == {"source": "qwen2.5-coder-0.5b", "generator": "Qwen (packaged)"}
