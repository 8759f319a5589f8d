"""Per-anchor training losses.

Every loss is ``loss(prediction, target, weights) -> [B, A]``, one value per anchor:

- classification losses take logits and targets ``[B, A, C+1]`` and ``weights [B, A]`` (or
  per class ``[B, A, C+1]``) and return the loss *already summed over classes* (the API returns
  ``[B, A, C+1]`` and its meta-architecture sums; summing here lets the hard example miner and
  the normaliser work on one shape);
- localization losses take codes ``[B, A, 4]`` and ``weights [B, A]`` and sum over the code.
  The IoU variants (``expects_decoded_boxes = True``) instead take *decoded* corner boxes for
  both prediction and target.

Weights multiply the per-entry loss (weight 0 anchors contribute exactly 0), as in the API.
"""

from __future__ import annotations

from dataclasses import dataclass

import tensorflow as tf

from odflow.errors import OdflowError
from odflow.model import box_ops
from odflow.model.hard_example_miner import HardExampleMiner, build_hard_example_miner


def _tensors(*values) -> tuple[tf.Tensor, ...]:
    return tuple(tf.convert_to_tensor(v, tf.float32) for v in values)


def _class_weights(weights: tf.Tensor, like: tf.Tensor) -> tf.Tensor:
    """Per-anchor ``[B, A]`` weights (float32 tensors, see ``_tensors``) broadcast over classes."""
    if weights.shape.rank == like.shape.rank - 1:
        weights = weights[..., None]
    return weights


class WeightedSigmoidClassificationLoss:
    """Sum over classes of sigmoid cross-entropy times weights."""

    expects_decoded_boxes = False

    def __call__(self, prediction: tf.Tensor, target: tf.Tensor, weights: tf.Tensor) -> tf.Tensor:
        prediction, target, weights = _tensors(prediction, target, weights)
        per_entry = tf.nn.sigmoid_cross_entropy_with_logits(labels=target, logits=prediction)
        return tf.reduce_sum(per_entry * _class_weights(weights, prediction), axis=-1)


class SigmoidFocalClassificationLoss:
    """Focal loss: sigmoid CE scaled by ``(1 - p_t)**gamma`` and, if set, alpha balancing."""

    expects_decoded_boxes = False

    def __init__(self, gamma: float = 2.0, alpha: float | None = 0.25) -> None:
        self.gamma = float(gamma)
        self.alpha = None if alpha is None else float(alpha)

    def __call__(self, prediction: tf.Tensor, target: tf.Tensor, weights: tf.Tensor) -> tf.Tensor:
        prediction, target, weights = _tensors(prediction, target, weights)
        per_entry = tf.nn.sigmoid_cross_entropy_with_logits(labels=target, logits=prediction)
        probs = tf.sigmoid(prediction)
        p_t = target * probs + (1.0 - target) * (1.0 - probs)
        loss = per_entry
        if self.gamma:
            loss = loss * tf.pow(1.0 - p_t, self.gamma)
        if self.alpha is not None:
            loss = loss * (target * self.alpha + (1.0 - target) * (1.0 - self.alpha))
        return tf.reduce_sum(loss * _class_weights(weights, prediction), axis=-1)


class WeightedSoftmaxClassificationLoss:
    """Softmax cross-entropy of ``logits / logit_scale``; per-class weights are averaged."""

    expects_decoded_boxes = False

    def __init__(self, logit_scale: float = 1.0) -> None:
        if logit_scale <= 0:
            raise OdflowError(f"weighted_softmax.logit_scale must be positive, got {logit_scale}")
        self.logit_scale = float(logit_scale)

    def __call__(self, prediction: tf.Tensor, target: tf.Tensor, weights: tf.Tensor) -> tf.Tensor:
        prediction, target, weights = _tensors(prediction, target, weights)
        if weights.shape.rank == prediction.shape.rank:
            weights = tf.reduce_mean(weights, axis=-1)
        per_anchor = tf.nn.softmax_cross_entropy_with_logits(
            labels=target, logits=prediction / self.logit_scale
        )
        return per_anchor * weights


class BootstrappedSigmoidClassificationLoss:
    """Sigmoid CE against ``alpha * target + (1 - alpha) * prediction`` (soft or hard)."""

    expects_decoded_boxes = False

    def __init__(self, alpha: float, hard_bootstrap: bool = False) -> None:
        self.alpha = float(alpha)
        self.hard_bootstrap = hard_bootstrap

    def __call__(self, prediction: tf.Tensor, target: tf.Tensor, weights: tf.Tensor) -> tf.Tensor:
        prediction, target, weights = _tensors(prediction, target, weights)
        probs = tf.sigmoid(prediction)
        if self.hard_bootstrap:
            probs = tf.cast(probs > 0.5, tf.float32)
        mixed = self.alpha * target + (1.0 - self.alpha) * probs
        per_entry = tf.nn.sigmoid_cross_entropy_with_logits(labels=mixed, logits=prediction)
        return tf.reduce_sum(per_entry * _class_weights(weights, prediction), axis=-1)


class WeightedSmoothL1LocalizationLoss:
    """Huber loss summed over the code: ``0.5 x**2`` if ``|x| <= delta`` else
    ``delta * (|x| - 0.5 delta)``."""

    expects_decoded_boxes = False

    def __init__(self, delta: float = 1.0) -> None:
        if delta <= 0:
            raise OdflowError(f"weighted_smooth_l1.delta must be positive, got {delta}")
        self.delta = float(delta)

    def __call__(self, prediction: tf.Tensor, target: tf.Tensor, weights: tf.Tensor) -> tf.Tensor:
        prediction, target, weights = _tensors(prediction, target, weights)
        abs_diff = tf.abs(prediction - target)
        quadratic = tf.minimum(abs_diff, self.delta)
        per_entry = 0.5 * tf.square(quadratic) + self.delta * (abs_diff - quadratic)
        return tf.reduce_sum(per_entry, axis=-1) * weights


class WeightedL2LocalizationLoss:
    """``0.5 * sum((weight * (prediction - target))**2)``: the API weights *before* squaring."""

    expects_decoded_boxes = False

    def __call__(self, prediction: tf.Tensor, target: tf.Tensor, weights: tf.Tensor) -> tf.Tensor:
        prediction, target, weights = _tensors(prediction, target, weights)
        weighted = (prediction - target) * weights[..., None]
        return 0.5 * tf.reduce_sum(tf.square(weighted), axis=-1)


class L1LocalizationLoss:
    """Sum over the code of ``|prediction - target|`` times weights."""

    expects_decoded_boxes = False

    def __call__(self, prediction: tf.Tensor, target: tf.Tensor, weights: tf.Tensor) -> tf.Tensor:
        prediction, target, weights = _tensors(prediction, target, weights)
        per_anchor = tf.reduce_sum(tf.abs(prediction - target), axis=-1)
        return per_anchor * weights


class WeightedIOULocalizationLoss:
    """``1 - IoU`` of decoded predicted and target boxes, times weights."""

    expects_decoded_boxes = True

    def __call__(self, prediction: tf.Tensor, target: tf.Tensor, weights: tf.Tensor) -> tf.Tensor:
        prediction, target, weights = _tensors(prediction, target, weights)
        return (1.0 - box_ops.matched_iou(prediction, target)) * weights


class WeightedGIOULocalizationLoss:
    """``1 - GIoU`` of decoded predicted and target boxes, times weights."""

    expects_decoded_boxes = True

    def __call__(self, prediction: tf.Tensor, target: tf.Tensor, weights: tf.Tensor) -> tf.Tensor:
        prediction, target, weights = _tensors(prediction, target, weights)
        return (1.0 - box_ops.matched_giou(prediction, target)) * weights


ClassificationLoss = (
    WeightedSigmoidClassificationLoss
    | SigmoidFocalClassificationLoss
    | WeightedSoftmaxClassificationLoss
    | BootstrappedSigmoidClassificationLoss
)
LocalizationLoss = (
    WeightedSmoothL1LocalizationLoss
    | WeightedL2LocalizationLoss
    | L1LocalizationLoss
    | WeightedIOULocalizationLoss
    | WeightedGIOULocalizationLoss
)


@dataclass(frozen=True)
class Losses:
    """What a ``Loss`` message builds; the weights scale the normalised losses."""

    classification: ClassificationLoss
    localization: LocalizationLoss
    classification_weight: float
    localization_weight: float
    hard_example_miner: HardExampleMiner | None


def build_classification_loss(config) -> ClassificationLoss:
    """From a ``ClassificationLoss`` message (``anchorwise_output`` is deprecated upstream and
    has no effect: losses are always per anchor)."""
    which = config.WhichOneof("classification_loss")
    where = f"loss.classification_loss.{which}"
    if which == "weighted_sigmoid":
        return WeightedSigmoidClassificationLoss()
    if which == "weighted_sigmoid_focal":
        proto = config.weighted_sigmoid_focal
        return SigmoidFocalClassificationLoss(
            gamma=proto.gamma, alpha=proto.alpha if proto.HasField("alpha") else None
        )
    if which == "weighted_softmax":
        return WeightedSoftmaxClassificationLoss(logit_scale=config.weighted_softmax.logit_scale)
    if which == "bootstrapped_sigmoid":
        proto = config.bootstrapped_sigmoid
        if not proto.HasField("alpha"):
            raise OdflowError(f"{where}.alpha is required")
        return BootstrappedSigmoidClassificationLoss(proto.alpha, proto.hard_bootstrap)
    raise OdflowError(
        f"loss.classification_loss: {which or 'nothing'} is set; odflow supports weighted_sigmoid, "
        "weighted_sigmoid_focal, weighted_softmax and bootstrapped_sigmoid"
    )


def build_localization_loss(config) -> LocalizationLoss:
    """From a ``LocalizationLoss`` message."""
    which = config.WhichOneof("localization_loss")
    if which == "weighted_smooth_l1":
        return WeightedSmoothL1LocalizationLoss(delta=config.weighted_smooth_l1.delta)
    if which == "weighted_l2":
        return WeightedL2LocalizationLoss()
    if which == "l1_localization_loss":
        return L1LocalizationLoss()
    if which == "weighted_iou":
        return WeightedIOULocalizationLoss()
    if which == "weighted_giou":
        return WeightedGIOULocalizationLoss()
    raise OdflowError(
        f"loss.localization_loss: {which or 'nothing'} is set; odflow supports weighted_smooth_l1, "
        "weighted_l2, l1_localization_loss, weighted_iou and weighted_giou"
    )


def build_losses(config) -> Losses:
    """From a ``Loss`` message; options odflow does not implement are errors naming the field."""
    if not config.HasField("classification_loss"):
        raise OdflowError("loss.classification_loss is not set")
    if not config.HasField("localization_loss"):
        raise OdflowError("loss.localization_loss is not set")
    unsupported = {
        "random_example_sampler": config.HasField("random_example_sampler"),
        "equalization_loss": config.HasField("equalization_loss")
        and config.equalization_loss.weight != 0.0,
        "expected_loss_weights": config.expected_loss_weights != 0,
        "min_num_negative_samples": config.HasField("min_num_negative_samples"),
        "desired_negative_sampling_ratio": config.HasField("desired_negative_sampling_ratio"),
    }
    for field, is_set in unsupported.items():
        if is_set:
            raise OdflowError(
                f"loss.{field} is set but odflow does not implement it; remove it "
                "(use hard_example_miner to balance negatives)"
            )
    classification = build_classification_loss(config.classification_loss)
    miner = None
    if config.HasField("hard_example_miner"):
        if isinstance(classification, SigmoidFocalClassificationLoss):
            raise OdflowError(
                "loss.hard_example_miner must not be combined with weighted_sigmoid_focal "
                "(focal loss already down-weights easy negatives); remove one of them"
            )
        miner = build_hard_example_miner(
            config.hard_example_miner,
            classification_weight=config.classification_weight,
            localization_weight=config.localization_weight,
        )
    return Losses(
        classification=classification,
        localization=build_localization_loss(config.localization_loss),
        classification_weight=config.classification_weight,
        localization_weight=config.localization_weight,
        hard_example_miner=miner,
    )
