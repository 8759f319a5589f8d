"""Anchor coverage (odflow.anchors): best-anchor IoU per box against hand-computed IoUs, the
COCO size split, the log line, the model's anchors from a pipeline config, and the issue's
observation that boxes under 16 px are never matched by ssd_mobilenet_v1_coco at 300x300."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from odflow.anchors.coverage import (
    Coverage,
    SizeCoverage,
    best_iou,
    compute_coverage,
    percent,
)
from tests.support.training import SAMPLE_CONFIG, make_records

# Pixel boxes [ymin, xmin, ymax, xmax] and anchors whose IoUs are worked out by hand.
ANCHORS = np.array([
    [0, 0, 10, 10],     # area 100
    [5, 5, 15, 15],     # area 100, overlaps the first in a 5x5 square
    [0, 0, 20, 20],     # area 400
    [50, 50, 60, 60],   # far away
], np.float64)


def test_best_iou_matches_hand_computed_values() -> None:
    boxes = np.array([
        [0, 0, 10, 10],    # equals anchor 0: IoU 1
        [0, 0, 4, 4],      # inside anchor 0: 16/100 (anchor 2: 16/400, anchor 1: 0)
        [5, 5, 10, 10],    # 25/100 with anchors 0 and 1, 25/400 with anchor 2 -> 0.25
        [0, 10, 10, 20],   # beside anchor 0 (touching only): anchor 1: 5x5=25 / 175;
                           # anchor 2: 100/400 = 0.25 -> 0.25
        [100, 100, 110, 110],  # touches nothing: 0
        [2, 2, 2, 8],      # zero height: 0
    ], np.float64)
    expected = [1.0, 0.16, 0.25, 0.25, 0.0, 0.0]
    np.testing.assert_allclose(best_iou(boxes, ANCHORS), expected, atol=1e-6)


def test_best_iou_is_the_same_in_any_chunk_size() -> None:
    rng = np.random.default_rng(3)
    corners = np.sort(rng.uniform(0, 1, (300, 2, 2)), axis=1)
    boxes = corners.transpose(0, 2, 1).reshape(300, 4)[:, [0, 1, 2, 3]]
    anchors = corners[::-1].transpose(0, 2, 1).reshape(300, 4)
    whole = best_iou(boxes, anchors, chunk_elements=10**9)
    for chunk in (1, 7 * 300, 299 * 300):
        np.testing.assert_array_equal(best_iou(boxes, anchors, chunk_elements=chunk), whole)
    # and equal to a plain double loop
    def iou(a, b):
        h = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
        w = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
        union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - h * w
        return h * w / union
    loop = [max(iou(box, anchor) for anchor in anchors) for box in boxes[:40]]
    np.testing.assert_allclose(whole[:40], loop, atol=1e-6)


def test_coverage_counts_by_coco_size_at_the_input_size() -> None:
    # Input 100 (high) x 200 (wide): a normalised box of 0.2 x 0.1 is 20 x 20 pixels.
    size = (100, 200)
    scale = np.array([100, 200, 100, 200], np.float64)
    pixel_boxes = np.array([
        [0, 0, 20, 20],      # small (400 px^2), equals anchor A: IoU 1
        [60, 150, 80, 170],  # small, no anchor overlaps it: 0
        [0, 100, 50, 150],   # medium (2,500), half of anchor B (50 x 100): IoU 0.5
        [0, 0, 100, 100],    # large (10,000), anchor C 100x110 holds it: 10000/11000
    ], np.float64)
    pixel_anchors = np.array([[0, 0, 20, 20], [0, 100, 50, 200], [0, 0, 100, 110]], np.float64)
    coverage = compute_coverage(pixel_boxes / scale, pixel_anchors / scale, 0.5, size)
    np.testing.assert_allclose(coverage.best_ious, [1.0, 0.0, 0.5, 10 / 11], atol=1e-6)
    assert coverage.overall == SizeCoverage(4, 3)
    assert coverage.by_size == {"small": SizeCoverage(2, 1), "medium": SizeCoverage(1, 1),
                                "large": SizeCoverage(1, 1)}
    assert coverage.line() == "anchor coverage: 75 % of 4 boxes (small 50 %)"
    numbers = coverage.to_dict()
    assert numbers["fraction"] == 0.75 and numbers["by_size"]["small"]["fraction"] == 0.5
    # a stricter matcher loses the IoU-0.5 box
    assert compute_coverage(pixel_boxes / scale, pixel_anchors / scale, 0.6, size
                            ).overall.covered == 2


def test_the_log_line_reads_as_the_issue_writes_it() -> None:
    coverage = Coverage(0.5, SizeCoverage(4331, 2642), {
        "small": SizeCoverage(1000, 120), "medium": SizeCoverage(3000, 2222),
        "large": SizeCoverage(331, 300)}, 0.5, np.zeros(0))
    assert coverage.line() == "anchor coverage: 61 % of 4,331 boxes (small 12 %)"
    assert percent(160 / 4331) == "3.7 %"
    assert percent(0.0) == "0 %" and percent(None) == "n/a"


def _sample_config(size: int = 300):
    from odflow import config as config_lib

    config = config_lib.load(SAMPLE_CONFIG)
    config.model.ssd.num_classes = 1
    config.model.ssd.image_resizer.fixed_shape_resizer.height = size
    config.model.ssd.image_resizer.fixed_shape_resizer.width = size
    return config


def test_model_anchors_of_ssd_mobilenet_v1_coco_at_300() -> None:
    from odflow.anchors.model import model_anchors

    anchors = model_anchors(_sample_config())
    # MobileNet v1 maps 19, 10, 5, 3, 2, 1 (ceil halvings of 300 from stride 16); 3 anchors
    # per cell on the lowest layer, 6 elsewhere: 19*19*3 + (100+25+9+4+1)*6 = 1917.
    assert anchors.feature_map_shapes == [(19, 19), (10, 10), (5, 5), (3, 3), (2, 2), (1, 1)]
    assert anchors.anchors.shape == (1917, 4)
    assert anchors.matched_threshold == 0.5 and anchors.image_size == (300, 300)
    # The first anchor: layer 0, cell (0, 0), scale 0.1, ratio 1, centred at 0.5/19.
    centre = 0.5 / 19
    np.testing.assert_allclose(anchors.anchors[0], [centre - 0.05, centre - 0.05,
                                                    centre + 0.05, centre + 0.05], atol=1e-6)
    coverage = compute_coverage(anchors.anchors[:1], anchors.anchors, 0.5, (300, 300))
    assert coverage.overall == SizeCoverage(1, 1) and coverage.best_ious[0] == pytest.approx(1)


def test_boxes_under_16_pixels_are_never_matched_at_300() -> None:
    """The issue's figure: with the tutorial's config at 300x300, no face under 16 px has an
    anchor at IoU >= 0.5 (the smallest anchor is 30 px: a 15 px box inside it has IoU at
    most 15^2 / 30^2 = 0.25), while 30 px boxes on an anchor's centre are matched."""
    from odflow.anchors.model import model_anchors

    anchors = model_anchors(_sample_config())
    grid = np.linspace(0.05, 0.95, 25)
    centres = np.stack(np.meshgrid(grid, grid), -1).reshape(-1, 2)
    for pixels in (6, 10, 15):
        half = pixels / 600
        boxes = np.concatenate([centres - half, centres + half], axis=1)
        coverage = compute_coverage(boxes, anchors.anchors, 0.5, (300, 300))
        assert coverage.overall.covered == 0, pixels
        assert coverage.best_ious.max() <= (pixels / 30) ** 2 + 1e-6, pixels
    on_centres = (np.arange(19) + 0.5) / 19
    centres = np.stack(np.meshgrid(on_centres, on_centres), -1).reshape(-1, 2)
    boxes = np.concatenate([centres - 0.05, centres + 0.05], axis=1)
    assert compute_coverage(boxes, anchors.anchors, 0.5, (300, 300)).fraction == 1.0


def test_read_boxes_keeps_the_models_classes_only(tmp_path: Path) -> None:
    from odflow.anchors.groundtruth import read_boxes

    make_records(tmp_path / "train.record", 5, seed=4)
    # make_records writes 1 + i % 2 boxes per image, class 1: 1, 2, 1, 2, 1.
    truth = read_boxes(str(tmp_path / "train.record"), num_classes=1)
    assert truth.boxes.shape == (7, 4) and list(truth.boxes_per_image) == [1, 2, 1, 2, 1]
    assert truth.image_sizes.tolist() == [[120, 100]] * 7  # make_records: 120 x 100
    assert set(truth.classes) == {1}
    from odflow.data.records import iter_examples

    expected = np.concatenate([e.boxes for e in iter_examples(str(tmp_path / "train.record"))])
    np.testing.assert_allclose(truth.boxes, expected)


def test_coverage_cli_prints_the_line(tmp_path: Path, capsys) -> None:
    from odflow.anchors.cli import run
    from tests.support.training import write_config

    config = write_config(tmp_path)
    assert run(["coverage", "--pipeline_config", str(config), "--json",
                str(tmp_path / "c.json")]) == 0
    out = capsys.readouterr().out
    assert out.startswith("anchor coverage: ") and "of 9 boxes" in out, out
    assert '"boxes": 9' in (tmp_path / "c.json").read_text()


def test_boxes_move_into_a_padded_square_input() -> None:
    """keep_aspect_ratio_resizer (EfficientDet) scales the longer side to the square input and
    pads the rest: a 100 x 200 image fills the top half, so its boxes' y halve."""
    from odflow.anchors.model import boxes_at_input

    config = _sample_config()
    boxes = np.array([[0.2, 0.4, 0.6, 0.8], [0.0, 0.0, 1.0, 1.0]], np.float32)
    sizes = np.array([[100, 200], [300, 150]])
    np.testing.assert_array_equal(boxes_at_input(config, boxes, sizes), boxes)  # stretched
    config.model.ssd.image_resizer.keep_aspect_ratio_resizer.max_dimension = 512
    np.testing.assert_allclose(boxes_at_input(config, boxes, sizes),
                               [[0.1, 0.4, 0.3, 0.8], [0.0, 0.0, 1.0, 0.5]])


def test_subsample_spreads_evenly_over_all_boxes() -> None:
    from odflow.anchors.groundtruth import subsample

    boxes = np.arange(400, dtype=np.float32).reshape(100, 4)
    # rows at linspace(0, 99, 5) = 0, 24.75, 49.5, 74.25, 99 rounded: 0, 25, 50, 74, 99
    assert subsample(boxes, 5)[:, 0].tolist() == [0, 100, 200, 296, 396]
    assert subsample(boxes, 0) is boxes and subsample(boxes, 100) is boxes
