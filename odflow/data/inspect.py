"""Check record files before hours of training find the problem for you.

Records made elsewhere (an old ``generate_tfrecord.py`` run, a colleague's script) can hold
boxes in pixels instead of [0, 1], inverted corners, a class id the label map does not have,
or a truncated or corrupt JPEG; the API only fails on these mid-training, if at all.
``inspect`` reads every record, decodes every image with TensorFlow's decoder (the one
training uses, so what passes here decodes there), and reports counts, box statistics and
each such error.
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from odflow import label_map as label_map_lib
from odflow.data import example as ex
from odflow.data.example import check_decodable, image_info
from odflow.data.records import expand_record_paths, iter_serialized
from odflow.data.summary import DatasetSummary
from odflow.errors import OdflowError

log = logging.getLogger(__name__)

#: How many error messages are kept verbatim (all are counted).
MAX_MESSAGES = 50


@dataclass
class InspectReport:
    files: dict[str, int] = field(default_factory=dict)          # path -> records
    summary: DatasetSummary = field(default_factory=DatasetSummary)
    formats: Counter = field(default_factory=Counter)
    image_heights: list[int] = field(default_factory=list)
    image_widths: list[int] = field(default_factory=list)
    box_heights: list[float] = field(default_factory=list)         # normalised
    box_widths: list[float] = field(default_factory=list)
    labels: Counter = field(default_factory=Counter)
    error_counts: Counter = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def num_errors(self) -> int:
        return sum(self.error_counts.values())

    def error(self, kind: str, message: str) -> None:
        self.error_counts[kind] += 1
        if len(self.errors) < MAX_MESSAGES:
            self.errors.append(message)

    def to_dict(self) -> dict:
        def stats(values: list[float]) -> dict | None:
            if not values:
                return None
            array = np.asarray(values, np.float64)
            return {"min": round(float(array.min()), 4), "mean": round(float(array.mean()), 4),
                    "max": round(float(array.max()), 4)}

        data = self.summary.to_dict()
        for key in ("dropped_boxes", "dropped_images", "adjusted_boxes", "num_warnings",
                    "warnings"):
            data.pop(key)
        if not self.summary.images:
            data["mean_boxes_per_image"] = None
        data.update({
            "files": dict(self.files),
            "labels": {str(k): v for k, v in sorted(self.labels.items())},
            "image_formats": dict(self.formats),
            "image_height": stats(self.image_heights),
            "image_width": stats(self.image_widths),
            "box_height_normalised": stats(self.box_heights),
            "box_width_normalised": stats(self.box_widths),
            "num_errors": self.num_errors,
            "error_counts": dict(self.error_counts),
            "errors": list(self.errors),
            "warnings": list(self.warnings),
        })
        return data


def _check_record(report: InspectReport, serialized: bytes, where: str,
                  known_ids: dict[int, str] | None, decode_images: bool,
                  seen_ids: set[str]) -> None:
    try:
        record = ex.decode_example(serialized, where)
    except OdflowError as error:
        report.error("malformed record", str(error))
        return
    report.formats[record.image_format or "(none)"] += 1
    image_where = f"{where} (image {record.filename or record.source_id!r}): image/encoded"
    try:
        image_format, height, width = image_info(record.encoded, image_where)
        if decode_images:
            check_decodable(record.encoded, image_where)
    except OdflowError as error:
        report.error("undecodable image", str(error))
        return
    if (height, width) != (record.height, record.width):
        report.error("wrong image size", f"{where}: image/height x width say {record.height}x"
                     f"{record.width} but the image is {height}x{width}")
    if record.image_format and record.image_format.lower() not in (image_format, "jpg"):
        report.warnings.append(f"{where}: image/format is {record.image_format!r} but the bytes "
                               f"are {image_format}")
    if record.source_id in seen_ids:
        report.error("duplicate source_id", f"{where}: image/source_id {record.source_id!r} "
                     "appears more than once (evaluation identifies images by it)")
    seen_ids.add(record.source_id)
    boxes = record.boxes
    if len(boxes):
        outside = np.any((boxes < 0) | (boxes > 1) | ~np.isfinite(boxes), axis=1)
        inverted = (boxes[:, 2] < boxes[:, 0]) | (boxes[:, 3] < boxes[:, 1])
        for i in np.flatnonzero(outside):
            report.error("box outside [0, 1]", f"{where}: box {i} {boxes[i].tolist()} "
                         "(ymin, xmin, ymax, xmax) is outside [0, 1]; are the boxes in pixels?")
        for i in np.flatnonzero(inverted & ~outside):
            report.error("inverted box", f"{where}: box {i} {boxes[i].tolist()} has max < min")
    for i, label in enumerate(record.classes.tolist()):
        report.labels[label] += 1
        if label < 1:
            report.error("bad label", f"{where}: object {i} has class id {label}; ids start at "
                         "1 (0 is the background)")
        elif known_ids is not None and label not in known_ids:
            report.error("label not in label map", f"{where}: object {i} has class id {label}, "
                         f"which the label map does not have (ids {sorted(known_ids)})")
        elif (known_ids is not None and i < len(record.class_texts)
              and record.class_texts[i] and record.class_texts[i] != known_ids[label]):
            report.warnings.append(f"{where}: object {i} is {record.class_texts[i]!r} but id "
                                   f"{label} is {known_ids[label]!r} in the label map")
    report.image_heights.append(record.height)
    report.image_widths.append(record.width)
    good = np.all((boxes >= 0) & (boxes <= 1), axis=1) if len(boxes) else np.zeros(0, bool)
    report.box_heights.extend((boxes[good, 2] - boxes[good, 0]).tolist())
    report.box_widths.extend((boxes[good, 3] - boxes[good, 1]).tolist())
    texts = (record.class_texts if len(record.class_texts) == len(boxes)
             else [str(c) for c in record.classes.tolist()])
    report.summary.add_image(record.height, record.width, boxes[good],
                             [t for t, g in zip(texts, good) if g])


def inspect_records(patterns: str | os.PathLike | Sequence[str | os.PathLike],
                    label_map_path: str | os.PathLike | None = None,
                    decode_images: bool = True) -> InspectReport:
    """Read every record of the files; collect statistics and errors (never raises for them)."""
    known_ids = (label_map_lib.load(label_map_path).id_to_name
                 if label_map_path else None)
    report = InspectReport()
    seen_ids: set[str] = set()
    for path in expand_record_paths(patterns):
        count = 0
        try:
            for index, serialized in enumerate(iter_serialized(path)):
                count += 1
                _check_record(report, serialized, f"{path}: record {index}", known_ids,
                              decode_images, seen_ids)
        except OdflowError as error:
            report.error("truncated file", str(error))
        report.files[path] = count
    return report


def find_undecodable(patterns: str | os.PathLike | Sequence[str | os.PathLike],
                     limit: int = 10) -> list[str]:
    """Up to ``limit`` messages naming each image TensorFlow cannot decode: record file,
    record index and image filename.

    For an input pipeline that failed with ``jpeg::Uncompress failed``, which names nothing:
    this finds the culprit by decoding each image as training does, in file order.
    """
    found: list[str] = []
    for path in expand_record_paths(patterns):
        for index, serialized in enumerate(iter_serialized(path)):
            where = f"{path}: record {index}"
            try:
                record = ex.decode_example(serialized, where)
                check_decodable(record.encoded,
                                f"{where} (image {record.filename or record.source_id!r})")
            except OdflowError as error:
                found.append(str(error))
                if len(found) >= limit:
                    return found
    return found


def format_report(report: InspectReport) -> str:
    """A short human-readable account (the JSON has everything)."""
    data = report.to_dict()
    lines = [f"{path}: {count} records" for path, count in report.files.items()]
    lines.append(f"images {data['images']} ({data['images_without_boxes']} without boxes), "
                 f"boxes {data['boxes']}, labels {data['labels']}")
    if data["boxes_per_class"]:
        lines.append(f"boxes per class: {data['boxes_per_class']}")
    if data["image_height"]:
        lines.append(f"image height {data['image_height']}, width {data['image_width']}")
    if data["box_height_normalised"]:
        lines.append(f"box height (normalised) {data['box_height_normalised']}, "
                     f"width {data['box_width_normalised']}")
        lines.append(f"box sizes (sqrt area, px): {data['box_size_histogram']['bins']}")
    for message in report.warnings[:MAX_MESSAGES]:
        lines.append(f"warning: {message}")
    if report.num_errors:
        lines.append(f"{report.num_errors} errors: {dict(report.error_counts)}")
        lines.extend(f"  {message}" for message in report.errors)
        if report.num_errors > len(report.errors):
            lines.append(f"  ... and {report.num_errors - len(report.errors)} more")
    else:
        lines.append("no errors")
    return "\n".join(lines)
