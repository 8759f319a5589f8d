"""COCO box metrics with the TF Object Detection API's names and semantics.

Upstream's ``CocoDetectionEvaluator`` fed pycocotools one Python dict per box and took
over a minute on WIDER FACE's validation set; training waits for that on every
evaluation.  faster-coco-eval runs the same algorithm in C++ and gives the same twelve
numbers, so it is the default; pycocotools stays available as the reference the tests
compare against.  Both get their COCO objects built in memory, with the per-box dicts
made in one pass over numpy columns (no JSON files, no ``loadRes`` polygon padding).
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from odflow.errors import OdflowError
from odflow.utils.atomic import atomic_write_text

logger = logging.getLogger(__name__)

BACKENDS = ("faster", "pycocotools")

#: Where evaluation events go inside a model_dir (the TF OD API's name), for TensorBoard.
EVAL_SUBDIR = "eval_0"

METRIC_KEYS: tuple[str, ...] = (
    "DetectionBoxes_Precision/mAP",
    "DetectionBoxes_Precision/mAP@.50IOU",
    "DetectionBoxes_Precision/mAP@.75IOU",
    "DetectionBoxes_Precision/mAP (small)",
    "DetectionBoxes_Precision/mAP (medium)",
    "DetectionBoxes_Precision/mAP (large)",
    "DetectionBoxes_Recall/AR@1",
    "DetectionBoxes_Recall/AR@10",
    "DetectionBoxes_Recall/AR@100",
    "DetectionBoxes_Recall/AR@100 (small)",
    "DetectionBoxes_Recall/AR@100 (medium)",
    "DetectionBoxes_Recall/AR@100 (large)",
)
PER_CATEGORY_PREFIX = "DetectionBoxes_PerformanceByCategory/mAP/"

# (is_precision, IoU label, area label, maxDets) of each metric, in METRIC_KEYS order; the
# labels are the ones pycocotools prints.
_SUMMARY_ROWS: tuple[tuple[bool, str, str, int], ...] = (
    (True, "0.50:0.95", "all", 100),
    (True, "0.50", "all", 100),
    (True, "0.75", "all", 100),
    (True, "0.50:0.95", "small", 100),
    (True, "0.50:0.95", "medium", 100),
    (True, "0.50:0.95", "large", 100),
    (False, "0.50:0.95", "all", 1),
    (False, "0.50:0.95", "all", 10),
    (False, "0.50:0.95", "all", 100),
    (False, "0.50:0.95", "small", 100),
    (False, "0.50:0.95", "medium", 100),
    (False, "0.50:0.95", "large", 100),
)

ImageId = str | int | bytes


def format_summary(metrics: dict[str, float]) -> str:
    """The twelve lines exactly as pycocotools' ``summarize()`` prints them.

    Training logs and ``eval/metrics.json`` readers show these, because that is the table
    every TF Object Detection API user knows how to read.
    """
    lines = []
    for key, (is_precision, iou, area, max_dets) in zip(METRIC_KEYS, _SUMMARY_ROWS):
        title, kind = ("Average Precision", "(AP)") if is_precision else ("Average Recall", "(AR)")
        lines.append(
            f" {title:<18} {kind} @[ IoU={iou:<9} | area={area:>6s} | maxDets={max_dets:>3d} ]"
            f" = {metrics[key]:0.3f}"
        )
    return "\n".join(lines)


@dataclass
class _Boxes:
    """Boxes of one image, already checked and converted to float64 / int64."""

    boxes: np.ndarray  # [N, 4] ymin, xmin, ymax, xmax in pixels
    classes: np.ndarray  # [N]
    extra: np.ndarray  # [N]: is_crowd for groundtruth, scores for detections


class CocoEvaluator:
    """Collects groundtruth and detections per image, then computes COCO box metrics.

    Images enter with their groundtruth first (an image without boxes is a valid negative
    image); detections for an image nobody gave groundtruth for are an error, as upstream.
    A second groundtruth or detection set for the same image is ignored with a warning,
    again as upstream, so an eval record with a repeated image does not stop training.
    """

    def __init__(self, categories: Sequence[dict], backend: str = "faster",
                 include_per_category: bool = False) -> None:
        if backend not in BACKENDS:
            raise OdflowError(f"unknown COCO evaluation backend {backend!r}; use one of {BACKENDS}")
        self._categories = _check_categories(categories)
        self._category_ids = np.array(sorted(c["id"] for c in self._categories), dtype=np.int64)
        self.backend = backend
        self.include_per_category = include_per_category
        self.clear()

    def clear(self) -> None:
        """Forget every image, box and result (for the next evaluation round)."""
        self._image_ids: dict[ImageId, int] = {}
        self._groundtruth: list[_Boxes] = []
        self._detections: dict[int, _Boxes] = {}
        self._dropped_detections = 0
        self._metrics: dict[str, float] | None = None
        self._elapsed_seconds = 0.0

    @property
    def num_images(self) -> int:
        return len(self._groundtruth)

    @property
    def num_groundtruth_boxes(self) -> int:
        return sum(len(g.classes) for g in self._groundtruth)

    @property
    def num_detections(self) -> int:
        return sum(len(d.classes) for d in self._detections.values())

    def add_groundtruth(self, image_id: ImageId, boxes_abs: np.ndarray, classes: np.ndarray,
                        is_crowd: np.ndarray | None = None) -> None:
        """Add one image's groundtruth: boxes ``[N, 4]`` (ymin, xmin, ymax, xmax, pixels)."""
        key = _image_key(image_id)
        if key in self._image_ids:
            logger.warning("groundtruth for image %r was already added; ignoring the repeat", key)
            return
        boxes = _check_boxes(boxes_abs, key, "groundtruth")
        labels = _check_classes(classes, len(boxes), key, "groundtruth")
        unknown = np.setdiff1d(labels, self._category_ids)
        if unknown.size:
            raise OdflowError(
                f"groundtruth of image {key!r} has class id(s) {unknown.tolist()} that are not in "
                f"the label map (ids {self._category_ids.tolist()}); fix the records or the label map")
        if is_crowd is None:
            crowd = np.zeros(len(boxes), dtype=np.int64)
        else:
            flags = np.asarray(is_crowd).reshape(-1)
            if len(flags) != len(boxes):
                raise OdflowError(f"groundtruth of image {key!r}: {len(flags)} is_crowd flags "
                                  f"for {len(boxes)} boxes")
            bad = flags[~np.isin(flags, (0, 1))]
            if bad.size:
                raise OdflowError(f"groundtruth of image {key!r}: is_crowd flags must be 0 or 1, "
                                  f"got {bad[:5].tolist()}")
            crowd = flags.astype(np.int64)
        self._image_ids[key] = len(self._groundtruth) + 1
        self._groundtruth.append(_Boxes(boxes, labels, crowd))
        self._metrics = None

    def add_detections(self, image_id: ImageId, boxes_abs: np.ndarray, scores: np.ndarray,
                       classes: np.ndarray) -> None:
        """Add one image's detections: boxes ``[M, 4]`` in pixels, scores ``[M]``, classes ``[M]``.

        Class ids outside the label map (possible when its ids have gaps) are dropped, as the
        TF Object Detection API does; ``evaluate()`` warns how many.
        """
        key = _image_key(image_id)
        coco_id = self._image_ids.get(key)
        if coco_id is None:
            raise OdflowError(
                f"detections for image {key!r} but no groundtruth: add its groundtruth first "
                "(an image without boxes is added with an empty box array)")
        if coco_id in self._detections:
            logger.warning("detections for image %r were already added; ignoring the repeat", key)
            return
        boxes = _check_boxes(boxes_abs, key, "detection")
        labels = _check_classes(classes, len(boxes), key, "detection")
        score_values = np.asarray(scores, dtype=np.float64).reshape(-1)
        if len(score_values) != len(boxes):
            raise OdflowError(f"detections of image {key!r}: {len(score_values)} scores for "
                              f"{len(boxes)} boxes")
        if not np.all(np.isfinite(score_values)):
            raise OdflowError(f"detections of image {key!r} have non-finite scores")
        known = np.isin(labels, self._category_ids)
        self._dropped_detections += int(np.count_nonzero(~known))
        self._detections[coco_id] = _Boxes(boxes[known], labels[known], score_values[known])
        self._metrics = None

    def evaluate(self) -> dict[str, float]:
        """The twelve COCO numbers under the upstream names (+ per-category AP if asked)."""
        if not self._groundtruth:
            raise OdflowError("nothing to evaluate: no images were added "
                              "(is the eval record empty?)")
        if self._dropped_detections:
            logger.warning("%d detections had class ids outside the label map and were ignored",
                           self._dropped_detections)
        start = time.perf_counter()
        gt_dataset = self._groundtruth_dataset()
        dt_dataset = self._detection_dataset()
        stats, precision = _RUNNERS[self.backend](gt_dataset, dt_dataset)
        metrics = {key: float(value) for key, value in zip(METRIC_KEYS, stats)}
        if self.include_per_category:
            metrics.update(self._per_category_ap(precision))
        self._elapsed_seconds = time.perf_counter() - start
        self._metrics = metrics
        logger.info("COCO evaluation (%s) of %d images took %.2f s", self.backend,
                    self.num_images, self._elapsed_seconds)
        return dict(metrics)

    def summary_text(self) -> str:
        """The pycocotools table of the last ``evaluate()`` (evaluating first if needed)."""
        return format_summary(self._results())

    def write_json(self, path: str | os.PathLike, extra: Mapping[str, Any] | None = None
                   ) -> None:
        """Write the metrics and what they were computed from, atomically.

        ``extra`` (e.g. the global step and checkpoint the metrics measure) is added to the
        top level, so callers need not rebuild the payload.
        """
        payload: dict[str, Any] = {
            "metrics": self._results(),
            "num_images": self.num_images,
            "num_groundtruth_boxes": self.num_groundtruth_boxes,
            "num_detections": self.num_detections,
            "backend": self.backend,
            "elapsed_seconds": round(self._elapsed_seconds, 3),
        }
        payload.update(extra or {})
        atomic_write_text(path, json.dumps(payload, indent=2) + "\n")

    def _results(self) -> dict[str, float]:
        if self._metrics is None:
            self.evaluate()
        assert self._metrics is not None
        return dict(self._metrics)

    def _groundtruth_dataset(self) -> dict[str, Any]:
        images = [{"id": coco_id} for coco_id in range(1, len(self._groundtruth) + 1)]
        annotations = _annotations(
            [(coco_id, g) for coco_id, g in enumerate(self._groundtruth, start=1)], "iscrowd")
        return {"images": images, "categories": self._categories, "annotations": annotations}

    def _detection_dataset(self) -> dict[str, Any]:
        """Only the boxes: both COCO APIs take the image ids and categories from the groundtruth."""
        return {"annotations": _annotations(sorted(self._detections.items()), "score")}

    def _per_category_ap(self, precision: np.ndarray) -> dict[str, float]:
        """AP@[.5:.95], all areas, 100 detections per category; -1 for a class without boxes.

        This is what upstream's ``PerformanceByCategory/mAP/<name>`` reported.
        """
        names = {c["id"]: c["name"] for c in self._categories}
        result = {}
        for index, category_id in enumerate(self._category_ids.tolist()):
            values = precision[:, :, index, 0, -1]
            valid = values[values > -1]
            result[PER_CATEGORY_PREFIX + names[category_id]] = (
                float(valid.mean()) if valid.size else -1.0)
        return result


def _annotations(items: list[tuple[int, _Boxes]], extra_name: str) -> list[dict[str, Any]]:
    """One COCO annotation dict per box, built from whole columns at once.

    The dicts are unavoidable (both COCO APIs index them), but everything else is numpy,
    and ``tolist()`` hands the C++ side plain Python numbers.
    """
    if not items:
        return []
    counts = np.array([len(boxes.classes) for _, boxes in items], dtype=np.int64)
    if counts.sum() == 0:
        return []
    image_ids = np.repeat(np.array([coco_id for coco_id, _ in items], dtype=np.int64), counts)
    boxes = np.concatenate([b.boxes for _, b in items])
    classes = np.concatenate([b.classes for _, b in items])
    extra = np.concatenate([b.extra for _, b in items])
    x, y = boxes[:, 1], boxes[:, 0]
    width, height = boxes[:, 3] - boxes[:, 1], boxes[:, 2] - boxes[:, 0]
    area = width * height
    extra_values = extra.tolist()
    return [
        {"id": ann_id, "image_id": image_id, "category_id": category_id,
         "bbox": [bx, by, bw, bh], "area": ar, extra_name: ex}
        for ann_id, image_id, category_id, bx, by, bw, bh, ar, ex in zip(
            range(1, len(classes) + 1), image_ids.tolist(), classes.tolist(), x.tolist(),
            y.tolist(), width.tolist(), height.tolist(), area.tolist(), extra_values)
    ]


def _run_faster(gt_dataset: dict, dt_dataset: dict) -> tuple[np.ndarray, np.ndarray]:
    from faster_coco_eval import COCO, COCOeval_faster

    def quiet(*_args: Any) -> None:
        return None

    ground_truth = _build_coco(COCO(print_function=quiet), gt_dataset)
    detections = _build_coco(COCO(print_function=quiet), dt_dataset)
    evaluation = COCOeval_faster(ground_truth, detections, iouType="bbox", print_function=quiet)
    evaluation.evaluate()
    evaluation.accumulate()
    evaluation.summarize()
    return np.asarray(evaluation.stats), np.asarray(evaluation.eval["precision"])


def _run_pycocotools(gt_dataset: dict, dt_dataset: dict) -> tuple[np.ndarray, np.ndarray]:
    try:
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval
    except ImportError as error:  # pragma: no cover - pycocotools is a dependency
        raise OdflowError("the pycocotools backend needs pycocotools: pip install pycocotools") \
            from error
    # pycocotools prints progress to stdout; the caller logs the summary itself.
    with contextlib.redirect_stdout(io.StringIO()):
        ground_truth = _build_coco(COCO(), gt_dataset)
        detections = _build_coco(COCO(), dt_dataset)
        evaluation = COCOeval(ground_truth, detections, iouType="bbox")
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    return np.asarray(evaluation.stats), np.asarray(evaluation.eval["precision"])


def _build_coco(coco: Any, dataset: dict) -> Any:
    coco.dataset = dataset
    coco.createIndex()
    return coco


_RUNNERS: dict[str, Callable[[dict, dict], tuple[np.ndarray, np.ndarray]]] = {
    "faster": _run_faster,
    "pycocotools": _run_pycocotools,
}


def _check_categories(categories: Sequence[dict]) -> list[dict[str, Any]]:
    checked = []
    seen: set[int] = set()
    for index, category in enumerate(categories):
        try:
            category_id, name = int(category["id"]), str(category["name"])
        except (KeyError, TypeError, ValueError) as error:
            raise OdflowError(f"category #{index} must be a dict with an int 'id' and a 'name', "
                              f"got {category!r}") from error
        if category_id < 1 or category_id in seen:
            raise OdflowError(f"category {name!r}: id {category_id} must be >= 1 and unique")
        if category_id > np.iinfo(np.int64).max:
            raise OdflowError(f"category {name!r}: id {category_id} does not fit in 64 bits "
                              "(COCO ids are int64)")
        seen.add(category_id)
        checked.append({"id": category_id, "name": name})
    if not checked:
        raise OdflowError("COCO evaluation needs at least one category (is the label map empty?)")
    return checked


def _image_key(image_id: ImageId) -> ImageId:
    if isinstance(image_id, bytes):  # np.bytes_ too: it subclasses bytes
        return image_id.decode("utf-8", errors="replace")
    if isinstance(image_id, np.integer):
        return int(image_id)
    if isinstance(image_id, np.str_):
        return str(image_id)
    return image_id


def _check_boxes(boxes_abs: np.ndarray, key: ImageId, what: str) -> np.ndarray:
    boxes = np.asarray(boxes_abs, dtype=np.float64)
    if boxes.size == 0:
        return np.zeros((0, 4), dtype=np.float64)
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise OdflowError(f"{what} boxes of image {key!r} must have shape [N, 4] "
                          f"(ymin, xmin, ymax, xmax), got {list(boxes.shape)}")
    if not np.all(np.isfinite(boxes)):
        raise OdflowError(f"{what} boxes of image {key!r} contain NaN or infinite values")
    inverted = (boxes[:, 2] < boxes[:, 0]) | (boxes[:, 3] < boxes[:, 1])
    if np.any(inverted):
        row = int(np.argmax(inverted))
        raise OdflowError(f"{what} box #{row} of image {key!r} has max < min: "
                          f"{boxes[row].tolist()} (expected ymin, xmin, ymax, xmax)")
    return boxes


def _check_classes(classes: np.ndarray, count: int, key: ImageId, what: str) -> np.ndarray:
    values = np.asarray(classes).reshape(-1)
    if len(values) != count:
        raise OdflowError(f"{what}s of image {key!r}: {len(values)} classes for {count} boxes")
    if values.dtype.kind == "f" and (
            not np.all(np.isfinite(values)) or np.any(values != np.round(values))):
        raise OdflowError(f"{what} classes of image {key!r} must be whole numbers, "
                          f"got {values[:5].tolist()}...")
    return values.astype(np.int64)
