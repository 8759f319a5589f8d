"""What ``odflow detect`` writes: COCO-results JSON, a CSV, and annotated JPEGs.

Boxes leave in pixels of the original image: COCO's ``bbox`` is ``[x, y, width, height]``;
the CSV has the tutorial's corner columns (``xmin, ymin, xmax, ymax``) plus the score.
"""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path

import numpy as np

from odflow.detect.runners import Detections
from odflow.utils.atomic import atomic_open, atomic_output

CSV_COLUMNS = ["filename", "width", "height", "class", "score", "xmin", "ymin", "xmax", "ymax"]
COLORS = ["#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6"]


def pixel_boxes(detections: Detections, height: int, width: int) -> np.ndarray:
    """Normalised ``[ymin, xmin, ymax, xmax]`` -> pixel ``[xmin, ymin, xmax, ymax]``."""
    b = detections.boxes.astype(np.float64)
    return np.stack([b[:, 1] * width, b[:, 0] * height, b[:, 3] * width, b[:, 2] * height],
                    axis=1)


class Results:
    """Collects the rows for ``detections.json`` and ``detections.csv``."""

    def __init__(self, names: dict[int, str]) -> None:
        self.names = names
        self.coco: list[dict] = []
        self.rows: list[list] = []
        self.images: list[dict] = []

    def add(self, image_id: int, file_name: str, height: int, width: int,
            detections: Detections) -> None:
        self.images.append({"id": image_id, "file_name": file_name, "height": height,
                            "width": width})
        for (x0, y0, x1, y1), score, cls in zip(pixel_boxes(detections, height, width),
                                                detections.scores, detections.classes):
            self.coco.append({"image_id": image_id, "file_name": file_name,
                              "category_id": int(cls),
                              "bbox": [round(x0, 2), round(y0, 2), round(x1 - x0, 2),
                                       round(y1 - y0, 2)],
                              "score": round(float(score), 5)})
            self.rows.append([file_name, width, height, self.names.get(int(cls), str(int(cls))),
                              round(float(score), 5), round(x0, 1), round(y0, 1), round(x1, 1),
                              round(y1, 1)])

    def write(self, output_dir: Path) -> None:
        with atomic_open(output_dir / "detections.json", "w", encoding="utf-8") as handle:
            json.dump(self.coco, handle, indent=1)
            handle.write("\n")
        with atomic_open(output_dir / "images.json", "w", encoding="utf-8") as handle:
            json.dump(self.images, handle, indent=1)
            handle.write("\n")
        with atomic_open(output_dir / "detections.csv", "w", newline="",
                         encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(CSV_COLUMNS)
            writer.writerows(self.rows)


def annotated_name(file_name: str, index: int) -> str:
    """A flat, unique JPEG name for an input (inputs from several folders may share names)."""
    stem = Path(file_name).stem or "image"
    return f"{index:06d}_{stem}.jpg"


def write_annotated(path: str | os.PathLike, image: np.ndarray, detections: Detections,
                    names: dict[int, str]) -> None:
    """The image with each box, its label name and score drawn on it, as a JPEG (atomic)."""
    from PIL import Image, ImageDraw

    height, width = image.shape[:2]
    canvas = Image.fromarray(image)
    draw = ImageDraw.Draw(canvas)
    line = max(1, round(min(height, width) / 200))
    for (x0, y0, x1, y1), score, cls in zip(pixel_boxes(detections, height, width),
                                            detections.scores, detections.classes):
        color = COLORS[int(cls) % len(COLORS)]
        draw.rectangle([x0, y0, x1, y1], outline=color, width=line)
        label = f"{names.get(int(cls), str(int(cls)))} {score:.2f}"
        left, top, right, bottom = draw.textbbox((x0, y0), label)
        text_y = y0 - (bottom - top) - 2 if y0 - (bottom - top) - 2 >= 0 else y0
        draw.rectangle([x0, text_y, x0 + (right - left) + 4, text_y + (bottom - top) + 2],
                       fill=color)
        draw.text((x0 + 2, text_y), label, fill="white")
    buffer = io.BytesIO()
    canvas.save(buffer, format="JPEG", quality=90)
    with atomic_output(path) as tmp:
        tmp.write_bytes(buffer.getvalue())
