"""What every converter shares: reading an image cheaply, cleaning boxes, and bad input.

Converters stream: one image is read, described and written before the next is touched, so
memory does not grow with the dataset.  The pixels are never decoded on the normal path (the
header gives the size); only an image whose bytes look cut short is decoded to be sure.  A
JPEG corrupt inside that still ends well passes here: decoding every image would cut the
conversion rate to a quarter (benchmarks/data_conversion.md), so ``validate --decode`` is
that check.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np

from odflow import label_map as label_map_lib
from odflow.data.example import check_decodable, image_info
from odflow.data.summary import DatasetSummary
from odflow.errors import OdflowError

# Box drop reasons, as they appear in the summary.
ZERO_SIZE = "zero width or height"
OUTSIDE_IMAGE = "outside the image"
TOO_SMALL = "smaller than --min-size"
INVALID = "flagged invalid (--drop-invalid)"
CLIPPED = "clipped to the image"
NO_BOXES_LEFT = "no boxes left (--drop-empty)"

T = TypeVar("T")


@dataclass
class LoadedImage:
    encoded: bytes
    image_format: str
    height: int
    width: int


def _looks_complete(encoded: bytes, image_format: str) -> bool:
    """A JPEG ends with the EOI marker and a PNG with its IEND chunk; a cut file does not."""
    tail = encoded[-64:]
    if image_format == "jpeg":
        return b"\xff\xd9" in tail
    return b"IEND" in tail


def load_image(path: str | os.PathLike, source: str) -> LoadedImage:
    """Read an image file's bytes and size; ``OdflowError`` naming ``source`` if it is bad.

    ``source`` is where the image was named (``annotations.txt:12``), so the message points
    at the line to fix as well as the file.
    """
    try:
        encoded = Path(path).read_bytes()
    except FileNotFoundError:
        raise OdflowError(f"{source}: image {path} not found") from None
    except IsADirectoryError:
        raise OdflowError(f"{source}: {path} is a directory, not an image") from None
    except OSError as error:
        raise OdflowError(f"{source}: cannot read image {path}: {error.strerror}") from None
    image_format, height, width = image_info(encoded, f"{source}: image {path}")
    if not _looks_complete(encoded, image_format):
        check_decodable(encoded, f"{source}: image {path}")
    return LoadedImage(encoded, image_format, height, width)


class BadInput:
    """Turns a bad input item into an error, or with ``--skip-bad`` into a counted warning."""

    def __init__(self, summary: DatasetSummary, skip_bad: bool):
        self.summary = summary
        self.skip_bad = skip_bad

    def __call__(self, error: OdflowError | str, reason: str) -> None:
        message = str(error)
        if not self.skip_bad:
            if isinstance(error, OdflowError):
                raise error
            raise OdflowError(message + " (use --skip-bad to skip such items)")
        self.summary.warn(message)
        self.summary.drop_image(reason)


def resolve_label_map(label_map_path: str | os.PathLike | None,
                      default_names: list[str] | None = None) -> label_map_lib.LabelMap:
    """The label map file if given, else one made from ``default_names`` (ids 1..N)."""
    if label_map_path:
        return label_map_lib.load(label_map_path)
    if default_names:
        return label_map_lib.from_names(default_names)
    raise OdflowError("no label map given: pass --label-map label_map.pbtxt")


def class_id(label_map: label_map_lib.LabelMap, name: str, source: str) -> int:
    """The label map's id for ``name``; the message lists the names it knows."""
    try:
        return label_map.name_to_id[name]
    except KeyError:
        known = ", ".join(repr(n) for n in label_map.name_to_id)
        where = f" {label_map.path}" if label_map.path else ""
        raise OdflowError(f"{source}: class {name!r} is not in the label map{where} "
                          f"(it has {known}); add it there or fix the name") from None


def check_box_order(box: list[float], where: str) -> None:
    """Pixel corners ``[xmin, ymin, xmax, ymax]`` with a min above its max are an error.

    Such a box is almost always swapped columns or a wrong export, not an empty box: dropping
    it quietly (as zero-sized boxes are) would lose the object without a word.
    """
    xmin, ymin, xmax, ymax = box
    for low, high, axis in ((xmin, xmax, "x"), (ymin, ymax, "y")):
        if low > high:
            raise OdflowError(f"{where}: inverted box: {axis}min {low:g} > {axis}max {high:g} "
                              f"(xmin, ymin, xmax, ymax = {', '.join(f'{v:g}' for v in box)}); "
                              f"swap the {axis} corners or fix the annotation")


def clean_boxes(boxes_abs, height: int, width: int, min_size: float,
                summary: DatasetSummary) -> tuple[list[bool], np.ndarray]:
    """Pixel boxes ``[x1, y1, x2, y2]`` -> (kept flags, normalised ``[ymin, xmin, ymax, xmax]``).

    Zero-sized boxes are dropped, the rest clipped to the image; boxes that lie entirely
    outside the image or are smaller than ``min_size`` pixels on a side after clipping are
    dropped too.  Each drop and clip is counted in ``summary``.  Plain Python on purpose: an
    image has a handful of boxes, where numpy's per-call overhead dominated conversion time.
    """
    rows = boxes_abs.tolist() if isinstance(boxes_abs, np.ndarray) else list(boxes_abs)
    keep: list[bool] = []
    kept: list[tuple[float, float, float, float]] = []
    zero = outside = small = clipped = 0
    for x1, y1, x2, y2 in rows:
        if x2 <= x1 or y2 <= y1:
            zero += 1
            keep.append(False)
            continue
        cx1, cx2 = min(max(x1, 0.0), width), min(max(x2, 0.0), width)
        cy1, cy2 = min(max(y1, 0.0), height), min(max(y2, 0.0), height)
        if cx2 <= cx1 or cy2 <= cy1:
            outside += 1
            keep.append(False)
            continue
        if min(cx2 - cx1, cy2 - cy1) < min_size:
            small += 1
            keep.append(False)
            continue
        if (cx1, cy1, cx2, cy2) != (x1, y1, x2, y2):
            clipped += 1
        keep.append(True)
        kept.append((cy1 / height, cx1 / width, cy2 / height, cx2 / width))
    summary.drop_boxes(ZERO_SIZE, zero)
    summary.drop_boxes(OUTSIDE_IMAGE, outside)
    summary.drop_boxes(TOO_SMALL, small)
    summary.note_boxes(CLIPPED, clipped)
    return keep, np.asarray(kept, np.float32).reshape(-1, 4)


def clean_objects(objects: Sequence[T], boxes_abs: Iterable[Sequence[float]],
                  image: LoadedImage, min_size: float, summary: DatasetSummary,
                  drop_empty: bool) -> tuple[list[T], np.ndarray] | None:
    """``clean_boxes`` for one image's objects (anything a converter keeps per box, with their
    pixel boxes ``[x1, y1, x2, y2]`` in the same order): the objects whose boxes are kept and
    those boxes, normalised.  ``None`` when ``drop_empty`` and no box is left (the image is
    counted as dropped in ``summary``), so every converter filters and drops alike."""
    raw = np.asarray(list(boxes_abs), np.float64).reshape(-1, 4)
    keep, boxes = clean_boxes(raw, image.height, image.width, min_size, summary)
    kept = [o for o, flag in zip(objects, keep, strict=True) if flag]
    if drop_empty and not kept:
        summary.drop_image(NO_BOXES_LEFT)
        return None
    return kept, boxes
