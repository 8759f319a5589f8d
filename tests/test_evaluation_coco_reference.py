"""CocoEvaluator against pycocotools run directly on COCO JSON files written without odflow.

The other COCO tests compare odflow's two backends with each other, both fed by odflow's own
conversion to COCO dicts; a bug in that conversion (crowd flags dropped, x and y swapped, ids
mixed up, detections beyond 100 kept) would pass them.  Here the reference is what a user gets
from ``COCO(groundtruth.json)`` / ``loadRes(detections.json)`` / ``COCOeval``.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from odflow.evaluation import METRIC_KEYS, CocoEvaluator
from odflow.evaluation.coco import PER_CATEGORY_PREFIX
from tests.support import coco_reference

# pycocotools in pure Python on ~300 images x 5 classes, three times: a few seconds.
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    dataset = coco_reference.generate(seed=7)
    directory = tmp_path_factory.mktemp("coco")
    gt_path, dt_path = coco_reference.write_json(dataset, directory)
    stats, precision = coco_reference.pycocotools_reference(gt_path, dt_path)
    return {"dataset": dataset, "stats": stats, "precision": precision, "dir": directory}


def test_the_generated_set_is_not_trivial(reference):
    """Crowd boxes, difficult boxes, empty images, >100 detections and unknown classes occur,
    and the crowd flags change pycocotools' numbers (so dropping them cannot pass)."""
    dataset = reference["dataset"]
    annotations = dataset["annotations"]
    assert len(dataset["images"]) >= 300
    assert sum(a["iscrowd"] for a in annotations) >= 20
    assert sum(a["difficult"] for a in annotations) >= 50
    with_boxes = {a["image_id"] for a in annotations}
    assert len(dataset["images"]) - len(with_boxes) >= 20
    per_image = np.bincount([d["image_id"] for d in dataset["results"]])
    assert (per_image > 100).sum() >= 50
    assert any(d["category_id"] == 4 for d in dataset["results"])
    assert len({a["category_id"] for a in annotations}) == len(coco_reference.CATEGORIES)
    for value in reference["stats"]:
        assert 0.05 < value < 0.99

    no_crowd = json.loads((reference["dir"] / "groundtruth.json").read_text())
    for annotation in no_crowd["annotations"]:
        annotation["iscrowd"] = 0
    path = reference["dir"] / "groundtruth_no_crowd.json"
    path.write_text(json.dumps(no_crowd))
    stats, _ = coco_reference.pycocotools_reference(path, reference["dir"] / "detections.json")
    assert np.abs(stats - reference["stats"]).max() > 0.005


@pytest.mark.parametrize("backend", ["faster", "pycocotools"])
def test_twelve_numbers_and_per_category_ap_match_pycocotools(reference, backend):
    evaluator = CocoEvaluator(coco_reference.CATEGORIES, backend=backend,
                              include_per_category=True)
    images = coco_reference.as_odflow(reference["dataset"])
    # Images arrive in another order than the JSON's ids: odflow's own ids must not matter.
    order = np.random.default_rng(3).permutation(len(images))
    for index in order:
        image = images[index]
        evaluator.add_groundtruth(image["key"], image["gt_boxes"], image["gt_classes"],
                                  is_crowd=image["is_crowd"])
    for index in order[::-1]:
        image = images[index]
        evaluator.add_detections(image["key"], image["det_boxes"], image["det_scores"],
                                 image["det_classes"])
    metrics = evaluator.evaluate()
    assert [metrics[key] for key in METRIC_KEYS] == pytest.approx(
        reference["stats"].tolist(), abs=1e-12)
    for index, category in enumerate(coco_reference.CATEGORIES):
        values = reference["precision"][:, :, index, 0, -1]
        expected = values[values > -1].mean()
        assert metrics[PER_CATEGORY_PREFIX + category["name"]] == pytest.approx(
            expected, abs=1e-12), category["name"]
