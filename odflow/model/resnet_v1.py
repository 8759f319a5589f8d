"""ResNet v1 (slim's ``resnet_v1_50``) as the SSD FPN extractors used it, with TF1's names.

``<scope>/conv1`` (7x7 stride 2, fixed padding), a 3x3 stride-2 SAME max pool, then blocks of
bottleneck units ``<scope>/block{b}/unit_{u}/bottleneck_v1/{shortcut,conv1,conv2,conv3}``.
As with slim's ``store_non_strided_activations=True`` (which the FPN extractors set), a
block's last unit runs at stride 1, its output is the block's end point (``block1`` has
stride 4, ..., ``block4`` stride 32) and a 1x1 stride-2 max pool subsamples it for the next
block.  In a unit, ``conv1``/``conv2`` take the hyperparams' activation, ``conv3`` and the
shortcut none, and the sum goes through ReLU (hard-coded in slim's bottleneck).

Not checked against a zoo index (none is available for the ResNet FPN tarball): the names
follow slim's ``resnet_v1.py``/``resnet_utils.py`` and the API's
``ssd_resnet_v1_fpn_feature_extractor.py``.
"""

from __future__ import annotations

from dataclasses import replace

import tensorflow as tf

from odflow.model.hyperparams import BatchNormParams, ConvHyperparams, InitializerParams
from odflow.model.layers import ConvUnit
from odflow.model.mobilenet_v1 import pad_to_multiple

# (block name, bottleneck depth, units, stride) of resnet_v1_50.
RESNET_V1_50_BLOCKS = (("block1", 64, 3, 2), ("block2", 128, 4, 2), ("block3", 256, 6, 2),
                       ("block4", 512, 3, 1))


def resnet_arg_scope_defaults() -> ConvHyperparams:
    """slim's ``resnet_arg_scope()``: He (variance scaling) init, L2 1e-4, ReLU, batch norm
    decay 0.997, epsilon 1e-5, with scale."""
    return ConvHyperparams(
        initializer=InitializerParams("variance_scaling", factor=2.0, mode="fan_in"),
        activation="relu",
        regularizer="l2",
        regularizer_weight=0.0001,
        batch_norm=BatchNormParams(decay=0.997, center=True, scale=True, epsilon=1e-5),
    )


class _Bottleneck(tf.Module):
    def __init__(self, scope: str, in_depth: int, depth: int, bottleneck: int,
                 hyperparams: ConvHyperparams) -> None:
        super().__init__(name=None)
        linear = replace(hyperparams, activation="none")
        self.shortcut = None
        if in_depth != depth:
            self.shortcut = ConvUnit(f"{scope}/shortcut", 1, in_depth, depth, 1, linear)
        self.convs = [ConvUnit(f"{scope}/conv1", 1, in_depth, bottleneck, 1, hyperparams),
                      ConvUnit(f"{scope}/conv2", 3, bottleneck, bottleneck, 1, hyperparams),
                      ConvUnit(f"{scope}/conv3", 1, bottleneck, depth, 1, linear)]

    def units(self) -> list[ConvUnit]:
        return ([self.shortcut] if self.shortcut else []) + self.convs

    def __call__(self, x: tf.Tensor, training: bool) -> tf.Tensor:
        shortcut = self.shortcut(x, training) if self.shortcut else x
        residual = x
        for conv in self.convs:
            residual = conv(residual, training)
        return tf.nn.relu(shortcut + residual)


class ResnetV1(tf.Module):
    """``base_endpoints(images, training) -> {"block1": ..., "block4": ...}``."""

    def __init__(self, scope: str, hyperparams: ConvHyperparams,
                 blocks: tuple[tuple[str, int, int, int], ...] = RESNET_V1_50_BLOCKS,
                 pad_to_multiple: int = 1) -> None:
        super().__init__(name=None)
        self.pad_to_multiple = pad_to_multiple
        self.conv1 = ConvUnit(f"{scope}/conv1", 7, 3, 64, 2, hyperparams, explicit_padding=True)
        self.blocks: list[tuple[str, list[_Bottleneck], int]] = []
        self.depths: dict[str, int] = {}
        in_depth = 64
        for name, bottleneck, num_units, stride in blocks:
            units = []
            for u in range(num_units):
                units.append(_Bottleneck(f"{scope}/{name}/unit_{u + 1}/bottleneck_v1", in_depth,
                                         bottleneck * 4, bottleneck, hyperparams))
                in_depth = bottleneck * 4
            self.blocks.append((name, units, stride))
            self.depths[name] = in_depth

    def units(self) -> list[ConvUnit]:
        units = [self.conv1]
        for _, block, _ in self.blocks:
            for bottleneck in block:
                units += bottleneck.units()
        return units

    def base_endpoints(self, images: tf.Tensor, training: bool = False) -> dict[str, tf.Tensor]:
        x = self.conv1(pad_to_multiple(images, self.pad_to_multiple), training)
        x = tf.nn.max_pool2d(x, 3, 2, "SAME")
        endpoints = {}
        for name, block, stride in self.blocks:
            for bottleneck in block:
                x = bottleneck(x, training)
            endpoints[name] = x
            if stride > 1:
                x = tf.nn.max_pool2d(x, 1, stride, "SAME")
        return endpoints
