"""Fetch a file from an http(s):// or file:// URL with a verified sha256, atomically.

The model-zoo tarball is 76 MB and the first stage of every run: a truncated download that
looked complete would poison every later stage, so the bytes are hashed while they stream
to a temporary file, and the file gets its final name only when it is whole: its digest
matches ``sha256`` or, without one, the declared length arrived and a tar archive reads
through to its end.

There is one try per call and one retry layer, Snakemake's (``retries:`` of the rule): a
retry loop here as well multiplied the two, and a server that accepted the connection and
never answered held the stage for 12.7 minutes.  A socket ``timeout`` bounds each connect
and each read, so such a server fails the attempt in ``timeout`` seconds, naming the URL.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path

from odflow.errors import OdflowError
from odflow.utils.atomic import atomic_output, remove_stale_temporaries
from odflow.workflow.tarball import check_archive_complete, is_tar_name

log = logging.getLogger(__name__)

CHUNK = 1 << 20
#: Seconds a connect or a read may wait for the server.  Three attempts (Snakemake's
#: ``retries: 2``) stay under two minutes for a server that never answers.
DEFAULT_TIMEOUT = 30.0


def sha256_of(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _open_url(url: str, timeout: float):
    scheme = urllib.parse.urlparse(url).scheme
    if scheme not in ("http", "https", "file"):
        raise OdflowError(f"cannot download {url!r}: only http://, https:// and file:// URLs are "
                          "supported (model.url in config.yaml)")
    if scheme == "file":
        local = urllib.request.url2pathname(urllib.parse.urlparse(url).path)
        if not os.path.isfile(local):
            raise OdflowError(f"{url}: no such file {local!r} (model.url in config.yaml)")
    request = urllib.request.Request(url, headers={"User-Agent": "odflow"})
    return urllib.request.urlopen(request, timeout=timeout)


def _reason(error: BaseException, timeout: float) -> str:
    """A network error in words; a timeout says how long we waited and what that means."""
    if isinstance(error, urllib.error.HTTPError):
        return f"HTTP {error.code} {error.reason}"
    cause = error.reason if isinstance(error, urllib.error.URLError) else error
    if isinstance(cause, TimeoutError):
        return (f"no answer within {timeout:g} s (the server accepted the connection, or "
                "did not, but sent nothing)")
    if isinstance(cause, http.client.IncompleteRead):
        return f"the connection closed early ({len(cause.partial)} bytes of the last part)"
    return str(cause) or type(cause).__name__


def download(url: str, output: str | os.PathLike, sha256: str = "", *,
             timeout: float = DEFAULT_TIMEOUT,
             progress: Callable[[int, int | None], None] | None = None) -> Path:
    """Download ``url`` to ``output``; verify ``sha256`` when given (hex, any case).

    An existing ``output`` whose digest matches is kept as it is, never fetched again.  Any
    failure is an ``OdflowError`` naming the URL; nothing is left under ``output``'s name,
    and temporary files of an earlier killed attempt are removed first.
    """
    output = Path(output)
    expected = sha256.lower()
    if output.exists() and expected and sha256_of(output) == expected:
        log.info("%s exists and its sha256 matches; not downloading again", output)
        return output
    remove_stale_temporaries(output.parent, re.escape(output.name))
    try:
        return _download_once(url, output, expected, timeout, progress)
    except OdflowError:
        raise
    except (urllib.error.URLError, http.client.HTTPException, OSError) as error:
        raise OdflowError(f"could not download {url}: {_reason(error, timeout)}. Check the URL "
                          "(model.url in config.yaml) and the network, then rerun") from None


def _download_once(url: str, output: Path, expected: str, timeout: float,
                   progress: Callable[[int, int | None], None] | None) -> Path:
    digest = hashlib.sha256()
    log.info("downloading %s to %s (timeout %g s)", url, output, timeout)
    with _open_url(url, timeout) as response, atomic_output(output) as tmp:
        total = response.headers.get("Content-Length")
        total_bytes = int(total) if total and total.isdigit() else None
        done = 0
        started = time.monotonic()
        with open(tmp, "wb") as handle:
            while chunk := response.read(CHUNK):
                handle.write(chunk)
                digest.update(chunk)
                done += len(chunk)
                if progress:
                    progress(done, total_bytes)
        if total_bytes is not None and done != total_bytes:
            raise OdflowError(f"could not download {url}: the connection closed after {done} "
                              f"of {total_bytes} bytes. Nothing was kept; rerun to fetch it "
                              "again")
        actual = digest.hexdigest()
        if expected and actual != expected:
            raise OdflowError(
                f"sha256 mismatch for {url}: expected {expected}, got {actual}. The file was not "
                f"kept. Check model.sha256 in config.yaml, or the URL.")
        if not expected and is_tar_name(output.name):
            check_archive_complete(tmp, f"the download of {url}",
                                   "Nothing was kept; rerun to fetch it again, and set "
                                   "model.sha256 in config.yaml to verify it by digest")
        log.info("downloaded %s (%d bytes in %.1f s, sha256 %s)", url, done,
                 time.monotonic() - started, actual)
        if not expected:
            log.warning("%s was not verified (no sha256 given); to pin it, set model.sha256: %s "
                        "(in your config or preset)", url, actual)
    return output
