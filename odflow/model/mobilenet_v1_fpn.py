"""The ``ssd_mobilenet_v1_fpn`` feature extractor (RetinaNet-style SSD on MobileNet v1).

MobileNet v1 (``FeatureExtractor/MobilenetV1/Conv2d_*``), a top-down pyramid over its
``Conv2d_3/5/11/13_pointwise`` end points (levels 2-5; the config's ``fpn.min_level`` picks the
first) under ``FeatureExtractor/MobilenetV1/fpn``, then 3x3 stride-2 convs
``fpn/bottom_up_Conv2d_14, _15, ...`` for the levels above 5, as TF1's
``SSDMobileNetV1FpnFeatureExtractor`` built them (zoo: 2018-07-03).
"""

from __future__ import annotations

from dataclasses import dataclass

import tensorflow as tf

from odflow.model.fpn import FpnTopDown
from odflow.model.hyperparams import ConvHyperparams
from odflow.model.layers import ConvUnit
from odflow.model.mobilenet_v1 import SCOPE, MobilenetV1Options, SSDMobileNetV1FeatureExtractor

# The backbone end point of pyramid level l is _LEVEL_BLOCKS[l - 2] (stride 2**l).
_LEVEL_BLOCKS = ("Conv2d_3_pointwise", "Conv2d_5_pointwise", "Conv2d_11_pointwise",
                 "Conv2d_13_pointwise")
_BLOCK_DEPTHS = (128, 256, 512, 1024)
_BASE_MAX_LEVEL = 5


@dataclass(frozen=True)
class FpnOptions:
    min_level: int = 3
    max_level: int = 7
    additional_layer_depth: int = 256


class SSDMobileNetV1FpnFeatureExtractor(tf.Module):
    """``__call__(images [B,H,W,3] in [-1,1], training) -> maps of levels min..max``."""

    def __init__(self, options: MobilenetV1Options, fpn: FpnOptions,
                 base_hyperparams: ConvHyperparams, extra_hyperparams: ConvHyperparams) -> None:
        super().__init__(name=None)
        self.fpn_options = fpn
        self.backbone = SSDMobileNetV1FeatureExtractor(
            MobilenetV1Options(depth_multiplier=options.depth_multiplier,
                               min_depth=options.min_depth,
                               use_explicit_padding=options.use_explicit_padding,
                               num_layers=2, pad_to_multiple=options.pad_to_multiple),
            base_hyperparams, extra_hyperparams)
        depth = self.backbone.depth(fpn.additional_layer_depth)
        base_max = min(fpn.max_level, _BASE_MAX_LEVEL)
        self.blocks = [_LEVEL_BLOCKS[level - 2] for level in range(fpn.min_level, base_max + 1)]
        in_depths = [self.backbone.depth(_BLOCK_DEPTHS[level - 2])
                     for level in range(fpn.min_level, base_max + 1)]
        pad = options.use_explicit_padding
        self.top_down = FpnTopDown(f"{SCOPE}/fpn", in_depths, depth, extra_hyperparams,
                                   explicit_padding=pad)
        self.bottom_up = [
            ConvUnit(f"{SCOPE}/fpn/bottom_up_Conv2d_{level - base_max + 13}", 3, depth, depth, 2,
                     extra_hyperparams, explicit_padding=pad)
            for level in range(base_max + 1, fpn.max_level + 1)]
        self.feature_depths = [depth] * (fpn.max_level - fpn.min_level + 1)
        self.levels = list(range(fpn.min_level, fpn.max_level + 1))

    def units(self) -> list[ConvUnit]:
        return self.backbone.units() + self.top_down.units() + self.bottom_up

    def named_variables(self) -> dict[str, tf.Variable]:
        named: dict[str, tf.Variable] = {}
        for unit in self.units():
            named.update(unit.named_variables())
        return named

    def __call__(self, images: tf.Tensor, training: bool = False) -> list[tf.Tensor]:
        endpoints = self.backbone.base_endpoints(images, training)
        maps = self.top_down([endpoints[name] for name in self.blocks], training)
        x = maps[-1]
        for unit in self.bottom_up:
            x = unit(x, training)
            maps.append(x)
        return maps

    def feature_map_shapes(self, height: int, width: int) -> list[tuple[int, int]]:
        """Level l is ceil(padded size / 2**l) (SAME or fixed padding alike)."""
        m = self.backbone.options.pad_to_multiple
        h, w = -(-height // m) * m, -(-width // m) * m
        shapes = []
        for level in self.levels:
            shapes.append((-(-h // 2 ** level), -(-w // 2 ** level)))
        return shapes
