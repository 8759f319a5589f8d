"""The ``ssd_mobilenet_v3_large`` and ``ssd_mobilenet_v3_small`` feature extractors.

MobileNet v3 as slim's ``mobilenet_v3.V3_{LARGE,SMALL}_DETECTION`` define it (scope
``FeatureExtractor/MobilenetV3``): hard-swish in the first conv and the later blocks,
squeeze-excite (hard-sigmoid gate) on the depthwise output of marked blocks, 5x5 depthwise
kernels, and the last blocks' depth halved for detection (large: layers 14-17, small: 10-13).
SSD takes ``layer_14/expansion_output`` and ``layer_17`` (large) or ``layer_10/expansion_output``
and ``layer_13`` (small), then the extra maps ``layer_17_...`` / ``layer_13_...``.

The large variant's names and shapes equal the zoo's ssd_mobilenet_v3_large_coco_2020_01_14
index; the zoo has no index for small: its names follow the same code (slim's naming), as the
TF1 API's ``SSDMobileNetV3SmallFeatureExtractor`` builds it.
"""

from __future__ import annotations

from odflow.model.feature_maps import ExtractorOptions
from odflow.model.hyperparams import ConvHyperparams
from odflow.model.mobilenet_ssd import Layer, MobilenetSsdFeatureExtractor, conv

SCOPE = "FeatureExtractor/MobilenetV3"
_HS = "hard_swish"


def _block(ef: float, n: int, k: int, s: int = 1, act: str = "relu", se: bool = False) -> Layer:
    return Layer(n, kernel=k, stride=s, expansion=ef, activation=act, squeeze_excite=se)


LARGE: tuple[Layer, ...] = (
    conv(16, 3, 2, _HS),
    _block(1, 16, 3),
    _block(4, 24, 3, 2), _block(3, 24, 3),
    _block(3, 40, 5, 2, se=True), _block(3, 40, 5, se=True), _block(3, 40, 5, se=True),
    _block(6, 80, 3, 2, _HS), _block(2.5, 80, 3, 1, _HS),
    _block(184 / 80, 80, 3, 1, _HS), _block(184 / 80, 80, 3, 1, _HS),
    _block(6, 112, 3, 1, _HS, True), _block(6, 112, 3, 1, _HS, True),
    # V3_LARGE_DETECTION: layers 14-17 at half depth (160 -> 80, 960 -> 480).
    _block(6, 80, 5, 2, _HS, True), _block(6, 80, 5, 1, _HS, True),
    _block(6, 80, 5, 1, _HS, True),
    conv(480, 1, 1, _HS),
)
LARGE_TAPS = (14, 17)

SMALL: tuple[Layer, ...] = (
    conv(16, 3, 2, _HS),
    _block(1, 16, 3, 2, se=True),
    _block(72 / 16, 24, 3, 2), _block(88 / 24, 24, 3),
    _block(4, 40, 5, 2, _HS, True), _block(6, 40, 5, 1, _HS, True),
    _block(6, 40, 5, 1, _HS, True),
    _block(3, 48, 5, 1, _HS, True), _block(3, 48, 5, 1, _HS, True),
    # V3_SMALL_DETECTION: layers 10-13 at half depth (96 -> 48, 576 -> 288).
    _block(6, 48, 5, 2, _HS, True), _block(6, 48, 5, 1, _HS, True),
    _block(6, 48, 5, 1, _HS, True),
    conv(288, 1, 1, _HS),
)
SMALL_TAPS = (10, 13)


def large(options: ExtractorOptions, base: ConvHyperparams,
          extra: ConvHyperparams) -> MobilenetSsdFeatureExtractor:
    return MobilenetSsdFeatureExtractor(SCOPE, LARGE, LARGE_TAPS, options, base, extra)


def small(options: ExtractorOptions, base: ConvHyperparams,
          extra: ConvHyperparams) -> MobilenetSsdFeatureExtractor:
    return MobilenetSsdFeatureExtractor(SCOPE, SMALL, SMALL_TAPS, options, base, extra)
