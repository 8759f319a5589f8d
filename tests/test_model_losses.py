"""Each loss on tiny tensors against a numpy formula; builder errors."""

import numpy as np
import pytest

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
