"""The ``ssd_mobilenet_v1_ppn`` feature extractor (pooling pyramid network).

MobileNet v1 up to ``Conv2d_13_pointwise`` (so the checkpoint holds all of its layers), but
the pyramid starts at ``Conv2d_11_pointwise`` (stride 16) and each further level is a 2x2
stride-2 SAME max pool of the previous one (``MaxPool2d_i_2x2``): no extra variables.  As
TF1's ``SSDMobileNetV1PpnFeatureExtractor`` with ``pooling_pyramid_feature_maps``
(``base_feature_map_depth=0``, ``num_layers=6``).

No zoo index was available for this tarball: the names are MobileNet v1's (see
``odflow.model.mobilenet_v1``), unverified against the zoo's checkpoint.
"""

from __future__ import annotations

import tensorflow as tf

from odflow.model.feature_maps import ExtractorOptions
from odflow.model.hyperparams import ConvHyperparams
from odflow.model.layers import ConvUnit
from odflow.model.mobilenet_v1 import SSDMobileNetV1FeatureExtractor

NUM_LAYERS = 6
_BASE = "Conv2d_11_pointwise"


class SSDMobileNetV1PpnFeatureExtractor(tf.Module):
    """``__call__(images [B,H,W,3] in [-1,1], training) -> 6 maps of the same depth``."""

    def __init__(self, options: ExtractorOptions, base_hyperparams: ConvHyperparams,
                 extra_hyperparams: ConvHyperparams) -> None:
        super().__init__(name=None)
        self.backbone = SSDMobileNetV1FeatureExtractor(
            ExtractorOptions(depth_multiplier=options.depth_multiplier,
                               min_depth=options.min_depth,
                               use_explicit_padding=options.use_explicit_padding,
                               num_layers=2, pad_to_multiple=options.pad_to_multiple),
            base_hyperparams, extra_hyperparams)
        self.feature_depths = [self.backbone.feature_depths[0]] * NUM_LAYERS

    def units(self) -> list[ConvUnit]:
        return self.backbone.units()

    def named_variables(self) -> dict[str, tf.Variable]:
        return self.backbone.named_variables()

    def __call__(self, images: tf.Tensor, training: bool = False) -> list[tf.Tensor]:
        x = self.backbone.base_endpoints(images, training)[_BASE]
        maps = [x]
        for _ in range(NUM_LAYERS - 1):
            x = tf.nn.max_pool2d(x, 2, 2, "SAME")
            maps.append(x)
        return maps

    def feature_map_shapes(self, height: int, width: int) -> list[tuple[int, int]]:
        h, w = self.backbone.feature_map_shapes(height, width)[0]
        shapes = [(h, w)]
        for _ in range(NUM_LAYERS - 1):
            h, w = -(-h // 2), -(-w // 2)
            shapes.append((h, w))
        return shapes
