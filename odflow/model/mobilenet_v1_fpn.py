"""The ``ssd_mobilenet_v1_fpn`` feature extractor (RetinaNet-style SSD on MobileNet v1).

MobileNet v1 (``FeatureExtractor/MobilenetV1/Conv2d_*``), a top-down pyramid over its
``Conv2d_3/5/11/13_pointwise`` end points (levels 2-5; ``fpn.min_level`` picks the first)
under ``FeatureExtractor/MobilenetV1/fpn``, then 3x3 stride-2 convs
``fpn/bottom_up_Conv2d_14, _15, ...`` for the levels above 5, as TF1's
``SSDMobileNetV1FpnFeatureExtractor`` built them (zoo: 2018-07-03).
"""

from __future__ import annotations

from odflow.model.feature_maps import ExtractorOptions
from odflow.model.fpn import FpnFeatureExtractor, FpnLevels
from odflow.model.hyperparams import ConvHyperparams
from odflow.model.mobilenet_v1 import SCOPE, SSDMobileNetV1FeatureExtractor

# Pyramid level l takes the backbone end point of stride 2**l.
_LEVEL_BLOCKS = {2: ("Conv2d_3_pointwise", 128), 3: ("Conv2d_5_pointwise", 256),
                 4: ("Conv2d_11_pointwise", 512), 5: ("Conv2d_13_pointwise", 1024)}


def ssd_mobilenet_v1_fpn(options: ExtractorOptions, fpn: FpnLevels,
                         base_hyperparams: ConvHyperparams,
                         extra_hyperparams: ConvHyperparams, *,
                         keras: bool = False) -> FpnFeatureExtractor:
    """``keras``: the TF2 API's ``ssd_mobilenet_v1_fpn_keras`` (each pyramid level upsamples
    the previous level's smoothed map); else TF1's ``ssd_mobilenet_v1_fpn``."""
    backbone = SSDMobileNetV1FeatureExtractor(
        ExtractorOptions(depth_multiplier=options.depth_multiplier,
                           min_depth=options.min_depth,
                           use_explicit_padding=options.use_explicit_padding,
                           num_layers=2, pad_to_multiple=options.pad_to_multiple),
        base_hyperparams, extra_hyperparams)
    endpoints = {level: (name, backbone.depth(depth))
                 for level, (name, depth) in _LEVEL_BLOCKS.items()}
    base_max = min(fpn.max_level, 5)
    bottom_up = {level: f"bottom_up_Conv2d_{level - base_max + 13}"
                 for level in range(base_max + 1, fpn.max_level + 1)}
    return FpnFeatureExtractor(backbone, fpn, f"{SCOPE}/fpn", endpoints, bottom_up,
                               backbone.depth(fpn.additional_layer_depth), extra_hyperparams,
                               pad_to_multiple=options.pad_to_multiple,
                               explicit_padding=options.use_explicit_padding,
                               upsample_smoothed=keras)
