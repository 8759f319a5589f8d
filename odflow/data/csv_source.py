"""The tutorial's CSV (``filename,width,height,class,xmin,ymin,xmax,ymax``) -> records.

One row per box, several rows per image, boxes in pixels.  Class names go through the label
map (the tutorial's ``generate_tfrecord.py`` hard-coded ``'face' -> 1`` instead, which broke
silently as soon as the label map said otherwise).  A row whose class and coordinates are
empty stands for an image with no boxes, kept as a negative.

The rows are grouped per image first (annotations only, a few dozen bytes per box); the
images are then read and written one at a time.
"""

from __future__ import annotations

import csv
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from odflow.data.convert import (
    BadInput,
    check_box_order,
    class_id,
    clean_boxes,
    load_image,
    resolve_label_map,
)
from odflow.data.example import ImageAnnotation
from odflow.data.records import RecordWriter
from odflow.data.summary import DatasetSummary
from odflow.errors import OdflowError

log = logging.getLogger(__name__)

COLUMNS = ("filename", "width", "height", "class", "xmin", "ymin", "xmax", "ymax")
_COORDS = ("xmin", "ymin", "xmax", "ymax")


@dataclass
class CsvImage:
    filename: str
    line: int                        # first row of this image
    width: int | None
    height: int | None
    rows: list[tuple[int, str, list[float]]] = field(default_factory=list)  # line, class, box


def _number(value: str, column: str, where: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise OdflowError(f"{where}: column {column!r} is {value!r}, not a number") from None


def read_csv(path: str | os.PathLike, bad: BadInput) -> list[CsvImage]:
    """Group the rows by image, in order of first appearance; bad rows go through ``bad``."""
    source = str(path)
    if not Path(path).is_file():
        raise OdflowError(f"{source}: CSV file not found")
    images: dict[str, CsvImage] = {}
    broken: set[str] = set()
    with open(path, newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is None:
            raise OdflowError(f"{source}: empty file; expected the header {','.join(COLUMNS)}")
        header = [h.strip() for h in header]
        missing = [c for c in COLUMNS if c not in header]
        if missing:
            raise OdflowError(f"{source}:1: wrong columns: missing {', '.join(missing)}; "
                              f"expected the header {','.join(COLUMNS)} (found {','.join(header)})")
        index = {c: header.index(c) for c in COLUMNS}
        for row in reader:
            line = reader.line_num
            if not any(cell.strip() for cell in row):
                continue
            where = f"{source}:{line}"
            try:
                if len(row) != len(header):
                    raise OdflowError(f"{where}: {len(row)} columns, the header has "
                                      f"{len(header)}: {','.join(row)!r}")
                values = {c: row[i].strip() for c, i in index.items()}
                if not values["filename"]:
                    raise OdflowError(f"{where}: empty filename")
                size = [int(_number(values[c], c, where)) if values[c] else None
                        for c in ("width", "height")]
                coords = [values[c] for c in _COORDS]
                if values["class"] or any(coords):
                    if not all(coords):
                        raise OdflowError(f"{where}: a box needs all of xmin, ymin, xmax, ymax")
                    box = [_number(v, c, where) for v, c in zip(coords, _COORDS)]
                    check_box_order(box, where)
                else:
                    box = None
            except OdflowError as error:
                bad(error, "malformed CSV row")
                if len(row) > index["filename"] and row[index["filename"]].strip():
                    broken.add(row[index["filename"]].strip())
                continue
            name = values["filename"]
            image = images.get(name)
            if image is None:
                image = images[name] = CsvImage(name, line, size[0], size[1])
            if box is not None:
                image.rows.append((line, values["class"], box))
    # An image with a skipped row would be written with a box missing: leave it out entirely.
    for name in broken:
        images.pop(name, None)
    return list(images.values())


def convert_csv(csv_path: str | os.PathLike, images_dir: str | os.PathLike,
                output_path: str | os.PathLike, *,
                label_map_path: str | os.PathLike, num_shards: int = 1,
                min_size: float = 0.0, drop_empty: bool = False,
                skip_bad: bool = False) -> DatasetSummary:
    """Convert a tutorial-style CSV with its image directory; returns the summary."""
    label_map = resolve_label_map(label_map_path)
    images_dir = Path(images_dir)
    if not images_dir.is_dir():
        raise OdflowError(f"{images_dir}: image directory not found")
    summary = DatasetSummary()
    bad = BadInput(summary, skip_bad)
    entries = read_csv(csv_path, bad)
    options = {"source": "csv", "csv": str(csv_path), "images": str(images_dir),
               "label_map": str(label_map_path), "min_size": min_size,
               "drop_empty": drop_empty}
    with RecordWriter(output_path, num_shards, summary, {"options": options},
                      source=csv_path) as writer:
        for entry in entries:
            source = f"{csv_path}:{entry.line}"
            try:
                ids = [class_id(label_map, name, f"{csv_path}:{line}")
                       for line, name, _ in entry.rows]
                image = load_image(images_dir / entry.filename, source)
                if entry.width is not None and entry.height is not None and (
                        (entry.width, entry.height) != (image.width, image.height)):
                    raise OdflowError(
                        f"{source}: the CSV gives {entry.filename} the size "
                        f"{entry.width}x{entry.height} but the image is "
                        f"{image.width}x{image.height}; were the boxes drawn on a resized copy?")
            except OdflowError as error:
                bad(error, "bad image or class")
                continue
            raw = np.asarray([box for _, _, box in entry.rows], np.float64).reshape(-1, 4)
            keep, boxes = clean_boxes(raw, image.height, image.width, min_size, summary)
            names = [name for (_, name, _), k in zip(entry.rows, keep) if k]
            ids = [i for i, k in zip(ids, keep) if k]
            if drop_empty and len(boxes) == 0:
                summary.drop_image("no boxes left (--drop-empty)")
                continue
            writer.write(ImageAnnotation(
                encoded=image.encoded, image_format=image.image_format,
                filename=entry.filename, source_id=entry.filename,
                height=image.height, width=image.width, boxes=boxes,
                class_texts=names, class_ids=ids))
    return summary
