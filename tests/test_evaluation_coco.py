"""CocoEvaluator: upstream names and semantics, both backends giving the same numbers."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import sys
import types

import numpy as np
import pytest

from odflow.errors import OdflowError
from odflow.evaluation import METRIC_KEYS, CocoEvaluator, format_summary
from odflow.evaluation import coco as coco_module
from odflow.evaluation.coco import PER_CATEGORY_PREFIX

CATEGORIES = [{"id": 1, "name": "face"}, {"id": 2, "name": "cat"}, {"id": 3, "name": "dog"},
              {"id": 5, "name": "car"}]


def generated_images(seed: int, num_images: int = 250) -> list[dict]:
    """Random gt of three size bands; detections = jittered gt + false positives.

    A fifth of the images have no groundtruth, some boxes are crowd, some images have more
    than 100 detections (so maxDets matters) and some detections carry class 4, which the
    label map lacks.
    """
    rng = np.random.default_rng(seed)
    images = []
    for index in range(num_images):
        count = 0 if rng.random() < 0.2 else int(rng.integers(1, 40))
        size = rng.choice([12.0, 55.0, 180.0], size=count) * rng.uniform(0.6, 1.5, count)
        y, x = rng.uniform(0, 500, count), rng.uniform(0, 500, count)
        gt = np.stack([y, x, y + size * rng.uniform(0.6, 1.4, count), x + size], axis=1)
        classes = rng.choice([1, 2, 3, 5], size=count)
        crowd = (rng.random(count) < 0.05).astype(np.int32)
        found = rng.random(count) < 0.85
        hits = gt[found] + rng.normal(0, 0.06, (int(found.sum()), 4)) * size[found, None]
        hits[:, 2] = np.maximum(hits[:, 2], hits[:, 0])
        hits[:, 3] = np.maximum(hits[:, 3], hits[:, 1])
        hit_classes = np.where(rng.random(len(hits)) < 0.9, classes[found],
                               rng.choice([1, 2, 3, 4, 5], size=len(hits)))
        num_false = int(rng.integers(0, 90))
        fsize = rng.uniform(3, 250, num_false)
        fy, fx = rng.uniform(0, 500, num_false), rng.uniform(0, 500, num_false)
        false = np.stack([fy, fx, fy + fsize, fx + fsize * rng.uniform(0.5, 2, num_false)], 1)
        images.append({
            "id": f"image_{index}.jpg",
            "gt_boxes": gt.astype(np.float32),
            "gt_classes": classes,
            "is_crowd": crowd,
            "det_boxes": np.concatenate([hits, false]).astype(np.float32),
            "det_scores": np.concatenate([rng.uniform(0.3, 1.0, len(hits)),
                                          rng.uniform(0.0, 0.7, num_false)]),
            "det_classes": np.concatenate([hit_classes, rng.choice([1, 2, 3, 5], num_false)])
            .astype(np.float32),
        })
    return images


def fill(evaluator: CocoEvaluator, images: list[dict]) -> CocoEvaluator:
    for image in images:
        evaluator.add_groundtruth(image["id"], image["gt_boxes"], image["gt_classes"],
                                  is_crowd=image["is_crowd"])
        evaluator.add_detections(image["id"], image["det_boxes"], image["det_scores"],
                                 image["det_classes"])
    return evaluator


@pytest.mark.parametrize("seed", [0, 1])
def test_backends_give_the_same_numbers(seed):
    images = generated_images(seed)
    assert any(len(i["gt_classes"]) == 0 for i in images)
    assert any(len(i["det_classes"]) > 100 for i in images)
    results = {}
    for backend in ("faster", "pycocotools"):
        evaluator = fill(CocoEvaluator(CATEGORIES, backend=backend, include_per_category=True),
                         images)
        results[backend] = evaluator.evaluate()
    fast, reference = results["faster"], results["pycocotools"]
    assert list(fast) == list(reference)
    assert list(fast)[:12] == list(METRIC_KEYS)
    assert [k for k in fast if k.startswith(PER_CATEGORY_PREFIX)] == [
        PER_CATEGORY_PREFIX + name for name in ("face", "cat", "dog", "car")]
    for key in fast:
        assert fast[key] == pytest.approx(reference[key], abs=1e-9), key
    # The data is neither trivial nor degenerate: every number is a real fraction.
    for key in METRIC_KEYS:
        assert 0.05 < fast[key] < 0.99, (key, fast[key])


def test_summary_text_matches_what_pycocotools_prints():
    """Hand-written COCO dicts (x, y, w, h) run through pycocotools itself."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    gt_xywh = {1: [[10, 20, 30, 40], [100, 100, 120, 90]], 2: [[5, 5, 60, 60]], 3: []}
    det_xywh = {1: [([12, 21, 29, 41], 0.9), ([300, 300, 20, 20], 0.8), ([98, 104, 118, 85], 0.4)],
                2: [([8, 2, 55, 66], 0.7)], 3: [([1, 1, 10, 10], 0.3)]}
    annotations, detections = [], []
    evaluator = CocoEvaluator([{"id": 1, "name": "thing"}], backend="faster")
    for image_id in (1, 2, 3):
        boxes = [[y, x, y + h, x + w] for x, y, w, h in gt_xywh[image_id]]
        evaluator.add_groundtruth(image_id, np.array(boxes).reshape(-1, 4),
                                  np.ones(len(boxes), np.int32))
        dets = det_xywh[image_id]
        evaluator.add_detections(image_id, np.array([[y, x, y + h, x + w] for (x, y, w, h), _ in dets]),
                                 np.array([s for _, s in dets]), np.ones(len(dets)))
        for box in gt_xywh[image_id]:
            annotations.append({"id": len(annotations) + 1, "image_id": image_id, "category_id": 1,
                                "bbox": box, "area": box[2] * box[3], "iscrowd": 0})
        for box, score in dets:
            detections.append({"image_id": image_id, "category_id": 1, "bbox": box,
                               "score": score})
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        ground_truth = COCO()
        ground_truth.dataset = {"images": [{"id": i} for i in (1, 2, 3)],
                                "categories": [{"id": 1, "name": "thing"}],
                                "annotations": annotations}
        ground_truth.createIndex()
        evaluation = COCOeval(ground_truth, ground_truth.loadRes(detections), "bbox")
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    expected = [line for line in printed.getvalue().splitlines() if line.startswith(" Average")]
    assert len(expected) == 12
    assert evaluator.summary_text().splitlines() == expected
    assert [evaluator.evaluate()[k] for k in METRIC_KEYS] == pytest.approx(evaluation.stats)


@pytest.mark.parametrize("backend", ["faster", "pycocotools"])
def test_known_values(backend):
    evaluator = CocoEvaluator([{"id": 1, "name": "a"}], backend=backend)
    # 20x20 gt and a detection shifted by 2 px: IoU 360/440 = 0.818 -> matched at .50 ... .80.
    evaluator.add_groundtruth("small", np.array([[10.0, 10.0, 30.0, 30.0]]), np.array([1]))
    evaluator.add_detections("small", np.array([[10.0, 12.0, 30.0, 32.0]]), np.array([0.9]),
                             np.array([1]))
    evaluator.add_groundtruth("negative", np.zeros((0, 4)), np.zeros((0,), np.int32))
    metrics = evaluator.evaluate()
    assert metrics["DetectionBoxes_Precision/mAP@.50IOU"] == pytest.approx(1.0)
    assert metrics["DetectionBoxes_Precision/mAP@.75IOU"] == pytest.approx(1.0)
    assert metrics["DetectionBoxes_Precision/mAP"] == pytest.approx(0.7)
    assert metrics["DetectionBoxes_Precision/mAP (small)"] == pytest.approx(0.7)
    assert metrics["DetectionBoxes_Precision/mAP (medium)"] == -1.0
    assert metrics["DetectionBoxes_Precision/mAP (large)"] == -1.0
    assert metrics["DetectionBoxes_Recall/AR@1"] == pytest.approx(0.7)
    assert "Average Recall     (AR) @[ IoU=0.50:0.95 | area=medium | maxDets=100 ] = -1.000" \
        in evaluator.summary_text()


@pytest.mark.parametrize("backend", ["faster", "pycocotools"])
def test_no_detections_and_no_groundtruth(backend):
    evaluator = CocoEvaluator([{"id": 1, "name": "a"}], backend=backend)
    evaluator.add_groundtruth(1, np.array([[0.0, 0.0, 50.0, 50.0]]), np.array([1]))
    assert evaluator.evaluate()["DetectionBoxes_Precision/mAP"] == 0.0
    evaluator.clear()
    evaluator.add_groundtruth(1, np.zeros((0, 4)), np.zeros((0,)))
    evaluator.add_detections(1, np.array([[0.0, 0.0, 5.0, 5.0]]), np.array([0.5]), np.array([1]))
    assert set(evaluator.evaluate().values()) == {-1.0}


def test_perfect_detections_and_per_category():
    evaluator = CocoEvaluator(CATEGORIES, include_per_category=True)
    boxes = np.array([[0, 0, 20, 20], [50, 50, 110, 120], [0, 200, 300, 400]], np.float32)
    for index, (box, label) in enumerate(zip(boxes, [1, 2, 2])):
        evaluator.add_groundtruth(f"img{index}".encode(), box[None], np.array([label]))
        evaluator.add_detections(np.bytes_(f"img{index}".encode()), box[None], np.array([0.9]),
                                 np.array([float(label)]))
    metrics = evaluator.evaluate()
    assert all(metrics[key] == pytest.approx(1.0) for key in METRIC_KEYS)
    assert metrics[PER_CATEGORY_PREFIX + "cat"] == pytest.approx(1.0)
    assert metrics[PER_CATEGORY_PREFIX + "dog"] == -1.0


def test_detections_outside_the_label_map_are_dropped(caplog):
    evaluator = CocoEvaluator([{"id": 1, "name": "a"}])
    box = np.array([[0.0, 0.0, 40.0, 40.0]])
    evaluator.add_groundtruth(7, box, np.array([1]))
    evaluator.add_detections(7, np.concatenate([box, box]), np.array([0.99, 0.5]),
                             np.array([2, 1]))
    with caplog.at_level(logging.WARNING):
        assert evaluator.evaluate()["DetectionBoxes_Precision/mAP"] == pytest.approx(1.0)
    assert "1 detections had class ids outside the label map" in caplog.text
    assert evaluator.num_detections == 1


def test_repeated_images_are_ignored_with_a_warning(caplog):
    evaluator = CocoEvaluator([{"id": 1, "name": "a"}])
    box = np.array([[0.0, 0.0, 40.0, 40.0]])
    evaluator.add_groundtruth("x", box, np.array([1]))
    evaluator.add_detections("x", box, np.array([0.9]), np.array([1]))
    with caplog.at_level(logging.WARNING):
        evaluator.add_groundtruth("x", np.concatenate([box, box + 50]), np.array([1, 1]))
        evaluator.add_detections("x", box + 50, np.array([0.99]), np.array([1]))
    assert "already added" in caplog.text
    assert (evaluator.num_images, evaluator.num_groundtruth_boxes, evaluator.num_detections) == \
        (1, 1, 1)
    assert evaluator.evaluate()["DetectionBoxes_Precision/mAP"] == pytest.approx(1.0)


@pytest.mark.parametrize("call, message", [
    (lambda e: e.add_detections("nope", np.zeros((0, 4)), np.zeros(0), np.zeros(0)),
     "no groundtruth"),
    (lambda e: e.add_groundtruth("a", np.zeros((2, 3)), np.ones(2)), "shape [N, 4]"),
    (lambda e: e.add_groundtruth("a", np.array([[5.0, 0, 1, 1]]), np.ones(1)), "max < min"),
    (lambda e: e.add_groundtruth("a", np.array([[0, 0, np.nan, 1]]), np.ones(1)), "NaN"),
    (lambda e: e.add_groundtruth("a", np.array([[0.0, 0, 1, 1]]), np.array([9])),
     "not in the label map"),
    (lambda e: e.add_groundtruth("a", np.array([[0.0, 0, 1, 1]]), np.ones(2)), "2 classes"),
    (lambda e: e.add_groundtruth("a", np.array([[0.0, 0, 1, 1]]), np.ones(1), np.ones(3)),
     "is_crowd"),
    (lambda e: e.evaluate(), "no images"),
])
def test_bad_input_is_a_clear_error(call, message):
    evaluator = CocoEvaluator([{"id": 1, "name": "a"}])
    with pytest.raises(OdflowError, match=message.replace("[", r"\[").replace("]", r"\]")):
        call(evaluator)


def test_bad_detections_and_constructor_arguments():
    evaluator = CocoEvaluator([{"id": 1, "name": "a"}])
    evaluator.add_groundtruth("a", np.array([[0.0, 0, 1, 1]]), np.ones(1))
    with pytest.raises(OdflowError, match="2 scores for 1 boxes"):
        evaluator.add_detections("a", np.array([[0.0, 0, 1, 1]]), np.ones(2), np.ones(1))
    with pytest.raises(OdflowError, match="whole numbers"):
        evaluator.add_detections("a", np.array([[0.0, 0, 1, 1]]), np.ones(1), np.array([1.5]))
    with pytest.raises(OdflowError, match="backend"):
        CocoEvaluator([{"id": 1, "name": "a"}], backend="tf")
    with pytest.raises(OdflowError, match="unique"):
        CocoEvaluator([{"id": 1, "name": "a"}, {"id": 1, "name": "b"}])
    with pytest.raises(OdflowError, match="at least one category"):
        CocoEvaluator([])


def test_write_json_and_clear(tmp_path):
    evaluator = fill(CocoEvaluator(CATEGORIES), generated_images(3, num_images=20))
    path = tmp_path / "eval" / "metrics.json"
    evaluator.write_json(path)  # evaluates on demand
    payload = json.loads(path.read_text())
    assert payload["metrics"] == evaluator.evaluate()
    assert payload["backend"] == "faster"
    assert payload["num_images"] == 20
    assert payload["num_groundtruth_boxes"] == evaluator.num_groundtruth_boxes > 0
    assert payload["num_detections"] == evaluator.num_detections > 0
    assert payload["elapsed_seconds"] >= 0
    assert list(tmp_path.joinpath("eval").iterdir()) == [path]  # no temporary leftovers
    assert format_summary(payload["metrics"]) == evaluator.summary_text()
    evaluator.write_json(path, extra={"global_step": 40, "checkpoint": "ckpt/model.ckpt-40"})
    payload = json.loads(path.read_text())
    assert (payload["global_step"], payload["checkpoint"]) == (40, "ckpt/model.ckpt-40")
    assert payload["metrics"] == evaluator.evaluate()
    evaluator.clear()
    assert evaluator.num_images == 0
    with pytest.raises(OdflowError):
        evaluator.evaluate()


# ----------------------------------------------------------------------------- exact contracts

BOX = np.array([[10.0, 10.0, 30.0, 30.0]])


def _one_class(**kwargs) -> CocoEvaluator:
    return CocoEvaluator([{"id": 1, "name": "a"}], **kwargs)


def _message(call) -> str:
    with pytest.raises(OdflowError) as error:
        call()
    return str(error.value)


def test_default_is_the_twelve_numbers_only():
    evaluator = _one_class()
    evaluator.add_groundtruth("x", BOX, np.array([1]))
    evaluator.add_detections("x", BOX, np.array([0.9]), np.array([1]))
    assert list(evaluator.evaluate()) == list(METRIC_KEYS)


def test_results_follow_images_added_after_an_evaluation_and_clear():
    """One of two equal boxes found: recall 0.5, precision 1 up to it, so AP = 51 / 101 of the
    recall thresholds 0, 0.01, ..., 1 (0.505); finding the second too gives 1."""
    evaluator = _one_class()
    evaluator.add_groundtruth("x", BOX, np.array([1]))
    evaluator.add_detections("x", BOX, np.array([0.9]), np.array([1]))
    assert evaluator.evaluate()["DetectionBoxes_Precision/mAP"] == pytest.approx(1.0)
    evaluator.add_groundtruth("y", BOX, np.array([1]))
    assert evaluator.summary_text().splitlines()[0].endswith("] = 0.505")
    evaluator.add_detections("y", BOX, np.array([0.9]), np.array([1]))
    assert evaluator.summary_text().splitlines()[0].endswith("] = 1.000")
    evaluator.clear()
    assert _message(evaluator.summary_text) == (
        "nothing to evaluate: no images were added (is the eval record empty?)")


def test_repeats_and_unknown_classes_are_logged_with_the_image_and_the_count(caplog):
    evaluator = _one_class()
    with caplog.at_level(logging.WARNING):
        for key in ("x", "y"):
            evaluator.add_groundtruth(key, BOX, np.array([1]))
            evaluator.add_detections(key, np.concatenate([BOX, BOX]), np.array([0.9, 0.8]),
                                     np.array([1, 3]))
        evaluator.add_groundtruth("x", BOX, np.array([1]))
        evaluator.add_detections("x", BOX, np.array([0.9]), np.array([1]))
        evaluator.evaluate()
    assert caplog.messages == [
        "groundtruth for image 'x' was already added; ignoring the repeat",
        "detections for image 'x' were already added; ignoring the repeat",
        "2 detections had class ids outside the label map and were ignored",
    ]


def test_error_messages_name_the_image_the_kind_and_the_values():
    evaluator = _one_class()
    two = np.array([[0.0, 0, 1, 1], [5.0, 0, 1, 1]])
    cases = [
        (lambda: evaluator.add_detections("nope", BOX, np.ones(1), np.ones(1)),
         ("detections for image 'nope' but no groundtruth: add its groundtruth first (an image "
         "without boxes is added with an empty box array)")),
        (lambda: evaluator.add_groundtruth("a", np.zeros((2, 3)), np.ones(2)),
         ("groundtruth boxes of image 'a' must have shape [N, 4] (ymin, xmin, ymax, xmax), "
         "got [2, 3]")),
        (lambda: evaluator.add_groundtruth("a", two, np.ones(2)),
         ("groundtruth box #1 of image 'a' has max < min: [5.0, 0.0, 1.0, 1.0] (expected ymin, "
         "xmin, ymax, xmax)")),
        (lambda: evaluator.add_groundtruth("a", np.array([[0, 0, np.inf, 1]]), np.ones(1)),
         "groundtruth boxes of image 'a' contain NaN or infinite values"),
        (lambda: evaluator.add_groundtruth("a", BOX, np.ones(2)),
         "groundtruths of image 'a': 2 classes for 1 boxes"),
        (lambda: evaluator.add_groundtruth("a", np.repeat(BOX, 7, 0), np.arange(7) + 0.5),
         ("groundtruth classes of image 'a' must be whole numbers, got [0.5, 1.5, 2.5, 3.5, "
         "4.5]...")),
        (lambda: evaluator.add_groundtruth("a", np.repeat(BOX, 2, 0), np.array([1, 9])),
         ("groundtruth of image 'a' has class id(s) [9] that are not in the label map (ids [1]); "
         "fix the records or the label map")),
        (lambda: evaluator.add_groundtruth("a", BOX, np.ones(1), np.zeros(3)),
         "groundtruth of image 'a': 3 is_crowd flags for 1 boxes"),
        (lambda: evaluator.add_groundtruth("a", np.repeat(BOX, 10, 0), np.ones(10),
                                           np.array([0, 1, 2, 1, 0, 0.5, 3, 4, 5, 6])),
         "groundtruth of image 'a': is_crowd flags must be 0 or 1, got [2.0, 0.5, 3.0, 4.0, 5.0]"),
        (evaluator.evaluate, ("nothing to evaluate: no images were added (is the eval record "
         "empty?)")),
    ]
    for call, expected in cases:
        assert _message(call) == expected
    evaluator.add_groundtruth("b", BOX, np.ones(1))
    for call, expected in [
        (lambda: evaluator.add_detections("b", two, np.ones(2), np.ones(2)),
         ("detection box #1 of image 'b' has max < min: [5.0, 0.0, 1.0, 1.0] (expected ymin, "
         "xmin, ymax, xmax)")),
        (lambda: evaluator.add_detections("b", np.zeros((1, 5)), np.ones(1), np.ones(1)),
         ("detection boxes of image 'b' must have shape [N, 4] (ymin, xmin, ymax, xmax), "
         "got [1, 5]")),
        (lambda: evaluator.add_detections("b", BOX, np.ones(1), np.ones(3)),
         "detections of image 'b': 3 classes for 1 boxes"),
        (lambda: evaluator.add_detections("b", BOX, np.ones(2), np.ones(1)),
         "detections of image 'b': 2 scores for 1 boxes"),
        (lambda: evaluator.add_detections("b", BOX, np.array([np.nan]), np.ones(1)),
         "detections of image 'b' have non-finite scores"),
        # A missing score (JSON null) is one too.
        (lambda: evaluator.add_detections("b", BOX, [None], np.ones(1)),
         "detections of image 'b' have non-finite scores"),
    ]:
        assert _message(call) == expected


def test_category_and_backend_messages(monkeypatch):
    assert _message(lambda: CocoEvaluator([{"id": "x"}])) == (
        "category #0 must be a dict with an int 'id' and a 'name', got {'id': 'x'}")
    assert _message(lambda: CocoEvaluator([{"id": 2, "name": "a"}, {"id": 2, "name": "b"}])) \
        == "category 'b': id 2 must be >= 1 and unique"
    largest = 2**63 - 1
    CocoEvaluator([{"id": largest, "name": "a"}])  # the largest int64 is an id
    assert _message(lambda: CocoEvaluator([{"id": largest + 1, "name": "a"}])) == (
        "category 'a': id 9223372036854775808 does not fit in 64 bits (COCO ids are int64)")
    assert _message(lambda: CocoEvaluator([])) == (
        "COCO evaluation needs at least one category (is the label map empty?)")
    assert _message(lambda: _one_class(backend="tf")) == (
        "unknown COCO evaluation backend 'tf'; use one of ('faster', 'pycocotools')")
    evaluator = _one_class(backend="pycocotools")
    evaluator.add_groundtruth("x", BOX, np.array([1]))
    monkeypatch.setitem(sys.modules, "pycocotools.coco", None)  # import fails as if missing
    assert _message(evaluator.evaluate) == (
        "the pycocotools backend needs pycocotools: pip install pycocotools")


def test_image_ids_of_numpy_and_bytes_types_are_plain_keys():
    """np.int64 / np.str_ ids are the same image as int / str ones and print like them;
    bytes that are not UTF-8 still make a key (undecodable bytes replaced)."""
    evaluator = _one_class()
    evaluator.add_groundtruth(np.int64(7), BOX, np.array([1]))
    evaluator.add_detections(7, BOX, np.array([0.9]), np.array([1]))
    evaluator.add_groundtruth(np.str_("s"), BOX, np.array([1]))
    evaluator.add_detections("s", BOX, np.array([0.9]), np.array([1]))
    evaluator.add_groundtruth(b"\xffb", BOX, np.array([1]))
    evaluator.add_detections(np.bytes_(b"\xffb"), BOX, np.array([0.9]), np.array([1]))
    assert evaluator.num_detections == 3
    assert evaluator.evaluate()["DetectionBoxes_Precision/mAP"] == pytest.approx(1.0)
    for key, shown in [(np.int64(8), "8"), (np.str_("t"), "'t'"), (b"\xffc", "'\ufffdc'")]:
        assert _message(lambda key=key: evaluator.add_detections(
            key, BOX, np.ones(1), np.ones(1))).startswith(f"detections for image {shown} but")
    assert _message(lambda: evaluator.add_groundtruth(
        np.str_("u"), np.zeros((1, 3)), np.ones(1))).startswith(
        "groundtruth boxes of image 'u' must")


def test_batch_shaped_columns_empty_and_degenerate_boxes_are_accepted():
    """Scores and classes as [1, M] (a batch of one), is_crowd as [N, 1], a negative image
    given as [] and zero-area boxes are all valid input.  The second detection lies inside
    the crowd box, so it is ignored rather than a false positive: AP 1."""
    evaluator = _one_class()
    gt = np.array([[0.0, 0.0, 40.0, 40.0], [100.0, 100.0, 200.0, 200.0]])
    evaluator.add_groundtruth("x", gt, np.array([[1, 1]]), is_crowd=np.array([[0], [1]]))
    dets = np.array([[0.0, 0.0, 40.0, 40.0], [120.0, 120.0, 160.0, 160.0]])
    evaluator.add_detections("x", dets, np.array([[0.9, 0.8]]), np.array([[1.0, 1.0]]))
    evaluator.add_groundtruth("negative", [], [])
    evaluator.add_detections("negative", np.zeros(0), [], [])
    metrics = evaluator.evaluate()
    assert metrics["DetectionBoxes_Precision/mAP"] == pytest.approx(1.0)
    assert metrics["DetectionBoxes_Recall/AR@100"] == pytest.approx(1.0)
    evaluator.add_groundtruth("flat", np.array([[5.0, 5.0, 5.0, 9.0], [5.0, 5.0, 9.0, 5.0]]),
                              np.ones(2))
    evaluator.add_detections("flat", np.array([[5.0, 5.0, 5.0, 9.0]]), np.ones(1), np.ones(1))
    assert evaluator.num_groundtruth_boxes == 4


def test_float16_boxes_are_widened_before_the_area():
    """A 300 x 300 px box from a mixed-precision model (float16 outputs): its area, 90000,
    exceeds float16's range (65504), so it must be computed in float64 to be a large box."""
    evaluator = _one_class()
    box = np.array([[10.0, 20.0, 310.0, 320.0]], np.float16)
    evaluator.add_groundtruth("x", box, np.array([1]))
    evaluator.add_detections("x", box, np.array([0.9], np.float16), np.array([1]))
    metrics = evaluator.evaluate()
    assert metrics["DetectionBoxes_Precision/mAP"] == pytest.approx(1.0)
    assert metrics["DetectionBoxes_Precision/mAP (large)"] == pytest.approx(1.0)


def test_evaluate_logs_one_line_and_times_itself(tmp_path, monkeypatch, caplog):
    """faster-coco-eval's own table stays out of the log; the time is the evaluation's, in
    seconds, to the millisecond in metrics.json (clock faked: 10.0 s, then 10.12345 s)."""
    evaluator = _one_class()
    evaluator.add_groundtruth("x", BOX, np.array([1]))
    evaluator.add_detections("x", BOX, np.array([0.9]), np.array([1]))
    clock = iter([10.0, 10.12345])
    monkeypatch.setattr(coco_module, "time", types.SimpleNamespace(perf_counter=lambda: next(clock)))
    with caplog.at_level(logging.DEBUG):
        evaluator.evaluate()
    assert caplog.messages == ["COCO evaluation (faster) of 1 images took 0.12 s"]
    path = tmp_path / "metrics.json"
    evaluator.write_json(path)
    text = path.read_text()
    assert text.startswith('{\n  "metrics": {\n    "DetectionBoxes_Precision/mAP": 1.0,\n')
    assert text.endswith('\n  "elapsed_seconds": 0.123\n}\n')
