"""A generated COCO-style detection set written straight to COCO JSON, for pycocotools itself.

The set is made in COCO's own terms (``[x, y, w, h]`` pixel boxes, ``iscrowd``, ``area`` = box
area, integer image ids) without any odflow code, so a pycocotools run on the JSON files is an
independent reference for ``odflow.evaluation.CocoEvaluator``.  ``as_odflow`` gives the same
boxes in odflow's ``[ymin, xmin, ymax, xmax]`` convention with the semantics the TF Object
Detection API's COCO evaluator has: a crowd box is ``is_crowd=1``; a *difficult* box is an
ordinary box (the API's COCO evaluator reads ``groundtruth_is_crowd`` only; ``difficult`` is a
PASCAL-metric notion), so it counts as a miss when nothing finds it.

Coordinates are multiples of 1/8 px, exactly representable in float32 and float64, so the
``x + w`` / ``xmax - xmin`` conversions are exact and both sides see bit-identical boxes.
"""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import numpy as np

#: Label map of the generated set: ids with a gap (4 and 6 are missing), as label maps may have.
CATEGORIES = [{"id": 1, "name": "face"}, {"id": 2, "name": "cat"}, {"id": 3, "name": "dog"},
              {"id": 5, "name": "car"}, {"id": 7, "name": "bike"}]
_IDS = np.array([c["id"] for c in CATEGORIES])


def _grid(values: np.ndarray) -> np.ndarray:
    return np.round(np.asarray(values, np.float64) * 8.0) / 8.0


def generate(seed: int, num_images: int = 300) -> dict:
    """Images with groundtruth (some crowd, some difficult, some none) and scored detections.

    Detections: jittered copies of most boxes (a tenth with a wrong class), several boxes
    inside each crowd region (pycocotools ignores them instead of counting false positives),
    random false positives, a few with class 4 (not in the label map), and on every fifth
    image more than 100 detections, so ``maxDets`` 1/10/100 all matter.
    """
    rng = np.random.default_rng(seed)
    images, annotations, results = [], [], []
    for image_id in range(1, num_images + 1):
        images.append({"id": image_id, "width": 640, "height": 480})
        count = 0 if rng.random() < 0.15 else int(rng.integers(1, 25))
        side = rng.choice([14.0, 60.0, 200.0], size=count) * rng.uniform(0.6, 1.5, count)
        w = _grid(np.maximum(side, 2.0))
        h = _grid(np.maximum(side * rng.uniform(0.5, 1.6, count), 2.0))
        x, y = _grid(rng.uniform(0, 600, count)), _grid(rng.uniform(0, 440, count))
        classes = rng.choice(_IDS, size=count)
        crowd = rng.random(count) < 0.07
        difficult = ~crowd & (rng.random(count) < 0.1)
        for i in range(count):
            annotations.append({
                "id": len(annotations) + 1, "image_id": image_id,
                "category_id": int(classes[i]), "bbox": [x[i], y[i], w[i], h[i]],
                "area": float(w[i] * h[i]), "iscrowd": int(crowd[i]),
                "difficult": int(difficult[i])})  # extra key: pycocotools ignores it

        def detect(dx, dy, dw, dh, label, score, image_id=image_id):
            results.append({"image_id": image_id, "category_id": int(label),
                            "bbox": [float(v) for v in (dx, dy, dw, dh)], "score": float(score)})

        for i in range(count):
            if crowd[i]:  # several detections inside the crowd region
                for _ in range(int(rng.integers(1, 5))):
                    cw = _grid(w[i] * rng.uniform(0.2, 0.5))
                    ch = _grid(h[i] * rng.uniform(0.2, 0.5))
                    detect(_grid(x[i] + rng.uniform(0, w[i] - cw)),
                           _grid(y[i] + rng.uniform(0, h[i] - ch)), max(cw, 0.125),
                           max(ch, 0.125), classes[i], rng.uniform(0.2, 1.0))
            elif rng.random() < (0.5 if difficult[i] else 0.85):
                jitter = rng.normal(0, 0.07, 4) * np.array([w[i], h[i], w[i], h[i]])
                label = classes[i] if rng.random() < 0.9 else rng.choice(_IDS)
                detect(_grid(x[i] + jitter[0]), _grid(y[i] + jitter[1]),
                       max(_grid(w[i] + jitter[2]), 0.125), max(_grid(h[i] + jitter[3]), 0.125),
                       label, rng.uniform(0.3, 1.0))
        num_false = int(rng.integers(100, 140)) if image_id % 5 == 0 else int(rng.integers(0, 30))
        for _ in range(num_false):
            fw, fh = _grid(rng.uniform(3, 250)), _grid(rng.uniform(3, 250))
            label = 4 if rng.random() < 0.03 else rng.choice(_IDS)
            detect(_grid(rng.uniform(0, 600)), _grid(rng.uniform(0, 440)), fw, fh, label,
                   rng.uniform(0.0, 0.8))
    return {"images": images, "categories": CATEGORIES, "annotations": annotations,
            "results": results}


def write_json(dataset: dict, directory: Path) -> tuple[Path, Path]:
    """``groundtruth.json`` (a COCO dataset) and ``detections.json`` (a COCO result list)."""
    gt_path, dt_path = directory / "groundtruth.json", directory / "detections.json"
    gt_path.write_text(json.dumps({key: dataset[key] for key in
                                   ("images", "categories", "annotations")}))
    dt_path.write_text(json.dumps(dataset["results"]))
    return gt_path, dt_path


def pycocotools_reference(gt_path: Path, dt_path: Path) -> tuple[np.ndarray, np.ndarray]:
    """pycocotools' twelve stats and its precision array, from the JSON files as a user runs it."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        ground_truth = COCO(str(gt_path))
        evaluation = COCOeval(ground_truth, ground_truth.loadRes(str(dt_path)), "bbox")
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    return np.asarray(evaluation.stats), np.asarray(evaluation.eval["precision"])


def as_odflow(dataset: dict) -> list[dict]:
    """Per image: odflow-convention arrays, under a string key (odflow's image ids are names)."""
    by_image: dict[int, dict] = {
        image["id"]: {"key": f"frame_{image['id']:05d}.jpg", "gt": [], "classes": [],
                      "crowd": [], "det": [], "scores": [], "det_classes": []}
        for image in dataset["images"]}
    for ann in dataset["annotations"]:
        x, y, w, h = ann["bbox"]
        entry = by_image[ann["image_id"]]
        entry["gt"].append([y, x, y + h, x + w])
        entry["classes"].append(ann["category_id"])
        entry["crowd"].append(ann["iscrowd"])
    for det in dataset["results"]:
        x, y, w, h = det["bbox"]
        entry = by_image[det["image_id"]]
        entry["det"].append([y, x, y + h, x + w])
        entry["scores"].append(det["score"])
        entry["det_classes"].append(det["category_id"])
    return [{
        "key": e["key"],
        "gt_boxes": np.array(e["gt"], np.float64).reshape(-1, 4),
        "gt_classes": np.array(e["classes"], np.int64),
        "is_crowd": np.array(e["crowd"], np.int64),
        "det_boxes": np.array(e["det"], np.float64).reshape(-1, 4),
        "det_scores": np.array(e["scores"], np.float64),
        "det_classes": np.array(e["det_classes"], np.int64),
    } for e in by_image.values()]
