"""The ``ssd_mobilenet_v2`` feature extractor (also SSDLite: ``use_depthwise``).

MobileNet v2 as slim's ``mobilenet_v2.V2_DEF`` defines it (scope ``FeatureExtractor/MobilenetV2``,
ReLU6, expansion 6), up to ``layer_19`` (``Conv_1``, 1280); SSD takes
``layer_15/expansion_output`` (576) and ``layer_19``, then the extra maps
``layer_19_{1,2}_Conv2d_{2..5}_...``.  Checked layer by layer against the zoo's
ssd_mobilenet_v2_coco_2018_03_29 MetaGraph (tests/test_model_mobilenet_v2.py).
"""

from __future__ import annotations

from odflow.model.feature_maps import ExtractorOptions
from odflow.model.hyperparams import ConvHyperparams
from odflow.model.mobilenet_ssd import Layer, MobilenetSsdFeatureExtractor, conv

SCOPE = "FeatureExtractor/MobilenetV2"

# slim V2_DEF: Conv, 17 expanded_conv blocks (the first without expansion), Conv_1.
SPEC: tuple[Layer, ...] = (
    conv(32, 3, 2, "relu6"),
    Layer(16, expansion=1.0, expansion_divisor=1),  # expand_input(1, divisible_by=1)
    Layer(24, stride=2), Layer(24),
    Layer(32, stride=2), Layer(32), Layer(32),
    Layer(64, stride=2), Layer(64), Layer(64), Layer(64),
    Layer(96), Layer(96), Layer(96),
    Layer(160, stride=2), Layer(160), Layer(160),
    Layer(320),
    conv(1280, 1, 1, "relu6"),
)
TAPS = (15, 19)


def feature_extractor(options: ExtractorOptions, base: ConvHyperparams,
                      extra: ConvHyperparams) -> MobilenetSsdFeatureExtractor:
    return MobilenetSsdFeatureExtractor(SCOPE, SPEC, TAPS, options, base, extra)
