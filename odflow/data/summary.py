"""What went into a record file, and what was left out and why.

The tutorial's conversion printed nothing: a user could not tell that half the faces were
dropped as too small or that an image was missing.  Every output record gets a sidecar
``<output>.summary.json`` with the counts, so a surprising number is one ``cat`` away.
"""

from __future__ import annotations

import bisect
import json
import math
import os
from collections import Counter
from pathlib import Path

import numpy as np

from odflow.utils.atomic import atomic_write_text

#: Edges (pixels) of the box size histogram; size is sqrt(width * height) of the box.
SIZE_BIN_EDGES = (0, 8, 16, 32, 64, 96, 128, 256, 512)
#: How many warning messages are kept verbatim (the counts are always complete).
MAX_WARNING_MESSAGES = 100


def summary_path_for(output_path: str | os.PathLike) -> Path:
    """``train.record`` -> ``train.record.summary.json`` (beside the output, whatever the shards)."""
    output = Path(output_path)
    return output.with_name(output.name + ".summary.json")


def _bin_label(index: int) -> str:
    lo = SIZE_BIN_EDGES[index]
    if index + 1 < len(SIZE_BIN_EDGES):
        return f"{lo}-{SIZE_BIN_EDGES[index + 1]}"
    return f"{lo}+"


class DatasetSummary:
    """Counters filled while converting; ``to_dict`` is the sidecar's content."""

    def __init__(self) -> None:
        self.images = 0
        self.images_without_boxes = 0
        self.boxes = 0
        self.boxes_per_class: Counter[str] = Counter()
        self.size_histogram = [0] * len(SIZE_BIN_EDGES)
        # COCO's area categories, the ones AP small/medium/large are reported for.
        self.coco_sizes: Counter[str] = Counter()
        self.dropped_boxes: Counter[str] = Counter()
        self.dropped_images: Counter[str] = Counter()
        self.adjusted_boxes: Counter[str] = Counter()
        self.num_warnings = 0
        self.warnings: list[str] = []

    def add_image(self, height: int, width: int, boxes: np.ndarray,
                  class_texts: list[str] | tuple[str, ...]) -> None:
        """Count one written image; ``boxes`` normalised ``[ymin, xmin, ymax, xmax]``."""
        self.images += 1
        n = len(boxes)
        self.boxes += n
        if n == 0:
            self.images_without_boxes += 1
            return
        self.boxes_per_class.update(class_texts)
        # Plain Python: a handful of boxes per image, where numpy's call overhead dominates.
        rows = boxes.tolist() if isinstance(boxes, np.ndarray) else list(boxes)
        for ymin, xmin, ymax, xmax in rows:
            area = max((ymax - ymin) * height, 0.0) * max((xmax - xmin) * width, 0.0)
            self.size_histogram[max(bisect.bisect_right(SIZE_BIN_EDGES, math.sqrt(area)) - 1,
                                    0)] += 1
            self.coco_sizes["small" if area < 32 ** 2 else
                            "medium" if area < 96 ** 2 else "large"] += 1

    def drop_boxes(self, reason: str, count: int = 1) -> None:
        if count:
            self.dropped_boxes[reason] += count

    def drop_image(self, reason: str, count: int = 1) -> None:
        if count:
            self.dropped_images[reason] += count

    def note_boxes(self, what: str, count: int = 1) -> None:
        """Boxes kept but changed (e.g. clipped to the image)."""
        if count:
            self.adjusted_boxes[what] += count

    def warn(self, message: str) -> None:
        self.num_warnings += 1
        if len(self.warnings) < MAX_WARNING_MESSAGES:
            self.warnings.append(message)

    def to_dict(self) -> dict:
        return {
            "images": self.images,
            "images_without_boxes": self.images_without_boxes,
            "boxes": self.boxes,
            "boxes_per_class": dict(sorted(self.boxes_per_class.items())),
            "box_size_histogram": {
                "measure": "sqrt(box width * box height) in pixels",
                "bins": {_bin_label(i): c for i, c in enumerate(self.size_histogram)},
            },
            "coco_area_categories": {k: self.coco_sizes.get(k, 0)
                                     for k in ("small", "medium", "large")},
            "mean_boxes_per_image": (round(self.boxes / self.images, 3)
                                     if self.images else math.nan),
            "dropped_boxes": dict(sorted(self.dropped_boxes.items())),
            "dropped_images": dict(sorted(self.dropped_images.items())),
            "adjusted_boxes": dict(sorted(self.adjusted_boxes.items())),
            "num_warnings": self.num_warnings,
            "warnings": list(self.warnings),
        }

    def write(self, path: str | os.PathLike, extra: dict | None = None) -> None:
        data = self.to_dict()
        if math.isnan(data["mean_boxes_per_image"]):
            data["mean_boxes_per_image"] = None
        if extra:
            data.update(extra)
        atomic_write_text(path, json.dumps(data, indent=2) + "\n")
