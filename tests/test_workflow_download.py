"""Downloads from a local HTTP server on 127.0.0.1: digests, retries, atomicity."""

from __future__ import annotations

import hashlib
import http.server
import threading
from pathlib import Path

import pytest

from odflow.errors import OdflowError
from odflow.workflow.download import download, sha256_of

PAYLOAD = bytes(range(256)) * 4096  # 1 MiB
DIGEST = hashlib.sha256(PAYLOAD).hexdigest()


class _Handler(http.server.BaseHTTPRequestHandler):
    failures_left = 0
    requests = 0

    def do_GET(self) -> None:
        type(self).requests += 1
        if self.path == "/missing":
            self.send_error(404)
            return
        if type(self).failures_left > 0:
            type(self).failures_left -= 1
            self.send_error(503)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(PAYLOAD)))
        self.end_headers()
        self.wfile.write(PAYLOAD)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture()
def server():
    _Handler.failures_left = 0
    _Handler.requests = 0
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_download_verifies_sha256(server: str, tmp_path: Path) -> None:
    out = download(f"{server}/model.tar.gz", tmp_path / "model.tar.gz", DIGEST.upper())
    assert out.read_bytes() == PAYLOAD
    assert list(tmp_path.iterdir()) == [out]


def test_wrong_sha256_names_both_digests_and_keeps_nothing(server: str, tmp_path: Path) -> None:
    wrong = "0" * 64
    with pytest.raises(OdflowError) as error:
        download(f"{server}/model.tar.gz", tmp_path / "model.tar.gz", wrong)
    assert wrong in str(error.value) and DIGEST in str(error.value)
    assert list(tmp_path.iterdir()) == []


def test_transient_errors_are_retried(server: str, tmp_path: Path) -> None:
    _Handler.failures_left = 2
    download(f"{server}/m.tgz", tmp_path / "m.tgz", DIGEST, backoff=0.01)
    assert _Handler.requests == 3


def test_not_found_is_not_retried(server: str, tmp_path: Path) -> None:
    with pytest.raises(OdflowError, match="404"):
        download(f"{server}/missing", tmp_path / "m.tgz", backoff=0.01)
    assert _Handler.requests == 1
    assert list(tmp_path.iterdir()) == []


def test_existing_verified_file_is_not_fetched_again(server: str, tmp_path: Path) -> None:
    target = tmp_path / "m.tgz"
    target.write_bytes(PAYLOAD)
    download(f"{server}/m.tgz", target, DIGEST)
    assert _Handler.requests == 0


def test_file_url(tmp_path: Path) -> None:
    source = tmp_path / "source.bin"
    source.write_bytes(PAYLOAD)
    out = download(source.as_uri(), tmp_path / "copy.bin", DIGEST)
    assert sha256_of(out) == DIGEST
    with pytest.raises(OdflowError, match="no such file"):
        download((tmp_path / "nope.bin").as_uri(), tmp_path / "x.bin")


def test_unsupported_scheme(tmp_path: Path) -> None:
    with pytest.raises(OdflowError, match="only http"):
        download("ftp://example.invalid/x", tmp_path / "x")
