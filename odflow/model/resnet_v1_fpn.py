"""The ``ssd_resnet50_v1_fpn`` feature extractor (RetinaNet on ResNet-50 v1).

``FeatureExtractor/resnet_v1_50`` (see ``odflow.model.resnet_v1``), the top-down pyramid over
its ``block1..block4`` end points (levels 2-5) under ``FeatureExtractor/resnet_v1_50/fpn``,
and 3x3 stride-2 convs ``fpn/bottom_up_block5, _block6`` for levels 6-7, as TF1's
``SSDResnet50V1FpnFeatureExtractor`` built them.  Input: channel means subtracted (VGG style),
not scaled to [-1, 1].

No zoo index was available for this tarball: the names follow the API's
``ssd_resnet_v1_fpn_feature_extractor.py`` and its MobileNet sibling, unverified.
"""

from __future__ import annotations

import tensorflow as tf

from odflow.model.fpn import FpnFeatureExtractor, FpnLevels
from odflow.model.hyperparams import ConvHyperparams
from odflow.model.resnet_v1 import ResnetV1

SCOPE = "FeatureExtractor/resnet_v1_50"
CHANNEL_MEANS = (123.68, 116.779, 103.939)


def subtract_channel_means(images: tf.Tensor) -> tf.Tensor:
    return images - tf.constant(CHANNEL_MEANS, images.dtype)


def ssd_resnet50_v1_fpn(fpn: FpnLevels, base_hyperparams: ConvHyperparams,
                        extra_hyperparams: ConvHyperparams,
                        pad_to_multiple: int = 1) -> FpnFeatureExtractor:
    backbone = ResnetV1(SCOPE, base_hyperparams, pad_to_multiple=pad_to_multiple)
    endpoints = {level: (f"block{level - 1}", backbone.depths[f"block{level - 1}"])
                 for level in range(2, 6)}
    bottom_up = {level: f"bottom_up_block{level - 1}" for level in range(6, fpn.max_level + 1)}
    return FpnFeatureExtractor(backbone, fpn, f"{SCOPE}/fpn", endpoints, bottom_up,
                               fpn.additional_layer_depth, extra_hyperparams,
                               pad_to_multiple=pad_to_multiple,
                               preprocess=subtract_channel_means)
