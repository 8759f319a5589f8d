"""The images ``odflow detect --images`` names: a folder, a glob, one file, or TFRecords.

Each yields ``ImageItem``s in a stable (sorted) order; an image that cannot be decoded comes
with ``error`` set instead of pixels, so the caller reports it by name and goes on.
"""

from __future__ import annotations

import glob
import io
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from odflow.errors import OdflowError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp"}
RECORD_SUFFIXES = (".record", ".tfrecord")


@dataclass(frozen=True)
class ImageItem:
    name: str                    # file name (or the record's filename/source_id)
    image: np.ndarray | None     # uint8 [H, W, 3] RGB, None when unreadable
    error: str | None = None


def _is_record(path: str) -> bool:
    name = os.path.basename(path)
    return name.endswith(RECORD_SUFFIXES) or any(f"{s}-" in name for s in RECORD_SUFFIXES)


def list_sources(spec: str) -> list[str]:
    """The files ``spec`` names (a folder's images, a glob's matches, or the file itself)."""
    path = Path(spec)
    if path.is_dir():
        files = sorted(str(p) for p in path.rglob("*")
                       if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise OdflowError(f"--images {spec}: the folder holds no image "
                              f"({', '.join(sorted(IMAGE_SUFFIXES))})")
        return files
    if path.is_file():
        return [str(path)]
    files = sorted(f for f in glob.glob(spec, recursive=True) if os.path.isfile(f))
    if not files:
        raise OdflowError(f"--images {spec}: no such folder or file, and no file matches it "
                          "as a glob")
    return files


def decode(data: bytes) -> np.ndarray:
    """Encoded image bytes -> uint8 RGB ``[H, W, 3]`` (PIL: any format it reads)."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image.convert("RGB"), np.uint8)


def iter_images(files: list[str]) -> Iterator[ImageItem]:
    for file in files:
        if _is_record(file):
            yield from _record_images(file)
            continue
        try:
            with open(file, "rb") as handle:
                image = decode(handle.read())
        except Exception as error:  # PIL raises many types for a corrupt or non-image file
            yield ImageItem(file, None, f"{type(error).__name__}: {error}")
            continue
        yield ImageItem(file, image)


def _record_images(path: str) -> Iterator[ImageItem]:
    from odflow.data.records import iter_examples

    for index, example in enumerate(iter_examples(path)):
        name = example.filename or example.source_id or f"{os.path.basename(path)}-{index}"
        try:
            yield ImageItem(name, decode(example.encoded))
        except Exception as error:
            yield ImageItem(name, None, f"{type(error).__name__}: {error}")


def count_images(files: list[str]) -> int | None:
    """How many images the files hold (records counted without decoding); for the progress."""
    from odflow.data.records import count_examples

    return sum(count_examples(f) if _is_record(f) else 1 for f in files)
