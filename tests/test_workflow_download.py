"""Downloads from local servers on 127.0.0.1: digests, truncation, timeouts, atomicity."""

from __future__ import annotations

import hashlib
import http.server
import io
import os
import socket
import subprocess
import sys
import tarfile
import threading
import time
from pathlib import Path

import pytest

from odflow.errors import OdflowError
from odflow.workflow.download import download, sha256_of

PAYLOAD = bytes(range(256)) * 4096  # 1 MiB
DIGEST = hashlib.sha256(PAYLOAD).hexdigest()
MODEL_ZOO = Path(__file__).resolve().parents[1] / "scripts" / "model_zoo.py"


def tarball_bytes() -> bytes:
    """A small zoo-layout .tar.gz; random member data so gzip cannot shrink it to nothing."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, data in {"zoo/pipeline.config": b"model {}\n",
                           "zoo/model.ckpt.index": b"index",
                           "zoo/model.ckpt.data-00000-of-00001": os.urandom(200_000)}.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


TARBALL = tarball_bytes()


class _Handler(http.server.BaseHTTPRequestHandler):
    failures_left = 0
    requests = 0

    serve_cut = False  # the workflow test switches /x.tar.gz from half to whole

    def do_GET(self) -> None:
        type(self).requests += 1
        if self.path == "/x.tar.gz":
            self.path = "/cut.tar.gz" if type(self).serve_cut else "/whole.tar.gz"
        if self.path == "/missing":
            self.send_error(404)
            return
        if self.path.startswith("/cut"):
            # Half a tarball; /cut-declared says the full length, /cut without a length
            # (close-delimited, as HTTP/1.0 allows), so only the archive itself can tell.
            self.send_response(200)
            if self.path == "/cut-declared.tar.gz":
                self.send_header("Content-Length", str(len(TARBALL)))
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(TARBALL[: len(TARBALL) // 2])
            self.close_connection = True
            return
        if self.path == "/whole.tar.gz":
            self.send_response(200)
            self.end_headers()
            self.wfile.write(TARBALL)
            self.close_connection = True
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
    _Handler.serve_cut = False
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


def test_one_try_per_call_snakemake_retries_the_rule(server: str, tmp_path: Path) -> None:
    # Retrying here as well as in Snakemake multiplied the two (12.7 min for a dead server).
    _Handler.failures_left = 1
    with pytest.raises(OdflowError, match=f"could not download {server}/m.tgz: HTTP 503"):
        download(f"{server}/m.tgz", tmp_path / "m.tgz", DIGEST)
    assert _Handler.requests == 1
    assert list(tmp_path.iterdir()) == []
    download(f"{server}/m.tgz", tmp_path / "m.tgz", DIGEST)  # the rule's next attempt
    assert (tmp_path / "m.tgz").read_bytes() == PAYLOAD


def test_not_found_names_the_url(server: str, tmp_path: Path) -> None:
    with pytest.raises(OdflowError, match=f"{server}/missing: HTTP 404"):
        download(f"{server}/missing", tmp_path / "m.tgz")
    assert _Handler.requests == 1
    assert list(tmp_path.iterdir()) == []


@pytest.fixture()
def silent_server():
    """Accepts connections and never sends a byte (a hung server or a black-holing proxy)."""
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except TimeoutError:
                continue
            except OSError:
                return

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}/model.tar.gz"
    stop.set()
    thread.join(5)
    for connection in accepted:
        connection.close()
    listener.close()


def test_a_server_that_never_answers_fails_within_the_timeout(silent_server: str,
                                                              tmp_path: Path) -> None:
    started = time.monotonic()
    with pytest.raises(OdflowError, match=f"could not download {silent_server}: no answer "
                                          "within 0.5 s"):
        download(silent_server, tmp_path / "m.tar.gz", timeout=0.5)
    assert time.monotonic() - started < 10  # one try of 0.5 s, not 4 tries with backoff
    assert list(tmp_path.iterdir()) == []


def test_cli_server_that_never_answers_exits_2_naming_the_url(silent_server: str,
                                                              tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(MODEL_ZOO), "download", "--url", silent_server,
         "--output", str(tmp_path / "downloads" / "m.tar.gz"), "--timeout", "1"],
        check=False, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert f"error: could not download {silent_server}: no answer within 1 s" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "downloads" / "m.tar.gz").exists()


@pytest.mark.parametrize("path", ["/cut.tar.gz", "/cut-declared.tar.gz"])
def test_truncated_tarball_without_sha256_is_not_kept(server: str, tmp_path: Path,
                                                      path: str) -> None:
    downloads = tmp_path / "downloads"
    with pytest.raises(OdflowError, match=f"{server}{path}") as error:
        download(f"{server}{path}", downloads / "m.tar.gz")
    assert "rerun to fetch it again" in str(error.value)
    assert list(downloads.iterdir()) == []  # so the rerun fetches it again


def test_whole_tarball_without_sha256_is_kept(server: str, tmp_path: Path) -> None:
    out = download(f"{server}/whole.tar.gz", tmp_path / "m.tar.gz")
    assert out.read_bytes() == TARBALL


def test_truncated_file_url_tarball(tmp_path: Path) -> None:
    source = tmp_path / "source.tar.gz"
    source.write_bytes(TARBALL[:-6])  # only the gzip trailer (CRC, length) is missing
    with pytest.raises(OdflowError, match=r"not a complete tar archive \(it is cut short"):
        download(source.as_uri(), tmp_path / "downloads" / "m.tar.gz")
    assert list((tmp_path / "downloads").iterdir()) == []
    source.write_bytes(TARBALL)
    download(source.as_uri(), tmp_path / "downloads" / "m.tar.gz")  # the rerun fetches it


def test_cli_truncated_tarball_exits_2_without_a_traceback(tmp_path: Path) -> None:
    source = tmp_path / "source.tar.gz"
    source.write_bytes(TARBALL[: len(TARBALL) // 3])
    result = subprocess.run(
        [sys.executable, str(MODEL_ZOO), "download", "--url", source.as_uri(),
         "--output", str(tmp_path / "downloads" / "m.tar.gz")],
        check=False, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert f"error: the download of {source.as_uri()} is not a complete tar archive" in (
        result.stderr)
    assert "Traceback" not in result.stderr
    assert list((tmp_path / "downloads").iterdir()) == []


def test_leftovers_of_a_killed_download_are_removed(tmp_path: Path) -> None:
    source = tmp_path / "source.bin"
    source.write_bytes(PAYLOAD)
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    leftover = downloads / ".m.tar.gz.x7_k2p0q.tmp"
    keep = [downloads / ".other.tar.gz.x7_k2p0q.tmp", downloads / "m.tar.gz.part"]
    for path in [leftover, *keep]:
        path.write_bytes(b"partial")
    download(source.as_uri(), downloads / "m.tar.gz", DIGEST)
    assert sorted(p.name for p in downloads.iterdir()) == sorted(
        ["m.tar.gz"] + [p.name for p in keep])


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


def test_a_dead_server_fails_the_rule_within_two_minutes() -> None:
    """Snakemake's attempts (retries + 1) times the socket timeout, plus a margin for
    starting Python each time, stays under the two minutes a user should wait."""
    import re

    from odflow.workflow.download import DEFAULT_TIMEOUT

    rules = (Path(__file__).resolve().parents[1] / "rules" / "model_zoo.smk").read_text()
    # One download rule per run (rule_name("download_model", run) in a loop over the runs).
    download_rule = rules[rules.index('"download_model"'):rules.index('"extract_model"')]
    (retries,) = re.findall(r"^\s*retries:\s*(\d+)", download_rule, re.MULTILINE)
    assert "--timeout" not in download_rule  # the rule relies on the default
    assert (int(retries) + 1) * (DEFAULT_TIMEOUT + 5) < 120


@pytest.mark.workflow
@pytest.mark.slow
def test_workflow_truncated_tarball_is_fetched_again_on_the_rerun(server: str,
                                                                   tmp_path: Path) -> None:
    from tests.support.workflow import run_snakemake, tiny_config, write_config

    config = tiny_config(model={"url": f"{server}/x.tar.gz", "sha256": ""})
    configfile = write_config(tmp_path, config)
    target = f"{config['model']['name']}/pipeline.config"
    _Handler.serve_cut = True
    failed = run_snakemake(tmp_path, configfile, "-c1", target)
    assert failed.returncode != 0, failed.describe()
    assert "is not a complete tar archive" in failed.log("download_model"), failed.describe()
    assert "Traceback" not in failed.log("download_model")
    assert _Handler.requests == 3  # one try per attempt: Snakemake's retries: 2
    downloads = tmp_path / "downloads"
    assert not downloads.exists() or list(downloads.iterdir()) == []
    _Handler.serve_cut = False
    rerun = run_snakemake(tmp_path, configfile, "-c1", target)
    assert rerun.returncode == 0, rerun.describe()
    assert (tmp_path / "downloads" / f"{config['model']['name']}.tar.gz").read_bytes() == TARBALL
    assert (tmp_path / target).read_bytes() == b"model {}\n"
