"""Test images made on the spot: random-pixel JPEGs, so no test ships or downloads a picture.

Random pixels (not a flat colour) because a flat JPEG compresses to nearly nothing and
decodes to the same values whatever the seed: tests that follow an image through a pipeline
need images that differ.  The same seed gives the same bytes (a fixed ``numpy`` generator and
PIL's deterministic encoder), which the reproducibility tests rely on.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image


def random_jpeg(width: int, height: int, seed: int = 0, quality: int = 75) -> bytes:
    """A ``width`` x ``height`` RGB JPEG of uniform random pixels (PIL's default quality)."""
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def write_random_jpeg(path: Path, width: int, height: int, seed: int = 0) -> Path:
    """``random_jpeg`` written to ``path`` (its folders made); returns ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(random_jpeg(width, height, seed))
    return path
