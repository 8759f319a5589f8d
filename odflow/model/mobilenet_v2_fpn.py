"""The ``ssd_mobilenet_v2_fpn_keras`` feature extractor (SSD MobileNet V2 FPN; with
``use_depthwise`` the TF2 zoo's FPNLite).

The TF2 API's ``SSDMobileNetV2FpnKerasFeatureExtractor``: the whole MobileNet v2 (up to
``layer_19``, 1280 channels, whatever the pyramid uses), a top-down pyramid over the end
points ``layer_4/7/14/19`` (strides 4-32, levels 2-5; ``fpn.min_level`` picks the first) of
``fpn.additional_layer_depth`` channels in the TF2 order (each level upsamples the previous
level's smoothed map), then stride-2 ``bottom_up_Conv2d_{20,21,...}`` convs above level 5.
``use_depthwise`` makes the smoothing and bottom-up convs separable (depthwise 3x3, then a
1x1 with batch norm and activation).  Input scaled to [-1, 1].
"""

from __future__ import annotations

import dataclasses

from odflow.model.feature_maps import ExtractorOptions
from odflow.model.fpn import FpnFeatureExtractor, FpnLevels
from odflow.model.hyperparams import ConvHyperparams
from odflow.model.mobilenet_ssd import MobilenetSsdFeatureExtractor
from odflow.model.mobilenet_v2 import SPEC, TAPS

# odflow's own (name-based) checkpoints: under FeatureExtractor/ like every extractor, so
# fine_tune_checkpoint_type: detection from a V1 checkpoint restores backbone and pyramid.
SCOPE = "FeatureExtractor/MobilenetV2"
# Pyramid level l takes slim's end point of stride 2**l.
_LEVEL_LAYERS = {2: 4, 3: 7, 4: 14, 5: 19}
# The bottom-up convs are numbered on from MobileNet v2's 19 layers.
_NUM_LAYERS = 19


def ssd_mobilenet_v2_fpn(options: ExtractorOptions, fpn: FpnLevels,
                         base_hyperparams: ConvHyperparams,
                         extra_hyperparams: ConvHyperparams) -> FpnFeatureExtractor:
    backbone = MobilenetSsdFeatureExtractor(
        SCOPE, SPEC, TAPS,
        dataclasses.replace(options, num_layers=2, use_depthwise=False), base_hyperparams,
        extra_hyperparams)
    endpoints = {level: (f"layer_{n}", backbone.layers[n - 1].out_depth)
                 for level, n in _LEVEL_LAYERS.items()}
    depth = max(int(fpn.additional_layer_depth * options.depth_multiplier), options.min_depth)
    base_max = min(fpn.max_level, 5)
    bottom_up = {level: f"bottom_up_Conv2d_{level - base_max + _NUM_LAYERS}"
                 for level in range(base_max + 1, fpn.max_level + 1)}
    return FpnFeatureExtractor(backbone, fpn, f"{SCOPE}/fpn", endpoints, bottom_up,
                               depth, extra_hyperparams, pad_to_multiple=options.pad_to_multiple,
                               use_depthwise=options.use_depthwise, upsample_smoothed=True)
