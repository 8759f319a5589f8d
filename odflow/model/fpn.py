"""The top-down feature pyramid (FPN) of the TF1 API's ``fpn_top_down_feature_maps``.

From the finest to the coarsest backbone map ``C_1..C_n``: the coarsest is projected by a 1x1
conv (``projection_n``: biases, no batch norm, no activation) and is itself the top pyramid
level; going down, the running map is upsampled 2x by nearest neighbour (each value repeated
in a 2x2 block, as TF1's reshape-and-multiply ``nearest_neighbor_upsampling``), the level's
``projection_k`` is added, and a 3x3 ``smoothing_k`` conv (the config's hyperparams: batch
norm and activation) gives the level's map.  The names are the zoo checkpoint's
(``.../fpn/projection_1``, ``.../fpn/smoothing_1``, ...).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import tensorflow as tf

from odflow.model.hyperparams import ConvHyperparams
from odflow.model.layers import ConvUnit, SeparableConvUnit, flat_units, named_variables_of


def nearest_neighbor_upsampling(x: tf.Tensor, scale: int = 2) -> tf.Tensor:
    """``[B,H,W,C] -> [B,H*scale,W*scale,C]``, each value repeated in a scale x scale block."""
    return tf.repeat(tf.repeat(x, scale, axis=1), scale, axis=2)


class FpnTopDown(tf.Module):
    """``__call__([C_1 finest .. C_n coarsest], training) -> [P_1 .. P_n]``, all ``depth``
    channels; ``P_k`` has the spatial size of ``C_k`` (each ``C_k`` must be exactly twice
    ``C_{k+1}``, which the builder checks through the image size)."""

    def __init__(self, scope: str, in_depths: list[int], depth: int,
                 hyperparams: ConvHyperparams, *, explicit_padding: bool = False,
                 use_depthwise: bool = False, upsample_smoothed: bool = False) -> None:
        super().__init__(name=None)
        n = len(in_depths)
        # TF1 upsampled the running sum (before smoothing) to the next level; the TF2 API's
        # KerasFpnTopDownFeatureMaps upsamples the previous level's smoothed output.
        self.upsample_smoothed = upsample_smoothed
        self.projections = [ConvUnit(f"{scope}/projection_{k + 1}", 1, in_depths[k], depth, 1,
                                     hyperparams, head=True) for k in range(n)]
        # use_depthwise (the TF2 API's FPNLite): separable 3x3 smoothing convs.
        smoothing = SeparableConvUnit if use_depthwise else ConvUnit
        self.smoothings = [smoothing(f"{scope}/smoothing_{k + 1}", 3, depth, depth, 1,
                                     hyperparams, explicit_padding=explicit_padding)
                           for k in range(n - 1)]

    def units(self) -> list[ConvUnit]:
        return self.projections + flat_units(self.smoothings)

    def __call__(self, features: list[tf.Tensor], training: bool = False) -> list[tf.Tensor]:
        top_down = self.projections[-1](features[-1], training)
        outputs = [top_down]
        for k in reversed(range(len(features) - 1)):
            top_down = nearest_neighbor_upsampling(top_down, 2)
            top_down = top_down + self.projections[k](features[k], training)
            outputs.append(self.smoothings[k](top_down, training))
            if self.upsample_smoothed:
                top_down = outputs[-1]
        return outputs[::-1]


class Backbone(Protocol):
    """What a pyramid needs of its backbone (``SSDMobileNetV1FeatureExtractor``, ``ResnetV1``)."""

    def base_endpoints(self, images: tf.Tensor, training: bool = False
                       ) -> dict[str, tf.Tensor]: ...

    def units(self) -> list[ConvUnit]: ...


@dataclass(frozen=True)
class FpnLevels:
    """The config's ``fpn { min_level max_level additional_layer_depth }`` (TF1 defaults)."""

    min_level: int = 3
    max_level: int = 7
    additional_layer_depth: int = 256


class FpnFeatureExtractor(tf.Module):
    """A backbone, the top-down pyramid over its end points for levels ``min_level..5``
    (``endpoints[l]`` has stride ``2**l``), then 3x3 stride-2 convs for the levels above 5
    (``bottom_up_names[l]`` for level ``l``), as TF1's SSD FPN extractors built them.

    ``__call__(preprocessed images, training) -> maps of levels min..max``.
    """

    def __init__(self, backbone: Backbone, levels: FpnLevels, scope: str,
                 endpoints: dict[int, tuple[str, int]], bottom_up_names: dict[int, str],
                 depth: int, hyperparams: ConvHyperparams, *, pad_to_multiple: int = 1,
                 explicit_padding: bool = False, use_depthwise: bool = False,
                 upsample_smoothed: bool = False,
                 preprocess: Callable[[tf.Tensor], tf.Tensor] | None = None) -> None:
        super().__init__(name=None)
        self.backbone = backbone
        # Images in [0, 255] -> network input; None: the SSD default, scaling to [-1, 1].
        self.preprocess = preprocess
        self.pad_to_multiple = pad_to_multiple
        self.levels = list(range(levels.min_level, levels.max_level + 1))
        base_max = min(levels.max_level, 5)
        base_levels = range(levels.min_level, base_max + 1)
        self.blocks = [endpoints[level][0] for level in base_levels]
        self.top_down = FpnTopDown(scope, [endpoints[level][1] for level in base_levels], depth,
                                   hyperparams, explicit_padding=explicit_padding,
                                   use_depthwise=use_depthwise,
                                   upsample_smoothed=upsample_smoothed)
        bottom_up = SeparableConvUnit if use_depthwise else ConvUnit
        self.bottom_up = [bottom_up(f"{scope}/{bottom_up_names[level]}", 3, depth, depth, 2,
                                    hyperparams, explicit_padding=explicit_padding)
                          for level in range(base_max + 1, levels.max_level + 1)]
        self.feature_depths = [depth] * len(self.levels)

    def units(self) -> list[ConvUnit]:
        return self.backbone.units() + self.top_down.units() + flat_units(self.bottom_up)

    def named_variables(self) -> dict[str, tf.Variable]:
        return named_variables_of(self.units())

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
        m = self.pad_to_multiple
        h, w = -(-height // m) * m, -(-width // m) * m
        return [(-(-h // 2 ** level), -(-w // 2 ** level)) for level in self.levels]
