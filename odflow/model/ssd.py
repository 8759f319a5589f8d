"""``SSDMetaArch``: the single-shot detector around a feature extractor and a box predictor.

The pieces (anchors, box coder, target assignment, losses, hard example miner, NMS) come in
ready-made from ``odflow.model.builder``; this module only wires them the way the TF Object
Detection API's SSD did, so losses and detections mean the same numbers as there.

All methods are traceable by ``tf.function`` (``training`` must be a Python bool), variables
are created in ``__init__`` (so build the model under a distribution strategy's scope), and
``named_variables()`` gives the TF1 checkpoint names.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import tensorflow as tf

from odflow.model.box_predictor import ConvolutionalBoxPredictor
from odflow.model.mobilenet_v1 import SSDMobileNetV1FeatureExtractor

# TF1 resized with align_corners=False and without half-pixel centres; the v1 API keeps that.
_RESIZE_METHODS = {
    "BILINEAR": tf.compat.v1.image.ResizeMethod.BILINEAR,
    "NEAREST_NEIGHBOR": tf.compat.v1.image.ResizeMethod.NEAREST_NEIGHBOR,
    "BICUBIC": tf.compat.v1.image.ResizeMethod.BICUBIC,
    "AREA": tf.compat.v1.image.ResizeMethod.AREA,
}


# Every branch in this package is on Python values fixed at trace time, so AutoGraph has
# nothing to convert; skipping it takes seconds off each trace of a train step.
_plain_python = tf.autograph.experimental.do_not_convert


@dataclass(frozen=True)
class LossOptions:
    classification_weight: float = 1.0
    localization_weight: float = 1.0
    normalize_loss_by_num_matches: bool = True
    normalize_loc_loss_by_codesize: bool = False


class SSDMetaArch(tf.Module):
    """See ``docs/architecture.md`` ("The model") for the contract of each method.

    ``assign_targets(anchors, gt_boxes, gt_classes, num_boxes) -> dict`` (cls_targets,
    cls_weights, reg_targets, reg_weights, match), ``classification_loss`` and
    ``localization_loss`` ``(prediction, target, weights) -> per-anchor losses``,
    ``hard_example_miner`` (or None), ``score_converter(logits) -> scores`` and
    ``non_max_suppression(boxes [B,A,4], scores [B,A,C], additional_fields=...) -> dict``
    (``odflow.model.postprocess``; classes 0-based without background)
    are supplied by the builder.
    """

    def __init__(self, *, num_classes: int, image_size: tuple[int, int], resize_method: str,
                 feature_extractor: SSDMobileNetV1FeatureExtractor,
                 box_predictor: ConvolutionalBoxPredictor, anchor_generator: Any, box_coder: Any,
                 assign_targets: Callable[..., dict], classification_loss: Callable,
                 localization_loss: Callable, hard_example_miner: Any | None,
                 loss_options: LossOptions, score_converter: Callable[[tf.Tensor], tf.Tensor],
                 non_max_suppression: Callable[..., dict], is_training: bool,
                 freeze_batchnorm: bool = False, feature_extractor_type: str = "",
                 image_resizer: Callable[[tf.Tensor], tuple[tf.Tensor, tf.Tensor]] | None = None,
                 add_background_class: bool = True) -> None:
        super().__init__(name=None)
        # The config's feature_extractor.type: TF2 checkpoints are read by key with the
        # layout registered for it (odflow.model.tf2_checkpoint.key_mapping).
        self.feature_extractor_type = feature_extractor_type
        # keep_aspect_ratio_resizer (odflow.model.image_resizer): images -> (resized and
        # padded, true shapes); None resizes to image_size (fixed_shape_resizer).
        self.image_resizer = image_resizer
        # False (EfficientDet): the class logits have no background column, and the targets'
        # background column (all zeros with encode_background_as_zeros) is dropped.
        self.add_background_class = add_background_class
        self.num_classes = num_classes
        self.image_size = (int(image_size[0]), int(image_size[1]))
        self.resize_method = resize_method
        self.feature_extractor = feature_extractor
        self.box_predictor = box_predictor
        self.anchor_generator = anchor_generator
        self.box_coder = box_coder
        self.assign_targets = assign_targets
        self.classification_loss = classification_loss
        self.localization_loss = localization_loss
        self.hard_example_miner = hard_example_miner
        self.loss_options = loss_options
        self.score_converter = score_converter
        self.non_max_suppression = non_max_suppression
        self.is_training = is_training
        self.freeze_batchnorm = freeze_batchnorm
        self._anchors = _AnchorCache(anchor_generator, self.image_size)
        self._named = {**feature_extractor.named_variables(), **box_predictor.named_variables()}
        self._units = feature_extractor.units() + box_predictor.units()
        # Anchors for the configured size now, eagerly: later calls inside tf.function reuse
        # them as a constant instead of rebuilding the grid in every traced step.
        self.anchors_for(feature_extractor.feature_map_shapes(*self.image_size))

    # -- variables -------------------------------------------------------------------------

    def named_variables(self) -> dict[str, tf.Variable]:
        """TF1 checkpoint name -> variable, sorted by name."""
        return dict(sorted(self._named.items()))

    @property
    def variables(self) -> tuple[tf.Variable, ...]:
        return tuple(self.named_variables().values())

    @property
    def trainable_variables(self) -> tuple[tf.Variable, ...]:
        return tuple(v for v in self.named_variables().values() if v.trainable)

    @_plain_python
    def regularization_loss(self) -> tf.Tensor:
        """Sum of the conv weights' regularisers (TF1's ``Loss/regularization_loss``)."""
        terms = [t for t in (unit.regularization() for unit in self._units) if t is not None]
        if not terms:
            return tf.constant(0.0)
        return tf.add_n(terms)

    # -- inference -------------------------------------------------------------------------

    @_plain_python
    def preprocess(self, images: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """float ``[B,H,W,3]`` in [0, 255] -> (``[B,h,w,3]`` in [-1, 1], or as the feature
        extractor's ``preprocess`` says, true shapes ``[B,3]``).

        Resizes to the fixed_shape_resizer size (a no-op when the input pipeline already did).
        """
        images = tf.convert_to_tensor(images)
        if images.dtype != tf.float32:
            images = tf.cast(images, tf.float32)
        if self.image_resizer is not None:
            resized, true_shapes = self.image_resizer(images)
            preprocess = getattr(self.feature_extractor, "preprocess", None)
            return (preprocess(resized) if preprocess else resized * (2.0 / 255.0) - 1.0,
                    true_shapes)
        height, width = self.image_size
        if tuple(images.shape[1:3]) != (height, width):
            images = tf.compat.v1.image.resize(images, [height, width],
                                               method=_RESIZE_METHODS[self.resize_method],
                                               align_corners=False)
        # A feature extractor may bring its own input scaling (ResNet: channel means).
        preprocess = getattr(self.feature_extractor, "preprocess", None)
        preprocessed = preprocess(images) if preprocess else images * (2.0 / 255.0) - 1.0
        batch = tf.shape(images)[0]
        true_shapes = tf.tile(tf.constant([[height, width, 3]], tf.int32), [batch, 1])
        return preprocessed, true_shapes

    def anchors_for(self, shapes: list[tuple[int, int]]) -> tf.Tensor:
        """Anchors ``[A, 4]`` for these feature-map sizes (a constant: they never change)."""
        return self._anchors.get(shapes)

    @_plain_python
    def predict(self, preprocessed: tf.Tensor, training: bool | None = None) -> dict:
        """Box encodings ``[B,A,4]``, class logits ``[B,A,C+1]``, anchors ``[A,4]``, feature
        maps.  ``training`` (default: ``is_training`` of the build) turns on batch statistics
        and moving-average updates (unless ``freeze_batchnorm``) and dropout."""
        if training is None:
            training = self.is_training
        bn_training = bool(training) and not self.freeze_batchnorm
        if getattr(self.feature_extractor, "uses_training_flag", False):
            # EfficientNet's drop-connect follows training even with frozen batch norm.
            feature_maps = self.feature_extractor(preprocessed, bn_training,
                                                  training=bool(training))
        else:
            feature_maps = self.feature_extractor(preprocessed, bn_training)
        box_encodings, class_predictions = self.box_predictor(
            feature_maps, training=bool(training), batch_norm_training=bn_training)
        shapes = [tuple(f.shape[1:3]) for f in feature_maps]
        if any(d is None for shape in shapes for d in shape):
            shapes = self.feature_extractor.feature_map_shapes(*self.image_size)
        return {
            "preprocessed_inputs": preprocessed,
            "feature_maps": feature_maps,
            "box_encodings": box_encodings,
            "class_predictions_with_background": class_predictions,
            "anchors": self.anchors_for([(int(h), int(w)) for h, w in shapes]),
        }

    @_plain_python
    def decode(self, box_encodings: tf.Tensor, anchors: tf.Tensor) -> tf.Tensor:
        """``[B,A,4]`` codes -> ``[B,A,4]`` normalised boxes (the coder broadcasts anchors)."""
        return self.box_coder.decode(box_encodings, anchors)

    @_plain_python
    def postprocess(self, prediction_dict: Mapping, true_image_shapes: tf.Tensor) -> dict:
        """Decoded, score-converted, NMS'd detections (the API's output names)."""
        boxes = self.decode(prediction_dict["box_encodings"], prediction_dict["anchors"])
        scores_with_background = self.score_converter(
            prediction_dict["class_predictions_with_background"])
        scores = (scores_with_background[..., 1:] if self.add_background_class
                  else scores_with_background)
        extra = {}
        if self.image_resizer is not None:
            # The padded part of the input is not image: clip to the true image's window
            # (fixed_shape_resizer: the whole input is image, window [0, 0, 1, 1]).
            padded = tf.cast(tf.shape(prediction_dict["preprocessed_inputs"])[1:3], tf.float32)
            true = tf.cast(true_image_shapes[:, :2], tf.float32)
            zeros = tf.zeros_like(true[:, 0])
            extra["clip_window"] = tf.stack(
                [zeros, zeros, true[:, 0] / padded[0], true[:, 1] / padded[1]], axis=1)
        detections = dict(self.non_max_suppression(
            boxes, scores,
            additional_fields={"detection_multiclass_scores": scores_with_background}, **extra))
        # The suppressor's classes index the score columns without background: label id - 1.
        valid = tf.range(tf.shape(detections["detection_scores"])[1])[None, :] < tf.cast(
            detections["num_detections"], tf.int32)[:, None]
        detections["detection_classes"] = tf.where(
            valid, detections["detection_classes"] + 1.0, 0.0)
        detections["raw_detection_boxes"] = boxes
        detections["raw_detection_scores"] = scores_with_background
        return detections

    # -- training --------------------------------------------------------------------------

    @_plain_python
    def loss(self, prediction_dict: Mapping, groundtruth_boxes: tf.Tensor | Mapping,
             groundtruth_classes: tf.Tensor | None = None,
             num_groundtruth_boxes: tf.Tensor | None = None, *,
             with_summaries: bool = False) -> dict[str, tf.Tensor]:
        """``Loss/classification_loss`` and ``Loss/localization_loss`` (scalars).

        Groundtruth: boxes ``[B,N,4]``, classes ``[B,N]`` (1-based, 0 = padding), counts
        ``[B]``, or one batch dict with those keys (``groundtruth_boxes``, ...).  With
        ``with_summaries`` the dict also holds ``Loss/HardExampleMiner/NumPositives`` and
        ``.../NumNegatives`` (not losses: do not add them to the total).
        """
        if isinstance(groundtruth_boxes, Mapping):
            batch = groundtruth_boxes
            groundtruth_boxes = batch["groundtruth_boxes"]
            groundtruth_classes = batch["groundtruth_classes"]
            num_groundtruth_boxes = batch["num_groundtruth_boxes"]
        opts = self.loss_options
        anchors = prediction_dict["anchors"]
        box_encodings = prediction_dict["box_encodings"]
        class_predictions = prediction_dict["class_predictions_with_background"]
        targets = self.assign_targets(anchors, groundtruth_boxes, groundtruth_classes,
                                      num_groundtruth_boxes)
        if getattr(self.localization_loss, "expects_decoded_boxes", False):
            # IoU losses compare corner boxes, not codes.
            location_losses = self.localization_loss(
                self.decode(box_encodings, anchors), self.decode(targets["reg_targets"], anchors),
                targets["reg_weights"])
        else:
            location_losses = self.localization_loss(
                box_encodings, targets["reg_targets"], targets["reg_weights"])
        location_losses = _per_anchor(location_losses)
        cls_targets = targets["cls_targets"]
        if not self.add_background_class:
            cls_targets = cls_targets[..., 1:]
        cls_losses = _per_anchor(self.classification_loss(
            class_predictions, cls_targets, targets["cls_weights"]))
        summaries: dict[str, tf.Tensor] = {}
        if self.hard_example_miner is not None:
            decoded = self.decode(box_encodings, anchors)
            localization_loss, classification_loss = self.hard_example_miner(
                location_losses, cls_losses, decoded, targets["match"])
            summaries = _miner_summaries(self.hard_example_miner)
        else:
            localization_loss = tf.reduce_sum(location_losses)
            classification_loss = tf.reduce_sum(cls_losses)
        normalizer = tf.constant(1.0)
        if opts.normalize_loss_by_num_matches:
            normalizer = tf.maximum(tf.reduce_sum(tf.cast(targets["reg_weights"], tf.float32)),
                                    1.0)
        loc_normalizer = normalizer
        if opts.normalize_loc_loss_by_codesize:
            loc_normalizer = normalizer * float(self.box_predictor.options.box_code_size)
        losses = {
            "Loss/localization_loss": opts.localization_weight / loc_normalizer
            * localization_loss,
            "Loss/classification_loss": opts.classification_weight / normalizer
            * classification_loss,
        }
        if with_summaries:
            losses.update(summaries)
        return losses


class _AnchorCache:
    """Anchors per feature-map layout, computed eagerly once.

    A plain object on purpose: a dict attribute of a ``tf.Module`` would be tracked for
    object-based checkpoints, which refuse non-string keys.
    """

    def __init__(self, generator: Any, image_size: tuple[int, int]) -> None:
        self.generator = generator
        self.image_size = image_size
        self.cache: dict[tuple, np.ndarray] = {}

    def get(self, shapes: list[tuple[int, int]]) -> tf.Tensor:
        key = tuple(shapes)
        if key not in self.cache:
            with tf.init_scope():
                anchors = self.generator.generate(list(shapes), *self.image_size)
                self.cache[key] = np.asarray(anchors, np.float32)
        return tf.constant(self.cache[key])


def _per_anchor(losses: tf.Tensor) -> tf.Tensor:
    """Losses come per anchor ``[B,A]`` or per anchor and class/coordinate ``[B,A,K]``."""
    if losses.shape.rank == 3:
        return tf.reduce_sum(losses, axis=2)
    return losses


def _miner_summaries(miner: Any) -> dict[str, tf.Tensor]:
    """The miner's ``Loss/HardExampleMiner/Num{Positives,Negatives}`` of the call just made."""
    return {key: tf.cast(value, tf.float32) for key, value in miner.summary().items()}
