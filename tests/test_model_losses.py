"""Each loss on tiny tensors against a numpy formula; builder errors."""

import numpy as np
import pytest
import tensorflow as tf

from odflow.errors import OdflowError
from odflow.model import losses
from odflow.model.hard_example_miner import HardExampleMiner
from odflow.protos import pipeline_pb2

RNG = np.random.default_rng(1)
LOGITS = RNG.normal(size=(2, 3, 4)).astype(np.float32)
TARGETS = np.eye(4, dtype=np.float32)[[[0, 1, 2], [3, 0, 0]]]
WEIGHTS = np.array([[1.0, 0.5, 0.0], [2.0, 1.0, 1.0]], np.float32)
CODES = RNG.normal(size=(2, 3, 4)).astype(np.float32) * 2
CODE_TARGETS = RNG.normal(size=(2, 3, 4)).astype(np.float32)


def _sigmoid_ce(x, z):
    p = 1 / (1 + np.exp(-x))
    return -(z * np.log(p) + (1 - z) * np.log(1 - p)), p


def test_weighted_sigmoid():
    ce, _ = _sigmoid_ce(LOGITS, TARGETS)
    got = losses.WeightedSigmoidClassificationLoss()(LOGITS, TARGETS, WEIGHTS).numpy()
    assert got.shape == (2, 3)
    np.testing.assert_allclose(got, (ce * WEIGHTS[..., None]).sum(-1), rtol=1e-5)
    per_class = np.broadcast_to(WEIGHTS[..., None], LOGITS.shape)
    np.testing.assert_allclose(
        losses.WeightedSigmoidClassificationLoss()(LOGITS, TARGETS, per_class).numpy(), got)


def test_sigmoid_focal():
    ce, p = _sigmoid_ce(LOGITS, TARGETS)
    p_t = TARGETS * p + (1 - TARGETS) * (1 - p)
    alpha_t = TARGETS * 0.75 + (1 - TARGETS) * 0.25
    expected = (alpha_t * (1 - p_t) ** 2 * ce * WEIGHTS[..., None]).sum(-1)
    got = losses.SigmoidFocalClassificationLoss(gamma=2.0, alpha=0.75)(LOGITS, TARGETS, WEIGHTS)
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-5)
    no_alpha = losses.SigmoidFocalClassificationLoss(gamma=0.0, alpha=None)
    np.testing.assert_allclose(no_alpha(LOGITS, TARGETS, WEIGHTS).numpy(),
                               (ce * WEIGHTS[..., None]).sum(-1), rtol=1e-5)


def test_weighted_softmax_with_logit_scale():
    scaled = LOGITS / 2.0
    log_softmax = scaled - np.log(np.exp(scaled).sum(-1, keepdims=True))
    expected = -(TARGETS * log_softmax).sum(-1) * WEIGHTS
    got = losses.WeightedSoftmaxClassificationLoss(logit_scale=2.0)(LOGITS, TARGETS, WEIGHTS)
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-5)


def test_smooth_l1():
    diff = np.abs(CODES - CODE_TARGETS)
    huber = np.where(diff <= 1.0, 0.5 * diff**2, diff - 0.5)
    got = losses.WeightedSmoothL1LocalizationLoss()(CODES, CODE_TARGETS, WEIGHTS).numpy()
    np.testing.assert_allclose(got, huber.sum(-1) * WEIGHTS, rtol=1e-5)
    # delta 2: quadratic up to 2, then 2 * (|x| - 1).
    huber2 = np.where(diff <= 2.0, 0.5 * diff**2, 2 * (diff - 1.0))
    got2 = losses.WeightedSmoothL1LocalizationLoss(2.0)(CODES, CODE_TARGETS, WEIGHTS).numpy()
    np.testing.assert_allclose(got2, huber2.sum(-1) * WEIGHTS, rtol=1e-5)


def test_l2_and_l1():
    got = losses.WeightedL2LocalizationLoss()(CODES, CODE_TARGETS, WEIGHTS).numpy()
    expected = 0.5 * (((CODES - CODE_TARGETS) * WEIGHTS[..., None]) ** 2).sum(-1)
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    got = losses.L1LocalizationLoss()(CODES, CODE_TARGETS, WEIGHTS).numpy()
    np.testing.assert_allclose(got, np.abs(CODES - CODE_TARGETS).sum(-1) * WEIGHTS, rtol=1e-5)


def test_iou_and_giou():
    pred = np.array([[[0.0, 0.0, 1.0, 1.0], [0.0, 0.0, 1.0, 1.0]]], np.float32)
    target = np.array([[[0.0, 0.0, 1.0, 0.5], [0.0, 2.0, 1.0, 3.0]]], np.float32)
    weights = np.ones([1, 2], np.float32)
    iou = losses.WeightedIOULocalizationLoss()(pred, target, weights).numpy()
    np.testing.assert_allclose(iou, [[0.5, 1.0]], atol=1e-6)
    giou = losses.WeightedGIOULocalizationLoss()(pred, target, weights).numpy()
    # Disjoint pair: IoU 0, hull 3, union 2 -> GIoU -1/3, loss 4/3.
    np.testing.assert_allclose(giou, [[0.5, 4.0 / 3.0]], atol=1e-6)


def _loss_config():
    config = pipeline_pb2.Loss()
    config.classification_loss.weighted_sigmoid.SetInParent()
    config.localization_loss.weighted_smooth_l1.SetInParent()
    miner = config.hard_example_miner
    miner.num_hard_examples = 3000
    miner.iou_threshold = 0.99
    miner.loss_type = pipeline_pb2.HardExampleMiner.CLASSIFICATION
    miner.max_negatives_per_positive = 3
    return config


def test_build_losses_zoo():
    built = losses.build_losses(_loss_config())
    assert isinstance(built.classification, losses.WeightedSigmoidClassificationLoss)
    assert isinstance(built.localization, losses.WeightedSmoothL1LocalizationLoss)
    assert isinstance(built.hard_example_miner, HardExampleMiner)
    miner = built.hard_example_miner
    assert (miner.num_hard_examples, miner.loss_type, miner.max_negatives_per_positive) == (
        3000, "cls", 3.0)
    assert miner.iou_threshold == pytest.approx(0.99)


def test_build_losses_refuses_unsupported():
    config = _loss_config()
    config.random_example_sampler.SetInParent()
    with pytest.raises(OdflowError, match="random_example_sampler"):
        losses.build_losses(config)
    config = _loss_config()
    config.classification_loss.weighted_sigmoid_focal.gamma = 2.0
    with pytest.raises(OdflowError, match="hard_example_miner"):
        losses.build_losses(config)
    config.ClearField("hard_example_miner")
    focal = losses.build_losses(config).classification
    assert focal.alpha is None and focal.gamma == 2.0
    config.classification_loss.weighted_dice_classification_loss.SetInParent()
    with pytest.raises(OdflowError, match="weighted_dice_classification_loss"):
        losses.build_losses(config)


CLASS_WEIGHTS = RNG.uniform(0.0, 2.0, size=(2, 3, 4)).astype(np.float32)


def test_sigmoid_focal_defaults_and_per_class_weights():
    """Defaults gamma 2, alpha 0.25 (the API's); alpha_t = alpha for targets 1, 1 - alpha for 0."""
    loss = losses.SigmoidFocalClassificationLoss()
    assert (loss.gamma, loss.alpha) == (2.0, 0.25)
    ce, p = _sigmoid_ce(LOGITS, TARGETS)
    p_t = TARGETS * p + (1 - TARGETS) * (1 - p)
    alpha_t = TARGETS * 0.25 + (1 - TARGETS) * 0.75
    expected = (alpha_t * (1 - p_t) ** 2 * ce * CLASS_WEIGHTS).sum(-1)
    np.testing.assert_allclose(loss(LOGITS, TARGETS, CLASS_WEIGHTS).numpy(), expected, rtol=1e-5)
    gamma_only = losses.SigmoidFocalClassificationLoss(gamma=1.0, alpha=None)
    np.testing.assert_allclose(gamma_only(LOGITS, TARGETS, WEIGHTS).numpy(),
                               ((1 - p_t) * ce * WEIGHTS[..., None]).sum(-1), rtol=1e-5)


def test_sigmoid_focal_hand_worked():
    """Logit 0 (p = 0.5), target 1, gamma 2, alpha 0.25: 0.25 * 0.5**2 * ln 2."""
    got = losses.SigmoidFocalClassificationLoss()([[[0.0]]], [[[1.0]]], [[1.0]]).numpy()
    assert got[0, 0] == pytest.approx(0.25 * 0.25 * np.log(2.0), rel=1e-6)


def test_weighted_softmax_averages_per_class_weights():
    """[B, A, C] weights: the API averages them over classes (one CE per anchor)."""
    log_softmax = LOGITS - np.log(np.exp(LOGITS).sum(-1, keepdims=True))
    expected = -(TARGETS * log_softmax).sum(-1) * CLASS_WEIGHTS.mean(-1)
    loss = losses.WeightedSoftmaxClassificationLoss()
    assert loss.logit_scale == 1.0
    np.testing.assert_allclose(loss(LOGITS, TARGETS, CLASS_WEIGHTS).numpy(), expected, rtol=1e-5)
    for bad in (0.0, -1.0):
        with pytest.raises(OdflowError, match=f"^weighted_softmax.logit_scale must be positive, "
                           f"got {bad}$"):
            losses.WeightedSoftmaxClassificationLoss(logit_scale=bad)


@pytest.mark.parametrize("hard", [False, True])
def test_bootstrapped_sigmoid(hard):
    """The API: sigmoid CE against alpha * target + (1 - alpha) * sigmoid(logit) (soft) or
    * [sigmoid(logit) > 0.5] (hard), times the weights, summed over classes."""
    _, p = _sigmoid_ce(LOGITS, TARGETS)
    prediction = (p > 0.5).astype(np.float32) if hard else p
    mixed = 0.7 * TARGETS + 0.3 * prediction
    ce = -(mixed * np.log(p) + (1 - mixed) * np.log(1 - p))
    loss = losses.BootstrappedSigmoidClassificationLoss(0.7, hard_bootstrap=hard)
    np.testing.assert_allclose(loss(LOGITS, TARGETS, WEIGHTS).numpy(),
                               (ce * WEIGHTS[..., None]).sum(-1), rtol=1e-5)
    np.testing.assert_allclose(loss(LOGITS, TARGETS, CLASS_WEIGHTS).numpy(),
                               (ce * CLASS_WEIGHTS).sum(-1), rtol=1e-5)


def test_bootstrapped_sigmoid_hand_worked():
    """Logit ln 3 (p = 0.75), target 0, alpha 0.5.  Soft: label 0.375, CE = -(0.375 ln 0.75 +
    0.625 ln 0.25); hard: label 0.5 (0.75 > 0.5), CE = -(0.5 ln 0.75 + 0.5 ln 0.25)."""
    logit = [[[np.log(3.0)]]]
    soft = losses.BootstrappedSigmoidClassificationLoss(0.5)(logit, [[[0.0]]], [[1.0]])
    hard = losses.BootstrappedSigmoidClassificationLoss(0.5, True)(logit, [[[0.0]]], [[1.0]])
    assert float(soft[0, 0]) == pytest.approx(-(0.375 * np.log(0.75) + 0.625 * np.log(0.25)),
                                              rel=1e-5)
    assert float(hard[0, 0]) == pytest.approx(-(0.5 * np.log(0.75) + 0.5 * np.log(0.25)),
                                              rel=1e-5)


def test_smooth_l1_hand_worked_and_bad_delta():
    """|x| = 0.5 -> 0.125; |x| = 3, delta 1 -> 2.5; both with weight 2, summed over the code."""
    got = losses.WeightedSmoothL1LocalizationLoss()([[[0.5, 3.0, 0, 0]]], [[[0, 0, 0, 0]]],
                                                    [[2.0]])
    assert float(got[0, 0]) == pytest.approx(2 * (0.125 + 2.5))
    for bad in (0.0, -1.0):
        with pytest.raises(OdflowError, match=f"^weighted_smooth_l1.delta must be positive, "
                           f"got {bad}$"):
            losses.WeightedSmoothL1LocalizationLoss(delta=bad)


ALL_LOSSES = [
    losses.WeightedSigmoidClassificationLoss(), losses.SigmoidFocalClassificationLoss(),
    losses.WeightedSoftmaxClassificationLoss(), losses.BootstrappedSigmoidClassificationLoss(0.5),
    losses.WeightedSmoothL1LocalizationLoss(), losses.WeightedL2LocalizationLoss(),
    losses.L1LocalizationLoss(), losses.WeightedIOULocalizationLoss(),
    losses.WeightedGIOULocalizationLoss(),
]


@pytest.mark.parametrize("loss", ALL_LOSSES, ids=lambda loss: type(loss).__name__)
def test_float64_and_python_inputs_give_float32(loss):
    """Inputs are converted to float32 first (numpy float64 and python lists, as callers pass)."""
    boxes = np.array([[[0.0, 0.0, 1.0, 1.0], [0.0, 0.0, 0.5, 0.5]]])
    target = boxes[:, ::-1].tolist()
    got = loss(boxes, target, np.array([[1.0, 0.5]]))
    assert got.dtype == tf.float32 and got.shape == (1, 2)


def test_build_classification_losses_read_their_fields():
    config = pipeline_pb2.ClassificationLoss()
    assert isinstance(losses.build_classification_loss(pipeline_pb2.ClassificationLoss(
        weighted_sigmoid={})), losses.WeightedSigmoidClassificationLoss)
    config.weighted_sigmoid_focal.gamma = 1.5
    config.weighted_sigmoid_focal.alpha = 0.4
    focal = losses.build_classification_loss(config)
    assert (focal.gamma, focal.alpha) == (1.5, pytest.approx(0.4))
    config.weighted_softmax.logit_scale = 2.5
    assert losses.build_classification_loss(config).logit_scale == 2.5
    config.bootstrapped_sigmoid.alpha = 0.25
    config.bootstrapped_sigmoid.hard_bootstrap = True
    bootstrapped = losses.build_classification_loss(config)
    assert isinstance(bootstrapped, losses.BootstrappedSigmoidClassificationLoss)
    assert (bootstrapped.alpha, bootstrapped.hard_bootstrap) == (0.25, True)
    config.bootstrapped_sigmoid.hard_bootstrap = False
    assert losses.build_classification_loss(config).hard_bootstrap is False
    config.bootstrapped_sigmoid.ClearField("alpha")
    with pytest.raises(OdflowError, match="^loss.classification_loss.bootstrapped_sigmoid.alpha "
                       "is required$"):
        losses.build_classification_loss(config)
    supported = ("odflow supports weighted_sigmoid, weighted_sigmoid_focal, weighted_softmax "
                 "and bootstrapped_sigmoid$")
    with pytest.raises(OdflowError, match="^loss.classification_loss: nothing is set; "
                       + supported):
        losses.build_classification_loss(pipeline_pb2.ClassificationLoss())
    config.weighted_logits_softmax.SetInParent()
    with pytest.raises(OdflowError, match="^loss.classification_loss: weighted_logits_softmax "
                       "is set; " + supported):
        losses.build_classification_loss(config)


def test_build_localization_losses_read_their_fields():
    kinds = {"weighted_l2": losses.WeightedL2LocalizationLoss,
             "l1_localization_loss": losses.L1LocalizationLoss,
             "weighted_iou": losses.WeightedIOULocalizationLoss,
             "weighted_giou": losses.WeightedGIOULocalizationLoss,
             "weighted_smooth_l1": losses.WeightedSmoothL1LocalizationLoss}
    for field, cls in kinds.items():
        config = pipeline_pb2.LocalizationLoss(**{field: {}})
        assert type(losses.build_localization_loss(config)) is cls
    config = pipeline_pb2.LocalizationLoss()
    config.weighted_smooth_l1.delta = 0.25
    assert losses.build_localization_loss(config).delta == 0.25
    with pytest.raises(OdflowError, match="^loss.localization_loss: nothing is set; odflow "
                       "supports weighted_smooth_l1, weighted_l2, l1_localization_loss, "
                       "weighted_iou and weighted_giou$"):
        losses.build_localization_loss(pipeline_pb2.LocalizationLoss())


def test_build_losses_weights_and_miner_weights():
    config = _loss_config()
    config.classification_weight = 0.5
    config.localization_weight = 2.0
    config.hard_example_miner.loss_type = pipeline_pb2.HardExampleMiner.BOTH
    built = losses.build_losses(config)
    assert (built.classification_weight, built.localization_weight) == (0.5, 2.0)
    assert (built.hard_example_miner.cls_weight, built.hard_example_miner.loc_weight) == (0.5, 2.0)
    config.ClearField("hard_example_miner")
    assert losses.build_losses(config).hard_example_miner is None


@pytest.mark.parametrize("field, set_it", [
    ("random_example_sampler", lambda c: c.random_example_sampler.SetInParent()),
    ("equalization_loss", lambda c: setattr(c.equalization_loss, "weight", 0.5)),
    ("expected_loss_weights", lambda c: setattr(c, "expected_loss_weights", 1)),
    ("min_num_negative_samples", lambda c: setattr(c, "min_num_negative_samples", 0.0)),
    ("desired_negative_sampling_ratio",
     lambda c: setattr(c, "desired_negative_sampling_ratio", 3.0)),
])
def test_build_losses_names_each_unsupported_field(field, set_it):
    config = _loss_config()
    set_it(config)
    with pytest.raises(OdflowError, match=f"^loss.{field} is set but odflow does not implement "
                       r"it; remove it \(use hard_example_miner to balance negatives\)$"):
        losses.build_losses(config)


def test_build_losses_accepts_a_zero_equalization_loss_and_needs_both_losses():
    config = _loss_config()
    config.equalization_loss.weight = 0.0
    assert losses.build_losses(config).hard_example_miner is not None
    config.ClearField("classification_loss")
    with pytest.raises(OdflowError, match="^loss.classification_loss is not set$"):
        losses.build_losses(config)
    config = _loss_config()
    config.ClearField("localization_loss")
    with pytest.raises(OdflowError, match="^loss.localization_loss is not set$"):
        losses.build_losses(config)


def test_build_losses_refuses_focal_with_miner_in_full():
    config = _loss_config()
    config.classification_loss.weighted_sigmoid_focal.SetInParent()
    with pytest.raises(OdflowError, match=r"^loss.hard_example_miner must not be combined with "
                       r"weighted_sigmoid_focal \(focal loss already down-weights easy "
                       r"negatives\); remove one of them$"):
        losses.build_losses(config)


def test_hard_bootstrap_threshold_is_strict():
    """At logit 0 (p = 0.5 exactly) the hard bootstrap's prediction is 0: [p > 0.5].  CE is
    ln 2 for any label there, but its gradient is p - label: with target 0 and alpha 0.5 the
    label is 0.5 * 0 + 0.5 * 0 = 0, so the gradient is 0.5 (weight 1)."""
    logits = tf.Variable([[[0.0]]])
    with tf.GradientTape() as tape:
        loss = losses.BootstrappedSigmoidClassificationLoss(0.5, True)(logits, [[[0.0]]],
                                                                       [[1.0]])
    assert float(loss[0, 0]) == pytest.approx(np.log(2.0))
    assert float(tape.gradient(loss, logits)[0, 0, 0]) == pytest.approx(0.5)


def test_iou_losses_multiply_by_the_weights():
    pred = np.array([[[0.0, 0.0, 1.0, 1.0], [0.0, 0.0, 1.0, 1.0]]], np.float32)
    target = np.array([[[0.0, 0.0, 1.0, 0.5], [0.0, 2.0, 1.0, 3.0]]], np.float32)
    weights = np.array([[2.0, 0.5]], np.float32)
    iou = losses.WeightedIOULocalizationLoss()(pred, target, weights).numpy()
    np.testing.assert_allclose(iou, [[2 * 0.5, 0.5 * 1.0]], atol=1e-6)
    giou = losses.WeightedGIOULocalizationLoss()(pred, target, weights).numpy()
    np.testing.assert_allclose(giou, [[2 * 0.5, 0.5 * 4.0 / 3.0]], atol=1e-6)
