"""ResNet v1 50/101/152 as the TF2 API builds it (``keras_models/resnet_v1.py``: the Keras
application with the API's layer overrides), and the ``ssd_resnet{50,101,152}_v1_fpn_keras``
feature extractors (RetinaNet) on it.

It differs from slim's ``resnet_v1`` (``odflow.model.resnet_v1``, the TF1 models) in where the
stride sits: each stage's *first* unit subsamples, with a stride-2 1x1 ``_1_conv`` and a
stride-2 1x1 shortcut ``_0_conv`` (slim strided the last unit's 3x3 and max-pooled the
shortcut).  The rest, as the overrides make it: no conv biases; ``conv1`` 7x7 stride 2 on
fixed (size-independent) padding, then a 3x3 stride-2 SAME max pool; every other conv SAME;
batch norm and activation from the config when ``override_base_feature_extractor_hyperparams``
(else epsilon 1e-5, momentum 0.997, ReLU); the activation also after each residual sum.
End points ``conv2`` .. ``conv5`` (a stage's last unit) have strides 4 .. 32.
"""

from __future__ import annotations

from dataclasses import replace

import tensorflow as tf

from odflow.model.fpn import FpnFeatureExtractor, FpnLevels
from odflow.model.hyperparams import ConvHyperparams
from odflow.model.layers import ConvUnit, _activate
from odflow.model.mobilenet_v1 import pad_to_multiple
from odflow.model.resnet_v1_fpn import subtract_channel_means

# Units per stage (conv2 .. conv5) of the Keras applications' ResNet50/101/152.
STAGES = {50: (3, 4, 6, 3), 101: (3, 4, 23, 3), 152: (3, 8, 36, 3)}
_FILTERS = (64, 128, 256, 512)


class KerasBottleneck(tf.Module):
    """One unit ``conv{s}_block{b}``: 1x1 (stride) -> 3x3 -> 1x1 (x4 depth, linear), plus the
    input or, in a stage's first unit, a linear 1x1 (stride) projection; then the activation."""

    def __init__(self, scope: str, in_depth: int, filters: int, stride: int,
                 projection: bool, hyperparams: ConvHyperparams) -> None:
        super().__init__(name=None)
        linear = replace(hyperparams, activation="none")
        self.activation = hyperparams.activation
        self.shortcut = (ConvUnit(f"{scope}_0_conv", 1, in_depth, 4 * filters, stride, linear,
                                  biases=False) if projection else None)
        self.conv1 = ConvUnit(f"{scope}_1_conv", 1, in_depth, filters, stride, hyperparams,
                              biases=False)
        self.conv2 = ConvUnit(f"{scope}_2_conv", 3, filters, filters, 1, hyperparams,
                              biases=False)
        self.conv3 = ConvUnit(f"{scope}_3_conv", 1, filters, 4 * filters, 1, linear,
                              biases=False)
        self.out_depth = 4 * filters

    def units(self) -> list[ConvUnit]:
        return ([self.shortcut] if self.shortcut else []) + [self.conv1, self.conv2, self.conv3]

    def keras_layer_order(self) -> list[tuple[str, ConvUnit]]:
        """(``conv``/``bn``, unit) in the Keras model's layer order: the application builds the
        shortcut conv after the main path's first two convs and before the third, and the
        shortcut's batch norm after the third conv."""
        order = [("conv", self.conv1), ("bn", self.conv1), ("conv", self.conv2),
                 ("bn", self.conv2)]
        if self.shortcut is not None:
            return order + [("conv", self.shortcut), ("conv", self.conv3),
                            ("bn", self.shortcut), ("bn", self.conv3)]
        return order + [("conv", self.conv3), ("bn", self.conv3)]

    def __call__(self, x: tf.Tensor, training: bool) -> tf.Tensor:
        shortcut = self.shortcut(x, training) if self.shortcut is not None else x
        y = self.conv3(self.conv2(self.conv1(x, training), training), training)
        return _activate(shortcut + y, self.activation)


class KerasResnetV1(tf.Module):
    """``base_endpoints(images, training) -> {"conv2": ..., "conv5": ...}``."""

    def __init__(self, depth: int, hyperparams: ConvHyperparams, pad_to_multiple: int = 1,
                 scope: str = "") -> None:
        super().__init__(name=None)
        self.pad_to_multiple = pad_to_multiple
        # odflow's own (name-based) checkpoints: under FeatureExtractor/, so
        # fine_tune_checkpoint_type: detection from a V1 checkpoint restores it.
        scope = scope or f"FeatureExtractor/ResNet{depth}V1"
        self.conv1 = ConvUnit(f"{scope}/conv1_conv", 7, 3, 64, 2, hyperparams,
                              explicit_padding=True, biases=False)
        self.stages: list[tuple[str, list[KerasBottleneck]]] = []
        self.depths: dict[str, int] = {}
        in_depth = 64
        for index, (units, filters) in enumerate(zip(STAGES[depth], _FILTERS)):
            name = f"conv{index + 2}"
            stride = 1 if index == 0 else 2
            blocks = []
            for b in range(units):
                blocks.append(KerasBottleneck(f"{scope}/{name}_block{b + 1}", in_depth, filters,
                                              stride if b == 0 else 1, b == 0, hyperparams))
                in_depth = blocks[-1].out_depth
            self.stages.append((name, blocks))
            self.depths[name] = in_depth

    def units(self) -> list[ConvUnit]:
        units = [self.conv1]
        for _, blocks in self.stages:
            for block in blocks:
                units += block.units()
        return units

    def keras_layer_order(self) -> list[tuple[str, ConvUnit]]:
        order = [("conv", self.conv1), ("bn", self.conv1)]
        for _, blocks in self.stages:
            for block in blocks:
                order += block.keras_layer_order()
        return order

    def base_endpoints(self, images: tf.Tensor, training: bool = False) -> dict[str, tf.Tensor]:
        x = self.conv1(pad_to_multiple(images, self.pad_to_multiple), training)
        x = tf.nn.max_pool2d(x, 3, 2, "SAME")
        endpoints = {}
        for name, blocks in self.stages:
            for block in blocks:
                x = block(x, training)
            endpoints[name] = x
        return endpoints


def ssd_resnet_v1_fpn_keras(depth: int, fpn: FpnLevels, base_hyperparams: ConvHyperparams,
                            extra_hyperparams: ConvHyperparams, fpn_depth: int,
                            pad_to_multiple: int = 1) -> FpnFeatureExtractor:
    """The TF2 API's ``SSDResNet{depth}V1FpnKerasFeatureExtractor``: pyramid levels 2-5 from
    ``conv2`` .. ``conv5``, the TF2 top-down order, stride-2 ``bottom_up_block{l-1}`` convs
    above level 5, channel-mean input."""
    backbone = KerasResnetV1(depth, base_hyperparams, pad_to_multiple)
    endpoints = {level: (f"conv{level}", backbone.depths[f"conv{level}"])
                 for level in range(2, 6)}
    scope = f"FeatureExtractor/ResNet{depth}V1_FPN"
    bottom_up = {level: f"bottom_up_block{level - 1}" for level in range(6, fpn.max_level + 1)}
    return FpnFeatureExtractor(backbone, fpn, f"{scope}/FeatureMaps", endpoints, bottom_up,
                               fpn_depth, extra_hyperparams, pad_to_multiple=pad_to_multiple,
                               upsample_smoothed=True, preprocess=subtract_channel_means)
