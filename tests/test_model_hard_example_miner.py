"""Hard example miner: keeps all positives, at most k negatives each, the hardest ones."""

import numpy as np
import pytest
import tensorflow as tf

from odflow.errors import OdflowError
from odflow.model.hard_example_miner import (
    HardExampleMiner,
    build_hard_example_miner,
    greedy_nms_keep,
)
from odflow.protos import pipeline_pb2


def _disjoint_boxes(n):
    # Unit-width boxes side by side: no overlap, so NMS keeps everything.
    x = np.arange(n, dtype=np.float32)
    return np.stack([np.zeros(n), x, np.ones(n), x + 0.9], axis=-1).astype(np.float32)


def test_keeps_positives_and_hardest_negatives():
    n = 12
    boxes = np.stack([_disjoint_boxes(n)] * 2)
    cls = np.array([[0.1, 5.0, 0.2, 4.0, 0.3, 3.0, 0.4, 2.0, 0.5, 0.05, 6.0, 1.0],
                    [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.1, 1.2]], np.float32)
    loc = np.arange(2 * n, dtype=np.float32).reshape(2, n) / 10
    match = -np.ones([2, n], np.int32)
    match[0, [0, 9]] = 0  # two positives with low loss: still kept
    match[0, 4] = -2  # ignored, ranked after the quota is used: dropped
    miner = HardExampleMiner(num_hard_examples=100, iou_threshold=0.99, loss_type="cls",
                             max_negatives_per_positive=3, min_negatives_per_image=1)
    loc_sum, cls_sum = miner(loc, cls, boxes, match)
    # Image 0: 2 positives (0, 9) -> 6 hardest negatives: 10, 1, 3, 5, 7, 11.
    kept0 = [0, 9, 10, 1, 3, 5, 7, 11]
    # Image 1: no positive -> min_negatives_per_image = 1: the hardest (11).
    kept1 = [11]
    expected_cls = cls[0, kept0].sum() + cls[1, kept1].sum()
    expected_loc = loc[0, kept0].sum() + loc[1, kept1].sum()
    assert float(cls_sum) == pytest.approx(expected_cls, rel=1e-6)
    assert float(loc_sum) == pytest.approx(expected_loc, rel=1e-6)
    summary = miner.summary()
    assert float(summary["Loss/HardExampleMiner/NumPositives"]) == pytest.approx(1.0)
    assert float(summary["Loss/HardExampleMiner/NumNegatives"]) == pytest.approx(3.5)


def test_nms_removes_duplicates_and_caps_count():
    boxes = np.array([[[0, 0, 1, 1], [0, 0, 1, 1], [0, 2, 1, 3], [0, 4, 1, 5]]], np.float32)
    cls = np.array([[3.0, 2.0, 1.0, 0.5]], np.float32)
    match = np.full([1, 4], -1, np.int32)
    miner = HardExampleMiner(num_hard_examples=2, iou_threshold=0.5, loss_type="cls")
    _, cls_sum = miner(np.zeros_like(cls), cls, boxes, match)
    assert float(cls_sum) == pytest.approx(4.0)  # anchor 1 duplicates 0; cap 2 drops anchor 3


def test_loss_type_both_ranks_by_weighted_sum():
    boxes = _disjoint_boxes(3)[None]
    cls = np.array([[1.0, 0.0, 0.5]], np.float32)
    loc = np.array([[0.0, 3.0, 0.5]], np.float32)
    miner = HardExampleMiner(num_hard_examples=1, iou_threshold=0.9, loss_type="both",
                             cls_weight=1.0, loc_weight=1.0)
    loc_sum, cls_sum = miner(loc, cls, boxes, np.full([1, 3], -1, np.int32))
    assert (float(loc_sum), float(cls_sum)) == (3.0, 0.0)


def test_tf_function_and_gradients():
    miner = HardExampleMiner(num_hard_examples=3000, iou_threshold=0.99, loss_type="cls",
                             max_negatives_per_positive=3)
    boxes = tf.constant(np.stack([_disjoint_boxes(8)] * 3))
    match = tf.constant(np.array([[0, -1, -1, -1, -1, -1, -1, -1]] * 3, np.int32))
    cls = tf.Variable(tf.random.uniform([3, 8]))

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            _, cls_sum = miner(tf.zeros([3, 8]), cls, boxes, match)
            stats = miner.summary()
        return tape.gradient(cls_sum, cls), stats

    grad, stats = step()
    assert grad.numpy().sum() == pytest.approx(12.0)  # 1 positive + 3 negatives per image
    assert float(stats["Loss/HardExampleMiner/NumNegatives"]) == 3.0


def test_builder():
    proto = pipeline_pb2.HardExampleMiner(num_hard_examples=0, iou_threshold=0.99,
                                          loss_type=pipeline_pb2.HardExampleMiner.LOCALIZATION)
    miner = build_hard_example_miner(proto)
    assert miner.num_hard_examples is None and miner.max_negatives_per_positive is None
    assert miner.loss_type == "loc"
    with pytest.raises(OdflowError, match="iou_threshold"):
        build_hard_example_miner(pipeline_pb2.HardExampleMiner(iou_threshold=1.5))


@pytest.mark.parametrize("threshold", [0.3, 0.5, 0.7, 0.99])
def test_greedy_nms_matches_tf_kernel(threshold):
    rng = np.random.default_rng(int(threshold * 100))
    # Clusters of jittered copies make long suppression chains; some exact duplicates, some
    # empty boxes.
    centres = rng.uniform(0.2, 0.8, (6, 2))
    yx = np.repeat(centres, 40, axis=0) + rng.normal(0, 0.02, (240, 2))
    hw = rng.uniform(0.1, 0.3, (240, 2))
    boxes = np.concatenate([yx - hw / 2, yx + hw / 2], axis=1).astype(np.float32)
    boxes[10] = boxes[11]
    boxes[20, 2:] = boxes[20, :2]
    scores = rng.uniform(size=240).astype(np.float32)
    scores[30] = scores[31]
    order = np.argsort(-scores, kind="stable")
    expected = tf.image.non_max_suppression(boxes, scores, 240, threshold).numpy()
    keep = greedy_nms_keep(tf.constant(boxes[order]), threshold).numpy()
    assert sorted(order[keep].tolist()) == sorted(expected.tolist())
    assert len(expected) < 240


def _reference_mask(boxes, losses, match, num_hard, threshold, ratio, min_negatives):
    """The API's algorithm, literally: NMS kernel, then the running negative count."""
    selected = tf.image.non_max_suppression(boxes, losses, num_hard, threshold).numpy()
    sel_match = match[selected]
    positives = sel_match >= 0
    max_neg = max(min_negatives, int(ratio * positives.sum()))
    quota = np.cumsum(sel_match == -1) <= max_neg
    mask = np.zeros(len(losses), np.float32)
    mask[selected[positives | quota]] = 1.0
    return mask


@pytest.mark.parametrize("seed", range(6))
def test_matches_reference_algorithm(seed):
    # Anchors on a grid with clusters of near-duplicate predictions, a varying number of
    # positives (from none to most anchors) so both the prefix path and the fallback run.
    rng = np.random.default_rng(seed)
    num = 400
    centres = rng.uniform(0.1, 0.9, (num, 2))
    centres[num // 2:] = centres[: num // 2] + rng.normal(0, 0.002, (num // 2, 2))
    size = rng.uniform(0.05, 0.3, (num, 2))
    boxes = np.concatenate([centres - size / 2, centres + size / 2], 1).astype(np.float32)
    losses = rng.exponential(size=(num,)).astype(np.float32)
    positive_fraction = [0.0, 0.01, 0.03, 0.1, 0.3, 0.6][seed]
    match = np.where(rng.uniform(size=num) < positive_fraction, 0, -1).astype(np.int32)
    match[rng.uniform(size=num) < 0.05] = -2
    cls = tf.constant(losses[None])
    loc = tf.constant(rng.uniform(size=(1, num)).astype(np.float32))
    for threshold in (0.5, 0.99):
        for ratio, min_neg in ((3, 0), (1, 5)):
            miner = HardExampleMiner(3000, threshold, "cls", 1.0, 1.0, ratio, min_neg)
            loc_sum, cls_sum = miner(loc, cls, boxes[None], match[None])
            mask = _reference_mask(boxes, losses, match, 3000, threshold, ratio, min_neg)
            assert float(cls_sum) == pytest.approx(float((losses * mask).sum()), rel=1e-5)
            assert float(loc_sum) == pytest.approx(float((loc.numpy()[0] * mask).sum()), rel=1e-5)
            stats = miner.summary()
            assert float(stats["Loss/HardExampleMiner/NumPositives"]) == (
                mask * (match >= 0)).sum()


def _hand_case():
    """Six anchors; a1 is a near-copy of a0 (IoU 0.95 / 1.05 = 0.905), the rest are disjoint.

    match: a2 positive, a3 ignored (-2), the others negative (-1).
    ranking = 0.5 cls + 2 loc = [2, 1.75, 2.05, 1, 0.5, 1.25]
    -> order a2, a0, a1, a5, a3, a4; NMS at 0.7 drops a1 (below a0).
    """
    boxes = np.array([[0, 0, 1, 1], [0, 0.05, 1, 1.05], [0, 2, 1, 3], [0, 4, 1, 5],
                      [0, 6, 1, 7], [0, 8, 1, 9]], np.float32)
    cls = np.array([4.0, 3.5, 0.1, 2.0, 1.0, 0.5], np.float32)
    loc = np.array([0.0, 0.0, 1.0, 0.0, 0.0, 0.5], np.float32)
    match = np.array([-1, -1, 0, -2, -1, -1], np.int32)
    return boxes, cls, loc, match


def test_hand_worked_selection_with_ignored_anchor_and_weighted_ranking():
    """1 positive x 2 = 2 negatives: a0 and a5.  The ignored a3 ranks before the quota is used
    up, so it stays (as in the API's running count of unmatched anchors) and counts as a
    negative; a4 (third negative) is dropped.  Image 2: same boxes, no positive, so
    min_negatives_per_image = 1 keeps only the top-ranked a2.
    Kept losses: image 1 cls 0.1 + 4 + 0.5 + 2, loc 1 + 0 + 0.5 + 0; image 2 cls 0.1, loc 1.
    """
    boxes, cls, loc, match = _hand_case()
    miner = HardExampleMiner(num_hard_examples=None, iou_threshold=0.7, loss_type="both",
                             cls_weight=0.5, loc_weight=2.0, max_negatives_per_positive=2,
                             min_negatives_per_image=1)
    loc_sum, cls_sum = miner(np.stack([loc, loc]), np.stack([cls, cls]),
                             np.stack([boxes, boxes]), np.stack([match, np.full(6, -1)]))
    assert float(cls_sum) == pytest.approx(6.6 + 0.1, rel=1e-6)
    assert float(loc_sum) == pytest.approx(1.5 + 1.0, rel=1e-6)
    summary = miner.summary()
    assert float(summary["Loss/HardExampleMiner/NumPositives"]) == pytest.approx(0.5)
    assert float(summary["Loss/HardExampleMiner/NumNegatives"]) == pytest.approx(2.0)


def test_hand_worked_cap_applies_after_nms():
    """num_hard_examples = 3 keeps the first three *NMS survivors* (a2, a0, a5, not a1)."""
    boxes, cls, loc, match = _hand_case()
    miner = HardExampleMiner(num_hard_examples=3, iou_threshold=0.7, loss_type="both",
                             cls_weight=0.5, loc_weight=2.0, max_negatives_per_positive=2)
    loc_sum, cls_sum = miner(loc[None], cls[None], boxes[None], match[None])
    assert float(cls_sum) == pytest.approx(0.1 + 4.0 + 0.5, rel=1e-6)
    assert float(loc_sum) == pytest.approx(1.5, rel=1e-6)


def test_hand_worked_loc_ranking_and_no_ratio():
    """loss_type loc ranks by loc alone: a2 (1), a5 (0.5), then a0, a1, a3, a4 tied at 0 in
    index order; without a ratio NMS (0.7) keeps all but a1, and the cap 4 keeps a2, a5, a0, a3."""
    boxes, cls, loc, match = _hand_case()
    miner = HardExampleMiner(num_hard_examples=4, iou_threshold=0.7, loss_type="loc")
    _, cls_sum = miner(loc[None], cls[None], boxes[None], match[None])
    assert float(cls_sum) == pytest.approx(0.1 + 0.5 + 4.0 + 2.0, rel=1e-6)


def test_builder_reads_every_field():
    proto = pipeline_pb2.HardExampleMiner(
        num_hard_examples=1, iou_threshold=1.0,
        loss_type=pipeline_pb2.HardExampleMiner.CLASSIFICATION, max_negatives_per_positive=1,
        min_negatives_per_image=2)
    miner = build_hard_example_miner(proto, classification_weight=0.3, localization_weight=0.7)
    assert (miner.num_hard_examples, miner.iou_threshold, miner.loss_type) == (1, 1.0, "cls")
    assert (miner.max_negatives_per_positive, miner.min_negatives_per_image) == (1.0, 2)
    assert (miner.cls_weight, miner.loc_weight) == (pytest.approx(0.3), pytest.approx(0.7))
    default = build_hard_example_miner(pipeline_pb2.HardExampleMiner())
    assert (default.num_hard_examples, default.loss_type) == (64, "both")
    assert (default.cls_weight, default.loc_weight) == (1.0, 1.0)
    with pytest.raises(OdflowError, match=r"loss.hard_example_miner.iou_threshold must lie in "
                       r"\(0, 1\], got 0.0"):
        build_hard_example_miner(pipeline_pb2.HardExampleMiner(iou_threshold=0.0))
    with pytest.raises(OdflowError, match="^loss.hard_example_miner.min_negatives_per_image must "
                       "not be negative$"):
        build_hard_example_miner(pipeline_pb2.HardExampleMiner(min_negatives_per_image=-1))


def test_float64_inputs_are_read_as_float32():
    """Numpy float64 losses and boxes (what numpy code hands over) give the float32 result of
    the hand-worked case above."""
    boxes, cls, loc, match = _hand_case()
    miner = HardExampleMiner(num_hard_examples=None, iou_threshold=0.7, loss_type="both",
                             cls_weight=0.5, loc_weight=2.0, max_negatives_per_positive=2,
                             min_negatives_per_image=1)
    loc_sum, cls_sum = miner(loc[None].astype(np.float64), cls[None].astype(np.float64),
                             boxes[None].astype(np.float64), match[None].astype(np.int64))
    assert cls_sum.dtype == tf.float32 and loc_sum.dtype == tf.float32
    assert float(cls_sum) == pytest.approx(6.6, rel=1e-6)
    assert float(loc_sum) == pytest.approx(1.5, rel=1e-6)


def test_builder_names_an_unknown_loss_type():
    class FutureConfig:  # a LossType enum value odflow does not know
        loss_type, iou_threshold, min_negatives_per_image = 3, 0.5, 0

    with pytest.raises(OdflowError, match="^loss.hard_example_miner.loss_type 3 is unknown$"):
        build_hard_example_miner(FutureConfig())


@pytest.mark.parametrize("loss_type, expected", [
    ("both", (1.5, 1.5)), ("cls", (0.0, 2.0)), ("loc", (2.0, 0.0))])
def test_each_loss_type_ranks_by_its_own_loss(loss_type, expected):
    """Three disjoint anchors, cap 1: cls [2, 0, 1.5], loc [0, 2, 1.5], weights 1 and 1.
    The hardest is a0 by cls, a1 by loc, a2 by cls + loc (2, 2, 3)."""
    miner = HardExampleMiner(num_hard_examples=1, iou_threshold=0.5, loss_type=loss_type,
                             cls_weight=1.0, loc_weight=1.0)
    loc_sum, cls_sum = miner(np.array([[0.0, 2.0, 1.5]]), np.array([[2.0, 0.0, 1.5]]),
                             _disjoint_boxes(3)[None], np.full([1, 3], -1))
    assert (float(loc_sum), float(cls_sum)) == expected


def test_loc_ranking_with_a_cap_of_two():
    """The hand case by loc alone: a2 (1), a5 (0.5) first; by the default weighted sum
    (0.05 cls + 0.06 loc) it would be a0, a3."""
    boxes, cls, loc, match = _hand_case()
    miner = HardExampleMiner(num_hard_examples=2, iou_threshold=0.7, loss_type="loc")
    _, cls_sum = miner(loc[None], cls[None], boxes[None], match[None])
    assert float(cls_sum) == pytest.approx(0.1 + 0.5, rel=1e-6)


def test_float64_boxes_are_compared_in_float32():
    """Box b = [0, 0, 1, 0.5 + 1e-12] inside a = [0, 0, 1, 1]: IoU just above 0.5 in float64,
    exactly 0.5 in float32, where the NMS kernel (and the model's float32 boxes) work, so b
    is not suppressed at threshold 0.5."""
    boxes = np.array([[0.0, 0.0, 1.0, 1.0], [0.0, 0.0, 1.0, 0.5 + 1e-12]], np.float64)
    scores = np.array([2.0, 1.0], np.float32)
    kernel = tf.image.non_max_suppression(boxes.astype(np.float32), scores, 2, 0.5).numpy()
    assert kernel.tolist() == [0, 1]
    miner = HardExampleMiner(num_hard_examples=None, iou_threshold=0.5, loss_type="cls")
    _, cls_sum = miner(np.zeros([1, 2], np.float32), scores[None], boxes[None],
                       np.full([1, 2], -1))
    assert float(cls_sum) == 3.0


def test_defaults_are_the_api_defaults_and_bad_loss_type():
    miner = HardExampleMiner()
    assert (miner.num_hard_examples, miner.iou_threshold, miner.loss_type) == (64, 0.7, "both")
    assert (miner.cls_weight, miner.loc_weight) == (0.05, 0.06)
    assert (miner.max_negatives_per_positive, miner.min_negatives_per_image) == (None, 0)
    assert miner.summary() == {}  # nothing mined yet
    with pytest.raises(ValueError, match=r"^loss_type must be one of \('both', 'cls', 'loc'\), "
                       r"got 'class'$"):
        HardExampleMiner(loss_type="class")


def _ranked_case(match, max_negatives_per_positive, num_hard_examples=None, boxes=None):
    """len(match) disjoint anchors (or ``boxes``) ranked in index order by cls loss n - i,
    mined at IoU 0.5 -> (kept cls loss sum, kept positives, kept non-positives, losses, boxes).
    100 anchors with few positives: the prefix holds ~70 of them, so these cases exercise what
    happens at and beyond it."""
    match = np.asarray(match, np.int32)
    n = len(match)
    boxes = _disjoint_boxes(n) if boxes is None else boxes
    losses = (n - np.arange(n)).astype(np.float32)
    miner = HardExampleMiner(num_hard_examples, 0.5, "cls", 1.0, 1.0,
                             max_negatives_per_positive, 0)
    _, cls_sum = miner(np.zeros([1, n], np.float32), losses[None], boxes[None], match[None])
    stats = miner.summary()
    return (float(cls_sum), float(stats["Loss/HardExampleMiner/NumPositives"]),
            float(stats["Loss/HardExampleMiner/NumNegatives"]), losses, boxes)


def test_quota_not_filled_by_non_negatives_within_the_prefix():
    """2 positives (matched to row 1), 65 ignored, 33 negatives, ratio 0.5: quota 1.  The
    running count of unmatched anchors stays 0 over the ignored ones, so all 67 and the
    first negative (a67) are kept; positives or ignored anchors do not fill the quota."""
    match = [1, 1] + [-2] * 65 + [-1] * 33
    cls_sum, positives, negatives, losses, boxes = _ranked_case(match, 0.5)
    assert (positives, negatives) == (2.0, 66.0)
    assert cls_sum == pytest.approx(losses[:68].sum())
    reference = _reference_mask(boxes, losses, np.array(match), 100, 0.5, 0.5, 0)
    assert cls_sum == pytest.approx(float((losses * reference).sum()))


def test_quota_filled_exactly_keeps_later_ignored_anchors():
    """1 positive, ratio 3: a1-a3 fill the quota exactly; the ignored a4-a69 rank before any
    further negative, so they stay (the API); a70 (4th negative) and later are dropped."""
    match = [0] + [-1] * 3 + [-2] * 66 + [-1] * 30
    cls_sum, positives, negatives, losses, _ = _ranked_case(match, 3)
    assert (positives, negatives) == (1.0, 69.0)
    assert cls_sum == pytest.approx(losses[:70].sum())


def test_late_positive_with_an_empty_box_is_kept():
    """A positive ranked 70th behind 69 negatives, its predicted box empty (zero height): an
    empty box never overlaps, so NMS keeps it and it counts (3 negatives with it)."""
    match = [-1] * 69 + [0] + [-1] * 30
    boxes = _disjoint_boxes(100)
    boxes[69] = [0.5, 69.0, 0.5, 69.9]
    cls_sum, positives, negatives, losses, _ = _ranked_case(match, 3, boxes=boxes)
    assert (positives, negatives) == (1.0, 3.0)
    assert cls_sum == pytest.approx(losses[[0, 1, 2, 69]].sum())


def test_cap_applies_before_late_positives():
    """Cap 3 of 100 anchors: only a0-a2 (negatives) can be selected; the positive a80 is
    beyond the cap, so with no positive the quota is 0 and nothing is kept."""
    match = [-1] * 80 + [0] + [-1] * 19
    cls_sum, positives, negatives, _, _ = _ranked_case(match, 1, num_hard_examples=3)
    assert (cls_sum, positives, negatives) == (0.0, 0.0, 0.0)


def test_greedy_nms_long_chain():
    """Unit boxes 0.3 apart: each overlaps its neighbour (IoU 0.7 / 1.3 = 0.54 > 0.5) but not
    the next one (0.4 / 1.6 = 0.25): greedy NMS keeps every other box, a chain of 20
    suppressions that needs one fixed-point step per box."""
    x = 0.3 * np.arange(20, dtype=np.float32)
    boxes = np.stack([np.zeros(20), x, np.ones(20), x + 1], axis=-1).astype(np.float32)
    keep = greedy_nms_keep(tf.constant(boxes), 0.5).numpy()
    assert keep.tolist() == [True, False] * 10
    scores = np.linspace(1, 0, 20).astype(np.float32)
    assert sorted(tf.image.non_max_suppression(boxes, scores, 20, 0.5).numpy()) == list(
        range(0, 20, 2))


def test_greedy_nms_traces_with_an_unknown_box_axis():
    """Only traced (graph built, not run): the coordinate axis may be unknown statically."""
    traced = tf.function(greedy_nms_keep).get_concrete_function(tf.TensorSpec([5, None]), 0.5)
    assert traced.structured_outputs.shape.as_list() == [5]


@pytest.mark.parametrize("num_hard_examples", [None, 64])
def test_traces_with_an_unknown_anchor_count(num_hard_examples):
    """Only traced (graph built, not run): a tf.function over any anchor count, with or
    without a cap."""
    miner = HardExampleMiner(num_hard_examples, 0.7, "cls", max_negatives_per_positive=3)

    def mine(loc, cls, boxes, match):
        return miner.mine(loc, cls, boxes, match).classification_loss

    losses = tf.TensorSpec([None, None])
    traced = tf.function(mine).get_concrete_function(
        losses, losses, tf.TensorSpec([None, None, 4]), tf.TensorSpec([None, None], tf.int32))
    assert traced.structured_outputs.shape.as_list() == []
