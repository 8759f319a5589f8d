"""The config side of EfficientDet (``ssd_efficientnet-b{0..7}_bifpn_keras``): the checks and
the pieces ``odflow.model.builder`` asks for (feature extractor, box predictor, resizer).

Every option odflow does not implement for these models is an ``OdflowError`` naming the
field, as in the builder; the refusals the TF2 API itself makes for this extractor
(``depth_multiplier`` other than 1, ``use_explicit_padding``, ``use_depthwise``,
``override_base_feature_extractor_hyperparams``) are kept.
"""

from __future__ import annotations

from odflow.errors import OdflowError
from odflow.model import hyperparams as hp
from odflow.model.bifpn import COMBINE_METHODS
from odflow.model.efficientdet import (
    MIN_IMAGE_DIMENSION,
    TYPES,
    EfficientDetFeatureExtractor,
)
from odflow.model.image_resizer import KeepAspectRatioResizer
from odflow.model.keras_box_predictor import (
    KerasWeightSharedBoxPredictor,
    KerasWeightSharedOptions,
)
from odflow.protos import pipeline_pb2

__all__ = ["TYPES", "box_predictor", "feature_extractor", "image_resizer",
           "keep_aspect_ratio_size"]

_SSD = "model.ssd"
_FE = f"{_SSD}.feature_extractor"
_RESIZER = f"{_SSD}.image_resizer.keep_aspect_ratio_resizer"
_PREDICTOR = f"{_SSD}.box_predictor.weight_shared_convolutional_box_predictor"


def _refuse(message: str) -> None:
    raise OdflowError(message)


def keep_aspect_ratio_size(config: pipeline_pb2.Ssd) -> tuple[tuple[int, int], str]:
    """The model's input size for a ``keep_aspect_ratio_resizer`` (max x max: padded) and its
    resize method, checked."""
    if config.feature_extractor.type not in TYPES:
        _refuse(f"{_RESIZER} is supported only with the EfficientDet feature extractors "
                f"(ssd_efficientnet-b0..b7_bifpn_keras), not {config.feature_extractor.type!r}; "
                "use fixed_shape_resizer")
    resizer = config.image_resizer.keep_aspect_ratio_resizer
    if not resizer.pad_to_max_dimension:
        _refuse(f"{_RESIZER}.pad_to_max_dimension must be true (odflow's SSD needs one input "
                "size); set it as the EfficientDet configs do")
    if resizer.convert_to_grayscale:
        _refuse(f"{_RESIZER}.convert_to_grayscale is not supported (the EfficientNet input "
                "has 3 channels)")
    if resizer.per_channel_pad_value and len(resizer.per_channel_pad_value) != 3:
        _refuse(f"{_RESIZER}.per_channel_pad_value needs 3 values (one per channel)")
    if not 0 < resizer.min_dimension <= resizer.max_dimension:
        _refuse(f"{_RESIZER}: min_dimension ({resizer.min_dimension}) must be positive and at "
                f"most max_dimension ({resizer.max_dimension})")
    if resizer.max_dimension < MIN_IMAGE_DIMENSION:
        _refuse(f"{_RESIZER}.max_dimension must be at least {MIN_IMAGE_DIMENSION} for "
                f"{config.feature_extractor.type} (got {resizer.max_dimension})")
    method = pipeline_pb2.ResizeType.Name(resizer.resize_method)
    return (resizer.max_dimension, resizer.max_dimension), method


def image_resizer(config: pipeline_pb2.Ssd) -> KeepAspectRatioResizer | None:
    """The keep-aspect-ratio resizer, or None for ``fixed_shape_resizer``."""
    if config.image_resizer.WhichOneof("image_resizer_oneof") != "keep_aspect_ratio_resizer":
        return None
    (size, _), method = keep_aspect_ratio_size(config)
    resizer = config.image_resizer.keep_aspect_ratio_resizer
    return KeepAspectRatioResizer(resizer.min_dimension, size, method, True,
                                  tuple(resizer.per_channel_pad_value) or (0.0, 0.0, 0.0))


def _hyperparams(proto, field: str) -> hp.ConvHyperparams:
    params = hp.from_proto(proto, field)
    if params.regularizer not in ("l2", "none") and params.regularizer_weight:
        _refuse(f"{field}.regularizer: odflow's Keras-style layers support l2_regularizer only")
    return params


def feature_extractor(config: pipeline_pb2.Ssd) -> EfficientDetFeatureExtractor:
    fe = config.feature_extractor
    for field, is_set in (("depth_multiplier", fe.depth_multiplier != 1.0),
                          ("use_explicit_padding", fe.use_explicit_padding),
                          ("use_depthwise", fe.use_depthwise),
                          ("override_base_feature_extractor_hyperparams",
                           fe.override_base_feature_extractor_hyperparams)):
        if is_set:
            _refuse(f"{_FE}.{field} is not supported by {fe.type} (the TF2 API refuses it "
                    "too); remove it")
    if not fe.HasField("bifpn"):
        _refuse(f"{_FE}.bifpn is required for {fe.type} (min_level, max_level, "
                "num_iterations, num_filters)")
    bifpn = fe.bifpn
    if not 1 <= bifpn.min_level <= 5 or bifpn.max_level < bifpn.min_level:
        _refuse(f"{_FE}.bifpn: min_level must be 1..5 and max_level >= min_level (got "
                f"{bifpn.min_level}..{bifpn.max_level})")
    if bifpn.num_iterations < 1 or bifpn.num_filters < 1:
        _refuse(f"{_FE}.bifpn.num_iterations and num_filters must be set and positive (got "
                f"{bifpn.num_iterations}, {bifpn.num_filters}); the zoo's D0 uses 3 and 64")
    if bifpn.combine_method not in COMBINE_METHODS:
        _refuse(f"{_FE}.bifpn.combine_method {bifpn.combine_method!r} is not one of "
                + ", ".join(COMBINE_METHODS))
    (height, width), _ = _input_size(config)
    step = 2 ** bifpn.max_level
    m = fe.pad_to_multiple
    padded = [-(-n // m) * m for n in (height, width)]
    if any(n % step for n in padded):
        _refuse(f"{_SSD}.image_resizer: {fe.type} with bifpn levels up to {bifpn.max_level} "
                f"needs an input size divisible by {step} (the BiFPN adds upsampled maps to "
                f"the next level's), got {height}x{width}; use e.g. "
                f"{-(-height // step) * step}")
    if min(height, width) < MIN_IMAGE_DIMENSION:
        _refuse(f"{_SSD}.image_resizer: {fe.type} needs inputs of at least "
                f"{MIN_IMAGE_DIMENSION} pixels (got {height}x{width})")
    params = _hyperparams(fe.conv_hyperparams, f"{_FE}.conv_hyperparams")
    return EfficientDetFeatureExtractor(
        TYPES[fe.type], bifpn.min_level, bifpn.max_level, bifpn.num_iterations,
        max(bifpn.num_filters, fe.min_depth), bifpn.combine_method, params, fe.pad_to_multiple)


def _input_size(config: pipeline_pb2.Ssd) -> tuple[tuple[int, int], str]:
    which = config.image_resizer.WhichOneof("image_resizer_oneof")
    if which == "keep_aspect_ratio_resizer":
        return keep_aspect_ratio_size(config)
    resizer = config.image_resizer.fixed_shape_resizer
    return (resizer.height, resizer.width), pipeline_pb2.ResizeType.Name(resizer.resize_method)


def box_predictor(config: pipeline_pb2.Ssd, depths: list[int], anchors_per_location: list[int]
                  ) -> KerasWeightSharedBoxPredictor:
    """The TF2 API's Keras weight-shared predictor (separable with ``use_depthwise``)."""
    if config.box_predictor.WhichOneof("box_predictor_oneof") != \
            "weight_shared_convolutional_box_predictor":
        _refuse(f"{_SSD}.box_predictor: {config.feature_extractor.type} needs "
                "weight_shared_convolutional_box_predictor (as the EfficientDet configs)")
    proto = config.box_predictor.weight_shared_convolutional_box_predictor
    if not proto.HasField("conv_hyperparams"):
        _refuse(f"{_PREDICTOR}.conv_hyperparams is required")
    for name, is_set in (("apply_conv_hyperparams_to_heads", proto.apply_conv_hyperparams_to_heads),
                         ("apply_conv_hyperparams_pointwise",
                          proto.apply_conv_hyperparams_pointwise),
                         ("share_prediction_tower", proto.share_prediction_tower),
                         ("score_converter", proto.score_converter != proto.IDENTITY)):
        if is_set:
            _refuse(f"{_PREDICTOR}.{name} is set but odflow does not implement it for "
                    f"{config.feature_extractor.type}; remove it")
    if proto.box_code_size != 4:
        _refuse(f"{_PREDICTOR}.box_code_size must be 4 (faster_rcnn_box_coder)")
    if proto.kernel_size < 1 or proto.num_layers_before_predictor < 0:
        _refuse(f"{_PREDICTOR}: kernel_size must be >= 1 and num_layers_before_predictor >= 0")
    if proto.num_layers_before_predictor > 0 and proto.depth <= 0:
        _refuse(f"{_PREDICTOR}.depth must be positive with num_layers_before_predictor > 0")
    if proto.use_dropout and not 0.0 < proto.dropout_keep_probability <= 1.0:
        _refuse(f"{_PREDICTOR}.dropout_keep_probability must be in (0, 1]")
    if len(set(anchors_per_location)) != 1:
        _refuse(f"{_PREDICTOR} needs the same number of anchors on every level; "
                f"{_SSD}.anchor_generator gives {anchors_per_location}")
    clip = None
    if proto.HasField("box_encodings_clip_range"):
        clip = (proto.box_encodings_clip_range.min, proto.box_encodings_clip_range.max)
        if clip[0] >= clip[1]:
            _refuse(f"{_PREDICTOR}.box_encodings_clip_range: min must be below max")
    slots = config.num_classes + (1 if config.add_background_class else 0)
    options = KerasWeightSharedOptions(
        num_class_slots=slots,
        depth=proto.depth or depths[0],
        num_layers_before_predictor=proto.num_layers_before_predictor,
        kernel_size=proto.kernel_size,
        box_code_size=proto.box_code_size,
        class_prediction_bias_init=proto.class_prediction_bias_init,
        use_depthwise=proto.use_depthwise,
        use_dropout=proto.use_dropout,
        dropout_keep_probability=proto.dropout_keep_probability,
        box_encodings_clip_range=clip,
    )
    return KerasWeightSharedBoxPredictor(
        options, depths, anchors_per_location,
        _hyperparams(proto.conv_hyperparams, f"{_PREDICTOR}.conv_hyperparams"))
