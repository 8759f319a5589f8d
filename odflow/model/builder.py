"""``build(model_config, is_training) -> SSDMetaArch`` from a ``DetectionModel`` message.

Every option the config sets that odflow does not implement is an ``OdflowError`` naming the
field: a detector silently trained without an option the user asked for is worse than no
detector.  Options that only chose a TF1 implementation detail with no effect on results
(``inplace_batchnorm_update``, ``hyperparams.regularize_depthwise``: slim regularised
depthwise weights either way) are accepted.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable

from odflow.errors import OdflowError
from odflow.model import (
    efficientdet_builder,
    mobilenet_v2,
    mobilenet_v3,
    postprocess,
    target_assigner,
    tf2_layouts,  # noqa: F401  (registers the TF2 checkpoint layouts)
)
from odflow.model import hyperparams as hp
from odflow.model.anchors import build_anchor_generator
from odflow.model.box_coder import build_box_coder
from odflow.model.box_predictor import BoxPredictorOptions, ConvolutionalBoxPredictor
from odflow.model.feature_maps import ExtractorOptions
from odflow.model.fpn import FpnFeatureExtractor, FpnLevels
from odflow.model.inception_v2 import SSDInceptionV2FeatureExtractor
from odflow.model.losses import build_losses
from odflow.model.mobilenet_v1 import SSDMobileNetV1FeatureExtractor
from odflow.model.mobilenet_v1_fpn import ssd_mobilenet_v1_fpn
from odflow.model.mobilenet_v2_fpn import ssd_mobilenet_v2_fpn
from odflow.model.ppn import SSDMobileNetV1PpnFeatureExtractor
from odflow.model.resnet_v1 import resnet_arg_scope_defaults
from odflow.model.resnet_v1_fpn import ssd_resnet50_v1_fpn
from odflow.model.resnet_v1_keras import ssd_resnet_v1_fpn_keras
from odflow.model.ssd import LossOptions, SSDMetaArch
from odflow.model.weight_shared_box_predictor import (
    WeightSharedConvolutionalBoxPredictor,
    WeightSharedOptions,
)
from odflow.protos import pipeline_pb2

_SSD = "model.ssd"


def build_pipeline(pipeline_config: pipeline_pb2.TrainEvalPipelineConfig,
                   is_training: bool, *, clip_before_nms: bool = False) -> SSDMetaArch:
    """``build(pipeline_config.model)`` after refusing pipeline-level options that change the
    network: ``graph_rewriter { quantization }`` (the zoo's *_quantized_* configs) asked for
    quantization-aware training with fake-quant ops, which odflow does not do; training the
    float model instead would give a different detector than the config describes.
    ``clip_before_nms``: see :func:`build`."""
    if pipeline_config.HasField("graph_rewriter"):
        which = ("graph_rewriter.quantization"
                 if pipeline_config.graph_rewriter.HasField("quantization") else "graph_rewriter")
        _refuse(f"{which} is set but odflow does not implement quantization-aware training "
                "(fake-quant min/max variables); remove the graph_rewriter block to train the "
                "float model (the zoo's *_quantized_* checkpoints still restore their float "
                "weights with fine_tune_checkpoint_type: detection)")
    return build(pipeline_config.model, is_training, clip_before_nms=clip_before_nms)


def build(model_config: pipeline_pb2.DetectionModel, is_training: bool, *,
          clip_before_nms: bool = False) -> SSDMetaArch:
    """Build the detector (variables included: call it under a strategy's scope).

    ``clip_before_nms`` picks the post-processing's clipping order, which the pipeline config
    cannot say (``odflow.model.postprocess``): False (default) suppresses, then clips, as the
    API's final TF1 and TF2 releases; True clips first, as the zoo's 2018 graphs.
    """
    which = model_config.WhichOneof("model")
    if which != "ssd":
        raise OdflowError(f"model: {which or 'no meta-architecture'} is set; odflow builds SSD "
                          "detectors only (model.ssd)")
    config = model_config.ssd
    _check_ssd_options(config)
    num_classes = config.num_classes
    image_size, resize_method = _image_size(config)
    image_resizer = efficientdet_builder.image_resizer(config)
    # The cheap, config-only pieces first: their errors come before any variable is made.
    anchor_generator = build_anchor_generator(config.anchor_generator)
    box_coder = build_box_coder(config.box_coder)
    assign = functools.partial(
        target_assigner.batch_assign_targets, num_classes=num_classes,
        target_assigner=target_assigner.build_target_assigner(config),
        unmatched_class_label=target_assigner.unmatched_class_label(
            num_classes, config.encode_background_as_zeros))
    losses = build_losses(config.loss)
    non_max_suppression, score_converter = postprocess.build_postprocessing(
        config.post_processing, clip_before_nms=clip_before_nms)
    anchors_per_location = anchor_generator.num_anchors_per_location()
    feature_extractor = FEATURE_EXTRACTORS[config.feature_extractor.type](config)
    num_maps = len(feature_extractor.feature_depths)
    if len(anchors_per_location) != num_maps:
        raise OdflowError(
            f"{_SSD}.anchor_generator describes {len(anchors_per_location)} layers but the "
            f"feature extractor gives {num_maps} feature maps "
            f"({_SSD}.feature_extractor.num_layers, or fpn levels); make them equal")
    if config.feature_extractor.type in efficientdet_builder.TYPES:
        box_predictor = efficientdet_builder.box_predictor(config, feature_extractor.feature_depths,
                                                           anchors_per_location)
    else:
        box_predictor = _box_predictor(config, feature_extractor.feature_depths,
                                       anchors_per_location)
    return SSDMetaArch(
        num_classes=num_classes,
        image_size=image_size,
        resize_method=resize_method,
        feature_extractor=feature_extractor,
        box_predictor=box_predictor,
        anchor_generator=anchor_generator,
        box_coder=box_coder,
        assign_targets=assign,
        classification_loss=losses.classification,
        localization_loss=losses.localization,
        hard_example_miner=losses.hard_example_miner,
        loss_options=LossOptions(
            classification_weight=config.loss.classification_weight,
            localization_weight=config.loss.localization_weight,
            normalize_loss_by_num_matches=config.normalize_loss_by_num_matches,
            normalize_loc_loss_by_codesize=config.normalize_loc_loss_by_codesize),
        score_converter=score_converter,
        non_max_suppression=non_max_suppression,
        is_training=is_training,
        freeze_batchnorm=config.freeze_batchnorm,
        feature_extractor_type=config.feature_extractor.type,
        image_resizer=image_resizer,
        add_background_class=config.add_background_class,
    )


def _refuse(message: str) -> None:
    raise OdflowError(message)


def _check_ssd_options(config: pipeline_pb2.Ssd) -> None:
    if config.num_classes <= 0:
        _refuse(f"{_SSD}.num_classes must be a positive number of classes "
                f"(got {config.num_classes})")
    for field in ("image_resizer", "feature_extractor", "box_coder", "matcher",
                  "similarity_calculator", "box_predictor", "anchor_generator",
                  "post_processing", "loss"):
        if not config.HasField(field):
            _refuse(f"{_SSD}.{field} is required")
    unsupported = [
        ("mask_head_config", config.HasField("mask_head_config"), "instance masks"),
        ("add_background_class", not config.add_background_class
         and config.feature_extractor.type not in efficientdet_builder.TYPES,
         "add_background_class: false only with the EfficientDet feature extractors"),
        ("explicit_background_class", config.explicit_background_class,
         "only explicit_background_class: false"),
        ("use_confidences_as_targets", config.use_confidences_as_targets,
         "only use_confidences_as_targets: false"),
        ("implicit_example_weight", config.implicit_example_weight != 1.0,
         "only implicit_example_weight: 1.0"),
        ("return_raw_detections_during_predict", config.return_raw_detections_during_predict,
         "postprocess returns raw_detection_boxes/raw_detection_scores"),
    ]
    loss = config.loss
    unsupported += [
        ("loss.random_example_sampler", loss.HasField("random_example_sampler"),
         "use hard_example_miner"),
        ("loss.equalization_loss", loss.equalization_loss.weight != 0.0,
         "equalization loss"),
        ("loss.expected_loss_weights", loss.expected_loss_weights != pipeline_pb2.Loss.NONE,
         "only NONE"),
    ]
    fe = config.feature_extractor
    unsupported += [
        ("feature_extractor.fpn", fe.HasField("fpn") and fe.type not in _FPN_TYPES,
         f"feature pyramids other than {', '.join(_FPN_TYPES)}"),
        ("feature_extractor.bifpn",
         fe.HasField("bifpn") and fe.type not in efficientdet_builder.TYPES,
         "BiFPN outside the ssd_efficientnet-b*_bifpn_keras feature extractors"),
        ("feature_extractor.replace_preprocessor_with_placeholder",
         fe.replace_preprocessor_with_placeholder, "only false"),
        ("feature_extractor.spaghettinet_arch_name", bool(fe.spaghettinet_arch_name),
         "SpaghettiNet"),
        ("feature_extractor.use_hardswish", fe.use_hardswish, "only false"),
    ]
    for field, is_set, what in unsupported:
        if is_set:
            _refuse(f"{_SSD}.{field} is set but odflow does not implement it ({what}); "
                    "remove it from the config")
    if fe.type not in FEATURE_EXTRACTORS:
        _refuse(f"{_SSD}.feature_extractor.type {fe.type!r} is not supported; odflow supports "
                + ", ".join(repr(t) for t in FEATURE_EXTRACTORS))
    if fe.depth_multiplier <= 0:
        _refuse(f"{_SSD}.feature_extractor.depth_multiplier must be positive")
    if not 1 <= fe.num_layers <= 6:
        _refuse(f"{_SSD}.feature_extractor.num_layers must be between 1 and 6 for "
                f"{fe.type} (got {fe.num_layers})")
    if fe.type.startswith("ssd_mobilenet_v3") and fe.num_layers != 6:
        _refuse(f"{_SSD}.feature_extractor.num_layers: {fe.type} always has 6 feature maps "
                f"(got {fe.num_layers}); remove the field")
    if fe.pad_to_multiple < 1:
        _refuse(f"{_SSD}.feature_extractor.pad_to_multiple must be >= 1")
    if not fe.HasField("conv_hyperparams"):
        _refuse(f"{_SSD}.feature_extractor.conv_hyperparams is required")


def _image_size(config: pipeline_pb2.Ssd) -> tuple[tuple[int, int], str]:
    which = config.image_resizer.WhichOneof("image_resizer_oneof")
    if which == "keep_aspect_ratio_resizer":
        return efficientdet_builder.keep_aspect_ratio_size(config)
    if which != "fixed_shape_resizer":
        _refuse(f"{_SSD}.image_resizer.{which or '(none)'} is not supported; odflow's SSD "
                "uses fixed_shape_resizer { height: ... width: ... }")
    resizer = config.image_resizer.fixed_shape_resizer
    if resizer.convert_to_grayscale:
        _refuse(f"{_SSD}.image_resizer.fixed_shape_resizer.convert_to_grayscale is not "
                "supported (the MobileNet input has 3 channels)")
    if resizer.height < 33 or resizer.width < 33:
        _refuse(f"{_SSD}.image_resizer.fixed_shape_resizer: height and width must be at least "
                f"33 pixels (got {resizer.height}x{resizer.width})")
    method = pipeline_pb2.ResizeType.Name(resizer.resize_method)
    return (resizer.height, resizer.width), method


def _mobilenet_v1_hyperparams(fe: pipeline_pb2.SsdFeatureExtractor
                              ) -> tuple[hp.ConvHyperparams, hp.ConvHyperparams]:
    """(base, extra): TF1 gave the MobileNet base its own arg scope unless told to
    override it."""
    extra = hp.from_proto(fe.conv_hyperparams, f"{_SSD}.feature_extractor.conv_hyperparams")
    base = extra if fe.override_base_feature_extractor_hyperparams else hp.mobilenet_v1_defaults()
    return base, extra


def _ssd_mobilenet_v1(config: pipeline_pb2.Ssd) -> SSDMobileNetV1FeatureExtractor:
    fe = config.feature_extractor
    return SSDMobileNetV1FeatureExtractor(ExtractorOptions.from_proto(fe),
                                          *_mobilenet_v1_hyperparams(fe))


def _ssd_mobilenet_v1_ppn(config: pipeline_pb2.Ssd) -> SSDMobileNetV1PpnFeatureExtractor:
    fe = config.feature_extractor
    return SSDMobileNetV1PpnFeatureExtractor(ExtractorOptions.from_proto(fe),
                                             *_mobilenet_v1_hyperparams(fe))


def _fpn_levels(config: pipeline_pb2.Ssd, allow_depthwise: bool = False) -> FpnLevels:
    """The ``fpn`` levels (TF1 defaults 3..7, depth 256 when unset), checked against the
    image size: the top-down sums need each pyramid input exactly twice the size of the next,
    i.e. ceil(size / 2**min_level) divisible by 2**(min(max_level, 5) - min_level)."""
    fe = config.feature_extractor
    field = f"{_SSD}.feature_extractor"
    fpn = FpnLevels(fe.fpn.min_level, fe.fpn.max_level, fe.fpn.additional_layer_depth)
    if not 2 <= fpn.min_level <= 5 or fpn.max_level < fpn.min_level:
        _refuse(f"{field}.fpn: min_level must be 2..5 and max_level >= min_level (got "
                f"{fpn.min_level}..{fpn.max_level})")
    if fe.use_depthwise and not allow_depthwise:
        _refuse(f"{field}.use_depthwise is not supported for {fe.type} (separable FPN convs); "
                "remove it")
    top = min(fpn.max_level, 5)
    (height, width), _ = _image_size(config)
    padded = [-(-n // fe.pad_to_multiple) * fe.pad_to_multiple for n in (height, width)]
    if any(-(-n // 2 ** fpn.min_level) % 2 ** (top - fpn.min_level) for n in padded):
        step = 2 ** top
        _refuse(f"{_SSD}.image_resizer.fixed_shape_resizer: {fe.type} with fpn levels "
                f"{fpn.min_level}..{fpn.max_level} cannot add the pyramid levels of a "
                f"{height}x{width} image; use a multiple of {step}, e.g. "
                f"{-(-height // step) * step}x{-(-width // step) * step}")
    return fpn


def _ssd_mobilenet_v1_fpn(config: pipeline_pb2.Ssd) -> FpnFeatureExtractor:
    fe = config.feature_extractor
    return ssd_mobilenet_v1_fpn(ExtractorOptions.from_proto(fe), _fpn_levels(config),
                                *_mobilenet_v1_hyperparams(fe))


def _check_keras_fpn(config: pipeline_pb2.Ssd) -> None:
    """What odflow's TF2 (Keras) FPN extractors do not implement: explicit padding (the TF2
    API then crops the upsampled maps and pads the bottom-up convs)."""
    fe = config.feature_extractor
    if fe.use_explicit_padding:
        _refuse(f"{_SSD}.feature_extractor.use_explicit_padding is not supported for {fe.type} "
                "by odflow; remove it")


def _ssd_mobilenet_v1_fpn_keras(config: pipeline_pb2.Ssd) -> FpnFeatureExtractor:
    fe = config.feature_extractor
    _check_keras_fpn(config)
    # use_depthwise is refused (by _fpn_levels): with it the TF2 API also narrows MobileNet's
    # last two layers (conv_pw_12: 512, conv_pw_13: 256), which odflow does not do.
    return ssd_mobilenet_v1_fpn(ExtractorOptions.from_proto(fe), _fpn_levels(config),
                                *_mobilenet_v1_hyperparams(fe), keras=True)


def _ssd_mobilenet_v2_fpn_keras(config: pipeline_pb2.Ssd) -> FpnFeatureExtractor:
    fe = config.feature_extractor
    _check_keras_fpn(config)
    extra = hp.from_proto(fe.conv_hyperparams, f"{_SSD}.feature_extractor.conv_hyperparams")
    base = extra if fe.override_base_feature_extractor_hyperparams else hp.mobilenet_v2_defaults()
    return ssd_mobilenet_v2_fpn(ExtractorOptions.from_proto(fe),
                                _fpn_levels(config, allow_depthwise=True), base, extra)


def _ssd_resnet_v1_fpn_keras(depth: int) -> Callable[[pipeline_pb2.Ssd], FpnFeatureExtractor]:
    """The TF2 API's ``ssd_resnet{depth}_v1_fpn_keras`` (Keras ResNet v1, see
    ``odflow.model.resnet_v1_keras``)."""
    def build_extractor(config: pipeline_pb2.Ssd) -> FpnFeatureExtractor:
        fe = config.feature_extractor
        field = f"{_SSD}.feature_extractor"
        if fe.depth_multiplier != 1.0:
            _refuse(f"{field}.depth_multiplier: {fe.type} supports only 1.0")
        _check_keras_fpn(config)
        extra = hp.from_proto(fe.conv_hyperparams, f"{field}.conv_hyperparams")
        base = (extra if fe.override_base_feature_extractor_hyperparams
                else resnet_arg_scope_defaults())
        fpn = _fpn_levels(config)
        fpn_depth = max(int(fpn.additional_layer_depth * fe.depth_multiplier), fe.min_depth)
        return ssd_resnet_v1_fpn_keras(depth, fpn, base, extra, fpn_depth, fe.pad_to_multiple)
    return build_extractor


def _ssd_resnet50_v1_fpn(config: pipeline_pb2.Ssd) -> FpnFeatureExtractor:
    fe = config.feature_extractor
    field = f"{_SSD}.feature_extractor"
    if fe.depth_multiplier != 1.0:
        _refuse(f"{field}.depth_multiplier: {fe.type} supports only 1.0")
    if fe.use_explicit_padding:
        _refuse(f"{field}.use_explicit_padding is not valid for {fe.type} (as in TF1)")
    extra = hp.from_proto(fe.conv_hyperparams, f"{field}.conv_hyperparams")
    base = extra if fe.override_base_feature_extractor_hyperparams else resnet_arg_scope_defaults()
    return ssd_resnet50_v1_fpn(_fpn_levels(config), base, extra, fe.pad_to_multiple)


def _mobilenet_v2_v3(make: Callable) -> Callable[[pipeline_pb2.Ssd], object]:
    """A builder for a MobileNet v2/v3 extractor (``make(options, base, extra)``)."""
    def build_extractor(config: pipeline_pb2.Ssd):
        fe = config.feature_extractor
        extra = hp.from_proto(fe.conv_hyperparams, f"{_SSD}.feature_extractor.conv_hyperparams")
        base = hp.mobilenet_v2_defaults()
        if fe.override_base_feature_extractor_hyperparams:
            # slim's conv_defs keep batch norm (with centre and scale) in the base whatever
            # the config says; the config gives initialiser, regulariser and BN decay/epsilon.
            batch_norm = dataclasses.replace(extra.batch_norm or base.batch_norm,
                                             center=True, scale=True)
            base = dataclasses.replace(extra, batch_norm=batch_norm)
        options = ExtractorOptions.from_proto(fe)
        return make(options, base, extra)
    return build_extractor


def _ssd_inception_v2(config: pipeline_pb2.Ssd) -> SSDInceptionV2FeatureExtractor:
    # One set of hyperparameters: TF1 applied conv_hyperparams to the base network too
    # (later API versions insisted on override_base_feature_extractor_hyperparams: true;
    # the zoo's 2018 config predates that and means the same).
    fe = config.feature_extractor
    options = ExtractorOptions.from_proto(fe)
    return SSDInceptionV2FeatureExtractor(
        options, hp.from_proto(fe.conv_hyperparams, f"{_SSD}.feature_extractor.conv_hyperparams"))


# feature_extractor.type -> build function of the Ssd message (the starter model and
# benchmarks/zoo_inference.py iterate it).
FEATURE_EXTRACTORS: dict[str, Callable[[pipeline_pb2.Ssd], object]] = {
    "ssd_mobilenet_v1": _ssd_mobilenet_v1,
    "ssd_mobilenet_v1_keras": _ssd_mobilenet_v1,
    "ssd_mobilenet_v1_fpn": _ssd_mobilenet_v1_fpn,
    "ssd_mobilenet_v1_fpn_keras": _ssd_mobilenet_v1_fpn_keras,
    "ssd_mobilenet_v2_fpn_keras": _ssd_mobilenet_v2_fpn_keras,
    "ssd_mobilenet_v1_ppn": _ssd_mobilenet_v1_ppn,
    "ssd_resnet50_v1_fpn": _ssd_resnet50_v1_fpn,
    "ssd_resnet50_v1_fpn_keras": _ssd_resnet_v1_fpn_keras(50),
    "ssd_resnet101_v1_fpn_keras": _ssd_resnet_v1_fpn_keras(101),
    "ssd_resnet152_v1_fpn_keras": _ssd_resnet_v1_fpn_keras(152),
    "ssd_mobilenet_v2": _mobilenet_v2_v3(mobilenet_v2.feature_extractor),
    "ssd_mobilenet_v2_keras": _mobilenet_v2_v3(mobilenet_v2.feature_extractor),
    "ssd_mobilenet_v3_large": _mobilenet_v2_v3(mobilenet_v3.large),
    "ssd_mobilenet_v3_small": _mobilenet_v2_v3(mobilenet_v3.small),
    "ssd_inception_v2": _ssd_inception_v2,
    **{name: efficientdet_builder.feature_extractor for name in efficientdet_builder.TYPES},
}
SUPPORTED_FEATURE_EXTRACTORS = tuple(FEATURE_EXTRACTORS)
_FPN_TYPES = ("ssd_mobilenet_v1_fpn", "ssd_mobilenet_v1_fpn_keras", "ssd_mobilenet_v2_fpn_keras",
              "ssd_resnet50_v1_fpn", "ssd_resnet50_v1_fpn_keras", "ssd_resnet101_v1_fpn_keras",
              "ssd_resnet152_v1_fpn_keras")


def _check_head_fields(proto, field: str) -> tuple[float, float] | None:
    """The fields both box predictors share, checked; returns the box-encoding clip range."""
    if proto.box_code_size != 4:
        _refuse(f"{field}.box_code_size must be 4 (faster_rcnn_box_coder), "
                f"got {proto.box_code_size}")
    if proto.kernel_size < 1:
        _refuse(f"{field}.kernel_size must be >= 1")
    if proto.use_dropout and not 0.0 < proto.dropout_keep_probability <= 1.0:
        _refuse(f"{field}.dropout_keep_probability must be in (0, 1]")
    if not proto.HasField("box_encodings_clip_range"):
        return None
    clip = (proto.box_encodings_clip_range.min, proto.box_encodings_clip_range.max)
    if clip[0] >= clip[1]:
        _refuse(f"{field}.box_encodings_clip_range: min must be below max")
    return clip


def _box_predictor(config: pipeline_pb2.Ssd, depths: list[int], anchors_per_location: list[int]
                   ) -> ConvolutionalBoxPredictor | WeightSharedConvolutionalBoxPredictor:
    which = config.box_predictor.WhichOneof("box_predictor_oneof")
    if which == "weight_shared_convolutional_box_predictor":
        return _weight_shared_box_predictor(config, depths, anchors_per_location)
    if which != "convolutional_box_predictor":
        _refuse(f"{_SSD}.box_predictor.{which or '(none)'} is not supported; odflow supports "
                "convolutional_box_predictor and weight_shared_convolutional_box_predictor")
    proto = config.box_predictor.convolutional_box_predictor
    field = f"{_SSD}.box_predictor.convolutional_box_predictor"
    if not proto.HasField("conv_hyperparams"):
        _refuse(f"{field}.conv_hyperparams is required")
    clip = _check_head_fields(proto, field)
    options = BoxPredictorOptions(
        num_classes=config.num_classes,
        kernel_size=proto.kernel_size,
        min_depth=proto.min_depth,
        max_depth=proto.max_depth,
        num_layers_before_predictor=proto.num_layers_before_predictor,
        use_dropout=proto.use_dropout,
        dropout_keep_probability=proto.dropout_keep_probability,
        box_code_size=proto.box_code_size,
        apply_sigmoid_to_scores=proto.apply_sigmoid_to_scores,
        class_prediction_bias_init=proto.class_prediction_bias_init,
        use_depthwise=proto.use_depthwise,
        box_encodings_clip_range=clip,
    )
    return ConvolutionalBoxPredictor(options, depths, anchors_per_location,
                                     hp.from_proto(proto.conv_hyperparams,
                                                   f"{field}.conv_hyperparams"))


def _weight_shared_box_predictor(config: pipeline_pb2.Ssd, depths: list[int],
                                 anchors_per_location: list[int]
                                 ) -> WeightSharedConvolutionalBoxPredictor:
    proto = config.box_predictor.weight_shared_convolutional_box_predictor
    field = f"{_SSD}.box_predictor.weight_shared_convolutional_box_predictor"
    if not proto.HasField("conv_hyperparams"):
        _refuse(f"{field}.conv_hyperparams is required")
    for name, is_set in (("apply_conv_hyperparams_to_heads", proto.apply_conv_hyperparams_to_heads),
                         ("apply_conv_hyperparams_pointwise",
                          proto.apply_conv_hyperparams_pointwise),
                         ("score_converter", proto.score_converter != proto.IDENTITY)):
        if is_set:
            _refuse(f"{field}.{name} is set but odflow does not implement it; remove it")
    clip = _check_head_fields(proto, field)
    if len(set(depths)) != 1:
        _refuse(f"{field} needs feature maps of one depth; {config.feature_extractor.type} "
                f"gives {depths}")
    if len(set(anchors_per_location)) != 1:
        _refuse(f"{field} needs the same number of anchors per location on every layer; "
                f"{_SSD}.anchor_generator gives {anchors_per_location}")
    depth = proto.depth or depths[0]
    if proto.num_layers_before_predictor > 0 and proto.depth <= 0:
        _refuse(f"{field}.depth must be positive with num_layers_before_predictor > 0")
    tower_hyperparams = hp.from_proto(proto.conv_hyperparams, f"{field}.conv_hyperparams")
    options = WeightSharedOptions(
        num_classes=config.num_classes,
        depth=depth,
        num_layers_before_predictor=proto.num_layers_before_predictor,
        kernel_size=proto.kernel_size,
        box_code_size=proto.box_code_size,
        class_prediction_bias_init=proto.class_prediction_bias_init,
        use_dropout=proto.use_dropout,
        dropout_keep_probability=proto.dropout_keep_probability,
        share_prediction_tower=proto.share_prediction_tower,
        use_depthwise=proto.use_depthwise,
        box_encodings_clip_range=clip,
        # The TF2 API's Keras predictor (for the *_keras extractors) honours the activation.
        tower_activation=(tower_hyperparams.activation
                          if config.feature_extractor.type.endswith("_keras") else "relu6"),
    )
    return WeightSharedConvolutionalBoxPredictor(options, depths, anchors_per_location,
                                                 tower_hyperparams)
