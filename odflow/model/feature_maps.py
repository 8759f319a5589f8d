"""The SSD extra feature maps after a base network (TF1 ``multi_resolution_feature_maps``).

Each extra map is a 1x1 conv to half the depth then a stride-2 3x3 conv (or, with
``use_depthwise``, a 3x3 depthwise conv ``..._depthwise`` and a 1x1 conv), named after the last
base map it grows from: ``<base>_1_Conv2d_<i>_1x1_<d/2>`` and ``<base>_2_Conv2d_<i>_3x3_s2_<d>``
with ``i`` the index of the map, as the TF1 checkpoints have them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import tensorflow as tf

from odflow.model.hyperparams import ConvHyperparams
from odflow.model.layers import ConvUnit


@dataclass(frozen=True)
class ExtractorOptions:
    """The ``feature_extractor`` fields every SSD base network takes (MobileNet v1/v2/v3,
    Inception v2, and the FPN/PPN variants of v1).  ``use_depthwise`` is for the extra layers;
    Inception v2 applies ``use_explicit_padding`` to its extra layers only, as TF1 did."""

    depth_multiplier: float = 1.0
    min_depth: int = 16
    use_explicit_padding: bool = False
    use_depthwise: bool = False
    num_layers: int = 6
    pad_to_multiple: int = 1

    @classmethod
    def from_proto(cls, fe) -> ExtractorOptions:
        """From an ``SsdFeatureExtractor`` message."""
        return cls(depth_multiplier=fe.depth_multiplier, min_depth=fe.min_depth,
                   use_explicit_padding=fe.use_explicit_padding,
                   use_depthwise=fe.use_depthwise, num_layers=fe.num_layers,
                   pad_to_multiple=fe.pad_to_multiple)


class ExtraFeatureMaps(tf.Module):
    """``__call__(x, training) -> list of maps`` (one per entry of ``layer_depths``)."""

    def __init__(self, scope: str, base_name: str, first_index: int, in_depth: int,
                 layer_depths: Sequence[int], depth: Callable[[int], int],
                 hyperparams: ConvHyperparams, *, use_depthwise: bool,
                 use_explicit_padding: bool) -> None:
        super().__init__(name=None)
        self.layers: list[list[ConvUnit]] = []
        self.depths: list[int] = []
        pad = use_explicit_padding
        for i, layer_depth in enumerate(layer_depths):
            index = first_index + i
            mid, out = depth(layer_depth // 2), depth(layer_depth)
            units = [ConvUnit(f"{scope}/{base_name}_1_Conv2d_{index}_1x1_{mid}", 1, in_depth,
                              mid, 1, hyperparams)]
            name = f"{scope}/{base_name}_2_Conv2d_{index}_3x3_s2_{out}"
            if use_depthwise:
                units.append(ConvUnit(f"{name}_depthwise", 3, mid, None, 2, hyperparams,
                                      depthwise=True, explicit_padding=pad))
                units.append(ConvUnit(name, 1, mid, out, 1, hyperparams))
            else:
                units.append(ConvUnit(name, 3, mid, out, 2, hyperparams, explicit_padding=pad))
            self.layers.append(units)
            self.depths.append(out)
            in_depth = out

    def units(self) -> list[ConvUnit]:
        return [unit for units in self.layers for unit in units]

    def __call__(self, x: tf.Tensor, training: bool = False) -> list[tf.Tensor]:
        maps = []
        for units in self.layers:
            for unit in units:
                x = unit(x, training)
            maps.append(x)
        return maps
