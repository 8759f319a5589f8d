"""EfficientDet's feature extractor (``ssd_efficientnet-b{0..7}_bifpn_keras``) and its TF2
checkpoint layout.

The TF2 API's ``SSDEfficientNetBiFPNKerasFeatureExtractor``: the input scaled as
``(x / 255 - mean) / std`` with ImageNet's channel mean and std, zero-padded to
``pad_to_multiple``, EfficientNet's level endpoints ``min_level..min(5, max_level)``
(``odflow.model.efficientnet``), then the BiFPN (``odflow.model.bifpn``) of ``num_iterations``
and ``num_filters`` to levels ``min_level..max_level``.  Its Keras attributes give the
checkpoint keys: ``_efficientnet`` (the truncated backbone: the layers the endpoints need),
``classification_backbone`` (the whole EfficientNet: the checkpoint stores there only the
layers ``_efficientnet`` lacks, i.e. the classification top and any blocks after the last
endpoint) and ``_bifpn_stage``.
"""

from __future__ import annotations

import tensorflow as tf

from odflow.model import efficientnet
from odflow.model.bifpn import BiFpn
from odflow.model.hyperparams import ConvHyperparams
from odflow.model.keras_box_predictor import KerasWeightSharedBoxPredictor
from odflow.model.tf2_checkpoint import KeyMapping, register_family

# feature_extractor.type -> EfficientNet variant
TYPES = {f"ssd_efficientnet-b{i}_bifpn_keras": f"efficientnet-b{i}" for i in range(8)}
CHANNEL_MEAN = (0.485, 0.456, 0.406)
CHANNEL_STD = (0.229, 0.224, 0.225)
MIN_IMAGE_DIMENSION = 129  # the TF2 API's check_min_image_dim for this extractor
FEATURE_SCOPE = "FeatureExtractor/"


def scope_name(variant: str) -> str:
    """The Keras name of the TF2 API's extractor (``EfficientDet-D0``...; b6 serves D6 and D7)."""
    n = variant.rsplit("-b", 1)[1]
    return "EfficientDet-D6-D7" if n == "6" else f"EfficientDet-D{n}"


class EfficientDetFeatureExtractor(tf.Module):
    """``__call__(preprocessed, bn_training, training=...) -> [maps of levels min..max]``."""

    # SSDMetaArch passes ``training`` too: drop-connect is on in training even when batch
    # norm is frozen.
    uses_training_flag = True

    def __init__(self, variant: str, min_level: int, max_level: int, num_iterations: int,
                 num_filters: int, combine_method: str, hyperparams: ConvHyperparams,
                 pad_to_multiple: int = 1) -> None:
        super().__init__(name=None)
        self.variant = variant
        self.min_level, self.max_level = min_level, max_level
        self.levels = list(range(min_level, max_level + 1))
        self.pad_to_multiple = pad_to_multiple
        self.backbone_max_level = min(5, max_level)
        self.backbone = efficientnet.EfficientNet(variant, min_level, self.backbone_max_level)
        self.bifpn = BiFpn(f"{scope_name(variant)}/bifpn", self.backbone.out_depths, min_level,
                           max_level, num_iterations, num_filters, combine_method, hyperparams)
        self.feature_depths = [num_filters] * len(self.levels)

    def preprocess(self, images: tf.Tensor) -> tf.Tensor:
        """``[0, 255]`` -> ImageNet-normalised (after resizing and padding, as upstream)."""
        mean = tf.constant(CHANNEL_MEAN, tf.float32)
        std = tf.constant(CHANNEL_STD, tf.float32)
        return (images / 255.0 - mean) / std

    def feature_map_shapes(self, height: int, width: int) -> list[tuple[int, int]]:
        """Level l is ceil(padded size / 2**l): every stride-2 step ('same' conv or pool)
        rounds up."""
        m = self.pad_to_multiple
        h, w = -(-height // m) * m, -(-width // m) * m
        shapes = []
        for level in self.levels:
            for _ in range(level if not shapes else 1):
                h, w = -(-h // 2), -(-w // 2)
            shapes.append((h, w))
        return shapes

    def units(self) -> list:
        return self.backbone.units() + self.bifpn.units()

    def named_variables(self) -> dict[str, tf.Variable]:
        """Names for odflow's name-based checkpoints: ``FeatureExtractor/`` + the Keras
        variable name, so that a name-based ``detection`` restore (``FeatureExtractor/*``,
        e.g. from an EfficientDet starter model) takes backbone and BiFPN as for every
        other family."""
        named: dict[str, tf.Variable] = {}
        for unit in self.units():
            named.update(unit.named_variables())
        for node in self.bifpn.nodes:
            if node.combine_weights is not None:
                named[node.combine_weights.name.split(":")[0]] = node.combine_weights
        return {f"{FEATURE_SCOPE}{name}": variable for name, variable in named.items()}

    def __call__(self, images: tf.Tensor, bn_training: bool = False,
                 training: bool | None = None) -> list[tf.Tensor]:
        training = bn_training if training is None else training
        if self.pad_to_multiple > 1:
            m = self.pad_to_multiple
            shape = tf.shape(images)
            pad_h = (m - shape[1] % m) % m
            pad_w = (m - shape[2] % m) % m
            images = tf.pad(images, [[0, 0], [0, pad_h], [0, pad_w], [0, 0]])
        features = self.backbone(images, training, bn_training)
        return self.bifpn(features, bn_training)


def _skip_attributes(layer_name: str) -> tuple[str, ...]:
    """The weights an unbuilt EfficientNet layer holds in a checkpoint."""
    if layer_name.endswith("_bn"):
        return ("gamma", "beta", "moving_mean", "moving_variance")
    if layer_name.endswith("depthwise_conv2d"):
        return ("depthwise_kernel",)
    if layer_name.endswith("se_reduce_conv2d") or layer_name.endswith("se_expand_conv2d"):
        return ("kernel", "bias")
    if layer_name == "logits":
        return ("kernel", "bias")
    return ("kernel",)


def key_mapping(model) -> KeyMapping:
    """The TF2 checkpoint key of every variable of an EfficientDet ``SSDMetaArch``."""
    extractor: EfficientDetFeatureExtractor = model.feature_extractor
    mapping = KeyMapping()
    prefix = "model/_feature_extractor"
    names = efficientnet.weighted_layer_names(extractor.variant)
    last_needed = names.index(efficientnet.last_layer_for_level(extractor.backbone_max_level))
    built = {layer.layer_name: layer for layer in extractor.backbone.layers}
    for number, name in enumerate(names):
        owner = "_efficientnet" if number <= last_needed else "classification_backbone"
        path = f"{prefix}/{owner}/layer_with_weights-{number}"
        layer = built.get(name)
        if layer is None:
            reason = ("EfficientNet's classification top, unused by detection"
                      if not name.startswith("stack_")
                      else "EfficientNet block after the last feature level, unused by detection")
            for attribute in _skip_attributes(name):
                mapping.skip(f"{path}/{attribute}", reason)
            continue
        for attribute, variable in layer.weights().items():
            mapping.add(f"{path}/{attribute}", variable, "backbone")
    stage = f"{prefix}/_bifpn_stage"
    for index, node in enumerate(extractor.bifpn.nodes):
        for i, block in enumerate(node.inputs):
            for sub, layer in ((0, block.conv), (1, block.norm)):
                if layer is not None:
                    for attribute, variable in layer.weights().items():
                        mapping.add(f"{stage}/node_input_blocks/{index}/{i}/1/{sub}/{attribute}",
                                    variable, "feature_extractor")
        if node.combine_weights is not None:
            mapping.add(f"{stage}/node_combine_op/{index}/bifpn_combine_weights",
                        node.combine_weights, "feature_extractor")
        for sub, layer in ((1, node.conv), (2, node.norm)):
            if layer is not None:
                for attribute, variable in layer.weights().items():
                    mapping.add(f"{stage}/node_post_combine_block/{index}/{sub}/{attribute}",
                                variable, "feature_extractor")
    predictor: KerasWeightSharedBoxPredictor = model.box_predictor
    for path, layer, _ in predictor.checkpoint_layers():
        for attribute, variable in layer.weights().items():
            mapping.add(f"model/_box_predictor/{path}/{attribute}", variable, "box_predictor")
    return mapping


register_family(tuple(TYPES), key_mapping)
