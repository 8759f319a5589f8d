"""Fetch a file from an http(s):// or file:// URL with a verified sha256, atomically.

The model-zoo tarball is 76 MB and the first stage of every run: a truncated download that
looked complete would poison every later stage, so the bytes are hashed while they stream
to a temporary file, and the file gets its final name only when the digest matches.
Transient network errors are retried with backoff; a digest mismatch is not (it would only
fail again) and reports both digests.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path

from odflow.errors import OdflowError
from odflow.utils.atomic import atomic_output

log = logging.getLogger(__name__)

CHUNK = 1 << 20
TRANSIENT_HTTP = {408, 425, 429, 500, 502, 503, 504}


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


def _is_transient(error: BaseException) -> bool:
    if isinstance(error, urllib.error.HTTPError):
        return error.code in TRANSIENT_HTTP
    return isinstance(error, (urllib.error.URLError, TimeoutError, ConnectionError, OSError))


def download(url: str, output: str | os.PathLike, sha256: str = "", *, attempts: int = 4,
             timeout: float = 60.0, backoff: float = 2.0,
             progress: Callable[[int, int | None], None] | None = None) -> Path:
    """Download ``url`` to ``output``; verify ``sha256`` when given (hex, any case).

    An existing ``output`` whose digest matches is kept as it is, never fetched again.
    """
    output = Path(output)
    expected = sha256.lower()
    if output.exists() and expected and sha256_of(output) == expected:
        log.info("%s exists and its sha256 matches; not downloading again", output)
        return output
    last_error: BaseException | None = None
    for attempt in range(1, attempts + 1):
        try:
            return _download_once(url, output, expected, timeout, progress)
        except OdflowError:
            raise
        except Exception as error:  # noqa: BLE001 - classified below
            if not _is_transient(error) or attempt == attempts:
                last_error = error
                break
            wait = backoff * 2 ** (attempt - 1)
            log.warning("download of %s failed (%s); retrying in %.0f s (attempt %d of %d)",
                        url, error, wait, attempt + 1, attempts)
            time.sleep(wait)
    raise OdflowError(f"could not download {url}: {last_error}") from last_error


def _download_once(url: str, output: Path, expected: str, timeout: float,
                   progress: Callable[[int, int | None], None] | None) -> Path:
    digest = hashlib.sha256()
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
            raise ConnectionError(f"connection closed after {done} of {total_bytes} bytes")
        actual = digest.hexdigest()
        if expected and actual != expected:
            raise OdflowError(
                f"sha256 mismatch for {url}: expected {expected}, got {actual}. The file was not "
                f"kept. Check model.sha256 in config.yaml, or the URL.")
        log.info("downloaded %s (%d bytes in %.1f s, sha256 %s)", url, done,
                 time.monotonic() - started, actual)
        if not expected:
            log.warning("%s was not verified (no sha256 given); to pin it, set model.sha256: %s "
                        "(in your config or preset)", url, actual)
    return output

