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
