"""The same library over a real Chroma server (`chroma run`) instead of the embedded store."""
from __future__ import annotations

import pytest

from assistant.config import load_settings
from assistant.library import Library
from assistant.store import GuidelineStore, collection_name, make_client

from app_server import CHROMA, running_chroma
from pdfs import GUIDELINE_PAGES, make_pdf

pytestmark = pytest.mark.slow


@pytest.fixture
def chroma_server(tmp_path):
    """A Chroma server on a free local port, persisting in a temporary folder; stopped afterwards."""
    if not CHROMA.is_file():
        pytest.skip(reason=f"the chroma command is not installed at {CHROMA}")
    with running_chroma(tmp_path / "chroma") as port:
        yield port


def test_add_query_delete_through_a_chroma_server(chroma_server, tmp_path, encoder):
    settings = load_settings(env={}, data_dir=tmp_path / "data", chroma_host="127.0.0.1", chroma_port=chroma_server,
                             index_samples_on_start=False)
    client = make_client(settings)
    assert type(client).__name__ != "PersistentClient"
    store = GuidelineStore(client, collection_name(settings, encoder))
    library = Library(settings, encoder, store)

    data = make_pdf(GUIDELINE_PAGES, title="Anaphylaxis protocol")
    result = library.add_bytes(data, "anaphylaxis.pdf")
    assert result.status == "indexed", result.message
    assert not (settings.chroma_dir).exists()  # nothing embedded: the chunks live in the server
    assert library.file_path(result.doc_id).read_bytes() == data

    query = encoder.encode(["How much adrenaline is given intramuscularly?"])[0]
    hits = store.query(query, 3)
    assert hits and hits[0][0].doc_id == result.doc_id and "500 micrograms" in hits[0][0].text
    assert hits[0][0].page == 2 and hits[0][0].section == "2 Adrenaline"

    # a second process (here: a second client) sees the same library, in both rankings
    other = GuidelineStore(make_client(settings), store.name)
    assert [info.file_name for info in other.list_documents()] == ["anaphylaxis.pdf"]
    assert other.count() == result.chunks
    assert [c.page for c, _ in other.lexical_query("500 micrograms intramuscular adrenaline", 1)] == [2]
    assert library.add_bytes(data, "anaphylaxis.pdf").status == "already indexed"

    assert library.delete("anaphylaxis.pdf") is True
    assert store.query(query, 3) == [] and store.count() == 0 and store.lexical_query("adrenaline", 3) == []
    assert other.list_documents() == [] and other.count() == 0
    assert other.lexical_query("adrenaline", 3) == []  # the other process's lexical index follows the delete
    assert not library.file_path(result.doc_id).exists()


PPH = ["1 Prevention\nOffer oxytocin 10 units intramuscularly for the third stage of labour in all births.",
       "2 Treatment\nGive tranexamic acid 1 g intravenously as soon as postpartum haemorrhage is recognised."]


def test_another_process_s_upload_and_delete_are_searched_exactly_when_committed(chroma_server, tmp_path, encoder):
    """Several processes may share one library through a Chroma server (no folder lock there): this
    process searches another's upload once it is committed, and no longer after its deletion."""
    import subprocess
    import sys

    from assistant.service import build_assistant

    settings = load_settings(env={}, data_dir=tmp_path / "data", chroma_host="127.0.0.1", chroma_port=chroma_server,
                             index_samples_on_start=False)
    assistant = build_assistant(settings, query_encoder=encoder)
    pdf = tmp_path / "rcog-gtg52-pph.pdf"
    pdf.write_bytes(make_pdf(PPH, title="Postpartum haemorrhage"))
    config = tmp_path / "assistant.toml"
    config.write_text(f'[assistant]\ndata_dir = "{tmp_path / "cli-data"}"\nindex_samples_on_start = false\n'
                      f'chroma_host = "127.0.0.1"\nchroma_port = {chroma_server}\n')

    def cli(*args: str) -> None:
        done = subprocess.run([sys.executable, "-m", "assistant", "ingest", *args, "--config", str(config)],
                              capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr

    assert assistant.store.lexical_query("tranexamic", 5) == []
    cli(str(pdf))
    assistant.store.list_documents()  # the registry as it is now (else at most 5 s old)
    assert [c.file_name for c, _ in assistant.store.lexical_query("tranexamic", 5)] == ["rcog-gtg52-pph.pdf"]
    cli("--delete", "rcog-gtg52-pph.pdf")
    assistant.store.list_documents()
    assert assistant.store.lexical_query("tranexamic", 5) == []
    assert assistant.retriever().search("tranexamic acid 1 g", 5) == []
