"""What a visitor can do to a running app: guess passwords, fill the queue, fill the disk with uploads.
The real app on a local port; raw HTTP where a client library would hide the behaviour."""
from __future__ import annotations

import http.cookiejar
import json
import threading
import urllib.error
import urllib.parse
import urllib.request
import uuid

import pytest
from gradio_client import Client, handle_file

from app_server import running_app
from conftest import MODEL_CACHE
from pdfs import GUIDELINE_PAGES, make_pdf

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("test_exposure")]

USER, PASSWORD = "clinician", "s3cret-pass"


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    data = tmp_path_factory.mktemp("exposed") / "data"
    data.mkdir()
    with running_app(data, MODEL_CACHE, auth_user=USER, auth_password=PASSWORD, login_attempts="3",
                     login_window_seconds="600", max_file_mb="1", queue_size="1", concurrency_limit="1") as url:
        # logged in before any test guesses passwords (the throttle then refuses this address for 10 minutes)
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
        assert _post_login(url, PASSWORD, opener)[0] == 200
        clients = [Client(url, auth=(USER, PASSWORD), verbose=False) for _ in range(6)]
        yield url, data, opener, clients


def _post_login(url: str, password: str, opener=None) -> tuple[int, str]:
    body = urllib.parse.urlencode({"username": USER, "password": password}).encode()
    request = urllib.request.Request(url + "login", data=body, method="POST")
    try:
        with (opener or urllib.request.build_opener()).open(request, timeout=30) as reply:
            return reply.status, reply.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def test_failed_logins_are_logged_and_throttled_per_address(app):
    url, data, _, _ = app
    statuses = [_post_login(url, f"guess-{n}")[0] for n in range(3)]
    assert statuses == [400, 400, 400]
    code, body = _post_login(url, "guess-4")
    assert code == 429 and "Too many failed logins" in body and "Wait" in body
    assert _post_login(url, PASSWORD)[0] == 429  # even the right password waits out the window
    log = next(data.parent.glob("app-*.log")).read_text()
    assert log.count("Failed login from 127.0.0.1") == 3 and PASSWORD not in log and "guess-" not in log


def _upload_raw(url: str, opener, data: bytes, name: str) -> tuple[int, str]:
    boundary = uuid.uuid4().hex
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"{name}\"\r\n"
            "Content-Type: application/pdf\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
    request = urllib.request.Request(url + "gradio_api/upload", data=body, method="POST",
                                     headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    try:
        with opener.open(request, timeout=60) as reply:
            return reply.status, reply.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def test_uploads_stay_under_data_dir_and_leave_nothing_behind(app, tmp_path):
    url, data, opener, clients = app
    uploads = data / "uploads"
    assert uploads.is_dir()
    # over max_file_mb: refused by the web server, nothing kept
    code, body = _upload_raw(url, opener, b"%PDF-1.4\n" + b"0" * 2_500_000, "huge.pdf")
    assert code == 413, body
    assert not [p for p in uploads.rglob("*") if p.is_file()]
    # indexed through /upload: the file in transit is gone, and cannot be fetched again
    client = clients[0]
    pdf = tmp_path / "anaphylaxis.pdf"
    pdf.write_bytes(make_pdf(GUIDELINE_PAGES, title="Anaphylaxis protocol"))
    code, body = _upload_raw(url, opener, make_pdf(["Posted, never submitted."]), "posted.pdf")
    [server_path] = json.loads(body)
    assert code == 200 and str(uploads.resolve()) in str(server_path)  # in transit under data_dir
    result = client.predict(handle_file(str(pdf)), api_name="/upload")
    assert result["status"] == "indexed"
    # the evidence card's link to the stored PDF: served to a logged-in session only
    link = url + "gradio_api/file=" + urllib.parse.quote(str(data / "files" / f"{result['doc_id']}.pdf"))
    with opener.open(link, timeout=30) as reply:
        assert reply.status == 200 and reply.read(5) == b"%PDF-"
    with pytest.raises(urllib.error.HTTPError) as anonymous:
        urllib.request.urlopen(link, timeout=30)
    assert anonymous.value.code in (401, 403)
    # only the file no handler took remains (Gradio's hourly clean-up and the next start remove it)
    assert [p.name for p in uploads.rglob("*.pdf")] == ["posted.pdf"]
    refused = tmp_path / "notes.pdf"
    refused.write_text("not a pdf at all")
    assert client.predict(handle_file(str(refused)), api_name="/upload")["status"] == "refused"
    assert [p.name for p in uploads.rglob("*.pdf")] == ["posted.pdf"]
    assert client.predict("anaphylaxis.pdf", api_name="/delete")["deleted"] is True


def test_a_full_queue_refuses_more_work_with_a_message(app):
    _, _, _, clients = app
    errors, done = [], []

    def ask(number: int) -> None:
        try:
            done.append(clients[number].predict(
                f"What is the adrenaline dose in anaphylaxis, case {number}?", 5, api_name="/ask"))
        except Exception as error:  # the refused ones
            errors.append(str(error))

    threads = [threading.Thread(target=ask, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=600)
    assert done and errors, (len(done), errors)
    assert all("queue is full" in error.lower() for error in errors), errors
    assert clients[0].predict(api_name="/documents") is not None  # the app still serves
