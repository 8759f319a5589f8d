"""WIDER FACE as downloaded -> records, without flattening, copying or deleting anything.

The annotation file ``wider_face_split/wider_face_<split>_bbx_gt.txt`` is a sequence of blocks:
the image path (relative to ``WIDER_<split>/images/``), the face count, then one line per face
``x1 y1 w h blur expression illumination invalid occlusion pose`` in pixels.  An image with no
faces has the count 0 followed by one line of zeros; a count of 0 followed by a face is an
error (the faces would be lost), as is any other mismatch between the count and the lines.

The tutorial deleted the face-less images from disk; here they stay as negatives (or are left
out of the record with ``--drop-empty``), and the user's files are only ever read.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from odflow.data.convert import (
    INVALID,
    BadInput,
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

FACE_FIELDS = ("x1", "y1", "w", "h", "blur", "expression", "illumination", "invalid",
               "occlusion", "pose")
_INVALID_COLUMN = FACE_FIELDS.index("invalid")
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")


@dataclass
class WiderEntry:
    """One image's block of the annotation file."""

    path: str
    line: int                       # 1-based line of the image path
    faces: np.ndarray = field(default_factory=lambda: np.zeros((0, 10), np.float64))


@dataclass
class WiderProblem:
    """A block that could not be read; the parser resumes at the next image path."""

    line: int
    message: str
    path: str | None = None


def _numbers(line: str) -> list[float] | None:
    """The line's fields as numbers, or None when it is not all numbers (an image path)."""
    fields = line.split()
    if not fields:
        return None
    try:
        return [float(f) for f in fields]
    except ValueError:
        return None


def _is_image_path(text: str) -> bool:
    """``<event>/<name>.jpg``: how every block of the file starts."""
    return _numbers(text) is None and (
        "/" in text or os.path.splitext(text)[1].lower() in IMAGE_EXTENSIONS)


def parse_annotations(path: str | os.PathLike) -> Iterator[WiderEntry | WiderProblem]:
    """Stream the blocks of a ``wider_face_*_bbx_gt.txt`` file.

    Yields a ``WiderProblem`` (with the file and line in its message) for a block that is
    malformed or whose face count does not match the lines that follow, then continues at
    the next image path, so ``--skip-bad`` can count it and go on.
    """
    source = str(path)
    if not Path(path).is_file():
        raise OdflowError(f"{source}: WIDER FACE annotation file not found")
    with open(path, encoding="utf-8") as handle:
        lines = ((number, raw.strip()) for number, raw in enumerate(handle, start=1))
        pending: tuple[int, str] | None = None

        def next_line() -> tuple[int, str] | None:
            nonlocal pending
            if pending is not None:
                item, pending = pending, None
                return item
            for number, text in lines:
                if text:
                    return number, text
            return None

        def push_back(item: tuple[int, str]) -> None:
            nonlocal pending
            pending = item

        def skip_to_next_path() -> None:
            while (item := next_line()) is not None:
                if _is_image_path(item[1]):
                    push_back(item)
                    return

        while (item := next_line()) is not None:
            path_line, image_path = item
            if not _is_image_path(image_path):
                yield WiderProblem(path_line, f"{source}:{path_line}: expected an image path "
                                   f"(<event>/<name>.jpg), found {image_path!r}")
                skip_to_next_path()
                continue
            count_item = next_line()
            if count_item is None:
                yield WiderProblem(path_line, f"{source}:{path_line}: {image_path} has no face "
                                   "count line (file cut short?)", image_path)
                return
            count_line, count_text = count_item
            count_values = _numbers(count_text)
            if (count_values is None or len(count_values) != 1 or count_values[0] < 0
                    or count_values[0] != int(count_values[0])):
                yield WiderProblem(count_line, f"{source}:{count_line}: expected the face count "
                                   f"of {image_path}, found {count_text!r}", image_path)
                if _is_image_path(count_text):
                    push_back(count_item)  # the count line is missing: this is the next block
                else:
                    skip_to_next_path()
                continue
            count = int(count_values[0])
            faces: list[list[float]] = []
            problem: WiderProblem | None = None
            # A count of 0 is followed by one line of zeros (read and ignored).
            expected_lines = max(count, 1)
            while len(faces) < expected_lines:
                face_item = next_line()
                if face_item is None or _is_image_path(face_item[1]):
                    if count == 0:
                        if face_item is not None:
                            push_back(face_item)
                        break
                    where = face_item[0] if face_item else count_line
                    problem = WiderProblem(
                        count_line, f"{source}:{count_line}: the face count of {image_path} is "
                        f"{count} but {len(faces)} face lines follow (line {where} "
                        f"{'is the next image path' if face_item else 'is the end of file'})",
                        image_path)
                    if face_item is not None:
                        push_back(face_item)
                    break
                face_line, face_text = face_item
                values = _numbers(face_text)
                if count == 0:
                    if values is not None and not any(values):
                        break  # the placeholder line of an image without faces
                    problem = WiderProblem(
                        count_line, f"{source}:{count_line}: the face count of {image_path} is 0 "
                        f"but line {face_line} is not the placeholder line of zeros: "
                        f"{face_text!r}; set the count to the number of face lines that follow",
                        image_path)
                    skip_to_next_path()
                    break
                if values is None or len(values) != len(FACE_FIELDS):
                    found = "text" if values is None else f"{len(values)} numbers"
                    problem = WiderProblem(
                        face_line, f"{source}:{face_line}: malformed face line for {image_path}: "
                        f"expected {len(FACE_FIELDS)} numbers ({' '.join(FACE_FIELDS)}), "
                        f"found {found}: {face_text!r}", image_path)
                    skip_to_next_path()
                    break
                faces.append(values)
            if problem is not None:
                yield problem
                continue
            # More face lines than the count says: the next line is numeric, not a path.
            extra = next_line()
            if extra is not None:
                if _numbers(extra[1]) is not None:
                    yield WiderProblem(
                        count_line, f"{source}:{count_line}: the face count of {image_path} is "
                        f"{count} but more face lines follow (line {extra[0]}: {extra[1]!r})",
                        image_path)
                    skip_to_next_path()
                    continue
                push_back(extra)
            array = np.asarray(faces[:count], np.float64).reshape(-1, len(FACE_FIELDS))
            yield WiderEntry(image_path, path_line, array)


def split_paths(root: str | os.PathLike, split: str) -> tuple[Path, Path]:
    """``(annotation file, image directory)`` of a split in the download's own layout."""
    root = Path(root)
    return (root / "wider_face_split" / f"wider_face_{split}_bbx_gt.txt",
            root / f"WIDER_{split}" / "images")


def convert_wider(annotations: str | os.PathLike, images_dir: str | os.PathLike,
                  output_path: str | os.PathLike, *,
                  label_map_path: str | os.PathLike | None = None,
                  class_name: str = "face", num_shards: int = 1,
                  drop_invalid: bool = False, min_size: float = 0.0,
                  drop_empty: bool = False, skip_bad: bool = False,
                  max_images: int | None = None) -> DatasetSummary:
    """Convert one WIDER FACE split to ``output_path`` (and its summary); returns the summary."""
    label_map = resolve_label_map(label_map_path, [class_name])
    label = class_id(label_map, class_name, str(label_map_path or "--class-name"))
    images_dir = Path(images_dir)
    if not images_dir.is_dir():
        raise OdflowError(f"{images_dir}: WIDER FACE image directory not found "
                          "(expected WIDER_<split>/images as downloaded)")
    summary = DatasetSummary()
    bad = BadInput(summary, skip_bad)
    options = {"source": "wider_face", "annotations": str(annotations),
               "images": str(images_dir), "class": class_name, "label": label,
               "drop_invalid": drop_invalid, "min_size": min_size, "drop_empty": drop_empty}
    with RecordWriter(output_path, num_shards, summary, {"options": options},
                      source=annotations) as writer:
        seen = 0
        for entry in parse_annotations(annotations):
            if max_images is not None and seen >= max_images:
                break
            seen += 1
            if isinstance(entry, WiderProblem):
                bad(entry.message, "malformed annotation")
                continue
            source = f"{annotations}:{entry.line}"
            try:
                image = load_image(images_dir / entry.path, source)
            except OdflowError as error:
                bad(error, "missing or unreadable image")
                continue
            faces = entry.faces.tolist()
            if drop_invalid:
                valid = [f for f in faces if f[_INVALID_COLUMN] == 0]
                summary.drop_boxes(INVALID, len(faces) - len(valid))
                faces = valid
            _, boxes = clean_boxes([(x, y, x + w, y + h) for x, y, w, h, *_ in faces],
                                   image.height, image.width, min_size, summary)
            if drop_empty and len(boxes) == 0:
                summary.drop_image("no faces left (--drop-empty)")
                continue
            n = len(boxes)
            writer.write(ImageAnnotation(
                encoded=image.encoded, image_format=image.image_format,
                filename=entry.path, source_id=entry.path,
                height=image.height, width=image.width, boxes=boxes,
                class_texts=[class_name] * n, class_ids=[label] * n))
    return summary
