"""Anchor coverage: the fraction of ground-truth boxes some anchor can match.

For each box, the best IoU over all anchors (a vectorised numpy IoU, a chunk of boxes at a
time so memory stays near ``chunk x anchors`` floats); a box is *covered* when that IoU reaches
the matcher's ``matched_threshold`` (the SSD analogue of YOLO's "best possible recall").

IoU is the same whether boxes are in normalised or pixel units (scaling each axis scales every
area by the same factor), so it is computed on the normalised boxes; sizes are in pixels at the
model's input size (the fixed-shape resizer stretches each axis to it), split as COCO splits
areas: small < 32^2, medium < 96^2, large the rest.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

#: COCO's area ranges, in pixels squared (at the model's input size here).
SMALL_AREA = 32.0**2
MEDIUM_AREA = 96.0**2
SIZE_NAMES = ("small", "medium", "large")

#: Box-anchor pairs per IoU chunk (256 k float32 = 1 MB per temporary array: in cache).
DEFAULT_CHUNK_ELEMENTS = 262_144


def best_iou(boxes: np.ndarray, anchors: np.ndarray,
             chunk_elements: int = DEFAULT_CHUNK_ELEMENTS) -> np.ndarray:
    """For each of ``boxes`` ``[N, 4]`` the highest IoU with any of ``anchors`` ``[A, 4]``.

    Both are ``[ymin, xmin, ymax, xmax]`` in the same units; a box or anchor of zero area has
    IoU 0 with everything.  Returns float32 ``[N]`` (zeros when there are no anchors).  Works
    in float32 on chunks small enough to stay in cache (several times faster than one big
    float64 array: the fit scores dozens of candidates).
    """
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    anchors = np.asarray(anchors, np.float32).reshape(-1, 4)
    result = np.zeros(len(boxes), np.float32)
    if len(boxes) == 0 or len(anchors) == 0:
        return result
    a_ymin, a_xmin, a_ymax, a_xmax = (anchors[:, i][None, :] for i in range(4))
    anchor_area = _area(anchors)[None, :]
    step = max(1, chunk_elements // len(anchors))
    for start in range(0, len(boxes), step):
        chunk = boxes[start:start + step]
        height = np.minimum(chunk[:, 2:3], a_ymax)
        height -= np.maximum(chunk[:, 0:1], a_ymin)
        np.clip(height, 0.0, None, out=height)
        width = np.minimum(chunk[:, 3:4], a_xmax)
        width -= np.maximum(chunk[:, 1:2], a_xmin)
        np.clip(width, 0.0, None, out=width)
        height *= width  # the intersection
        union = anchor_area + _area(chunk)[:, None]
        union -= height
        np.divide(height, union, out=height, where=union > 0)
        height[union <= 0] = 0.0
        result[start:start + step] = height.max(axis=1)
    return result


def _area(boxes: np.ndarray) -> np.ndarray:
    """Areas ``[N]`` of ``[N, 4]`` boxes (0 for an inverted box)."""
    return (np.clip(boxes[:, 2] - boxes[:, 0], 0.0, None)
            * np.clip(boxes[:, 3] - boxes[:, 1], 0.0, None))


def size_names(widths_px: np.ndarray, heights_px: np.ndarray) -> np.ndarray:
    """COCO's size of each box (``small``/``medium``/``large``) from its pixel area."""
    area = np.asarray(widths_px, np.float64) * np.asarray(heights_px, np.float64)
    return np.where(area < SMALL_AREA, "small", np.where(area < MEDIUM_AREA, "medium", "large"))


@dataclass(frozen=True)
class SizeCoverage:
    """Covered boxes among those of one size (``fraction`` is None when there are none)."""

    boxes: int
    covered: int

    @property
    def fraction(self) -> float | None:
        return self.covered / self.boxes if self.boxes else None


@dataclass(frozen=True)
class Coverage:
    """Coverage of a set of boxes by a set of anchors at a threshold."""

    threshold: float
    overall: SizeCoverage
    by_size: dict[str, SizeCoverage]
    mean_best_iou: float
    best_ious: np.ndarray = field(repr=False, compare=False)

    @property
    def fraction(self) -> float | None:
        return self.overall.fraction

    def to_dict(self) -> dict:
        """Numbers for a JSON file (the per-box IoUs are left out)."""
        def entry(counts: SizeCoverage) -> dict:
            return {"boxes": counts.boxes, "covered": counts.covered,
                    "fraction": counts.fraction}
        return {"matched_threshold": self.threshold, **entry(self.overall),
                "mean_best_iou": self.mean_best_iou,
                "by_size": {name: entry(self.by_size[name]) for name in SIZE_NAMES}}

    def line(self) -> str:
        """``anchor coverage: 61 % of 4,331 boxes (small 12 %)``, the log's one line."""
        if not self.overall.boxes:
            return "anchor coverage: no ground-truth boxes in the training records"
        text = f"anchor coverage: {percent(self.fraction)} of {self.overall.boxes:,} boxes"
        small = self.by_size["small"]
        if small.boxes:
            text += f" (small {percent(small.fraction)})"
        return text


def percent(fraction: float | None) -> str:
    """``0.6123`` -> ``61 %``; below 10 % one decimal (``3.7 %``), as a reader needs there."""
    if fraction is None:
        return "n/a"
    value = 100.0 * fraction
    return f"{value:.1f} %" if 0 < value < 10 else f"{value:.0f} %"


def compute_coverage(boxes: np.ndarray, anchors: np.ndarray, threshold: float,
                     image_size: tuple[int, int]) -> Coverage:
    """Coverage of normalised ``boxes`` ``[N, 4]`` by normalised ``anchors`` ``[A, 4]``.

    ``image_size`` is the model's input ``(height, width)``: it gives the boxes' pixel sizes
    for the small/medium/large split.
    """
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    ious = best_iou(boxes, anchors)
    covered = ious >= threshold
    height, width = image_size
    sizes = size_names((boxes[:, 3] - boxes[:, 1]) * width, (boxes[:, 2] - boxes[:, 0]) * height)
    by_size = {name: SizeCoverage(int((sizes == name).sum()), int(covered[sizes == name].sum()))
               for name in SIZE_NAMES}
    return Coverage(threshold=float(threshold),
                    overall=SizeCoverage(len(boxes), int(covered.sum())),
                    by_size=by_size,
                    mean_best_iou=float(ious.mean()) if len(ious) else 0.0,
                    best_ious=ious)
