"""EfficientNet b0..b7 as tf-models-official's Keras model builds it (the TF2 API's backbone).

Facts (tf-models ``official/legacy/image_classification/efficientnet/efficientnet_model.py``):
seven stacks of MBConv blocks (in, out, kernel, repeats, expansion, stride; squeeze-excite
ratio 0.25 of the block's *input* filters); width scales filters (``round_filters``: to a
multiple of 8, never more than 10 % down), depth scales repeats (``ceil``); swish
(``x * sigmoid(x)``) everywhere but the excite gate (sigmoid) and the projections (linear);
batch norm momentum 0.99, epsilon 1e-3; conv kernels without bias except the SE convs; Keras
'same' padding; l2 weight decay 5e-6 on kernels and biases.  Drop-connect (rate growing
linearly to 0.2 over the blocks, one draw per example) only on blocks with a residual, only
in training.

Layers are named as the Keras model names them (``stem_conv2d``, ``stack_1/block_0/
expand_bn``, ...) and listed in the model's weight order (``weighted_layer_names``), which is
its ``layer_with_weights-N`` numbering in object-based checkpoints.  The classification top
(``top_conv2d``, ``top_bn``, ``logits``) and the blocks after the last feature level a
detector taps are listed but not built (``build_until``): detection never runs them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import tensorflow as tf

from odflow.model.hyperparams import BatchNormParams
from odflow.model.keras_layers import KerasBatchNorm, KerasConv, activate, variance_scaling

# (input filters, output filters, kernel, repeats, expand ratio, stride), SE ratio 0.25.
BLOCKS = (
    (32, 16, 3, 1, 1, 1),
    (16, 24, 3, 2, 6, 2),
    (24, 40, 5, 2, 6, 2),
    (40, 80, 3, 3, 6, 2),
    (80, 112, 5, 3, 6, 1),
    (112, 192, 5, 4, 6, 2),
    (192, 320, 3, 1, 6, 1),
)
SE_RATIO = 0.25
# name -> (width coefficient, depth coefficient)
VARIANTS = {
    "efficientnet-b0": (1.0, 1.0), "efficientnet-b1": (1.0, 1.1),
    "efficientnet-b2": (1.1, 1.2), "efficientnet-b3": (1.2, 1.4),
    "efficientnet-b4": (1.4, 1.8), "efficientnet-b5": (1.6, 2.2),
    "efficientnet-b6": (1.8, 2.6), "efficientnet-b7": (2.0, 3.1),
}
# The feature level -> Keras layer whose output the TF2 API's EfficientDet taps (fixed names:
# for deeper variants these are not the last block of their stack).
LEVEL_ENDPOINTS = {
    1: "stack_0/block_0/project_bn",
    2: "stack_1/block_1/add",
    3: "stack_2/block_1/add",
    4: "stack_4/block_2/add",
    5: "stack_6/block_0/project_bn",
}
BATCH_NORM = BatchNormParams(decay=0.99, center=True, scale=True, epsilon=1e-3)
WEIGHT_DECAY = 5e-6
DROP_CONNECT_RATE = 0.2
STEM_FILTERS = 32
TOP_FILTERS = 1280
NUM_IMAGENET_CLASSES = 1000


def round_filters(filters: int, width: float, divisor: int = 8) -> int:
    """tf-models' ``round_filters``: nearest multiple of ``divisor``, at least ``divisor``,
    bumped up one step if rounding lost more than 10 %."""
    scaled = filters * width
    new = max(divisor, int(scaled + divisor / 2) // divisor * divisor)
    if new < 0.9 * scaled:
        new += divisor
    return int(new)


def round_repeats(repeats: int, depth: float) -> int:
    return int(math.ceil(depth * repeats))


@dataclass(frozen=True)
class BlockSpec:
    prefix: str  # "stack_1/block_0/"
    in_filters: int
    out_filters: int
    kernel_size: int
    expand_ratio: int
    stride: int
    drop_rate: float

    @property
    def expanded(self) -> int:
        return self.in_filters * self.expand_ratio

    @property
    def se_filters(self) -> int:
        return max(1, int(self.in_filters * SE_RATIO))

    @property
    def has_residual(self) -> bool:
        return self.stride == 1 and self.in_filters == self.out_filters

    def layer_names(self) -> list[str]:
        """This block's weighted layers in Keras order."""
        names = []
        if self.expand_ratio != 1:
            names += ["expand_conv2d", "expand_bn"]
        names += ["depthwise_conv2d", "depthwise_bn", "se_reduce_conv2d", "se_expand_conv2d",
                  "project_conv2d", "project_bn"]
        return [self.prefix + n for n in names]


def block_specs(variant: str) -> list[BlockSpec]:
    width, depth = VARIANTS[variant]
    total = sum(round_repeats(b[3], depth) for b in BLOCKS)
    specs, number = [], 0
    for stack, (cin, cout, kernel, repeats, expand, stride) in enumerate(BLOCKS):
        cin, cout = round_filters(cin, width), round_filters(cout, width)
        for i in range(round_repeats(repeats, depth)):
            specs.append(BlockSpec(f"stack_{stack}/block_{i}/", cin if i == 0 else cout, cout,
                                   kernel, expand, stride if i == 0 else 1,
                                   DROP_CONNECT_RATE * number / total))
            number += 1
    return specs


def weighted_layer_names(variant: str) -> list[str]:
    """Every weighted layer of the classification model, in ``layer_with_weights-N`` order."""
    names = ["stem_conv2d", "stem_bn"]
    for spec in block_specs(variant):
        names += spec.layer_names()
    return names + ["top_conv2d", "top_bn", "logits"]


def last_layer_for_level(level: int) -> str:
    """The last weighted layer that the level's endpoint depends on."""
    endpoint = LEVEL_ENDPOINTS[level]
    return endpoint if endpoint.endswith("_bn") else endpoint.rsplit("/", 1)[0] + "/project_bn"


class _MBConv(tf.Module):
    def __init__(self, spec: BlockSpec) -> None:
        super().__init__(name=None)
        self.spec = spec
        conv_init = variance_scaling(2.0, "fan_out", "normal")
        p, wd = spec.prefix, WEIGHT_DECAY

        def conv(name, kind, k, cin, cout, stride=1, bias=False):
            return KerasConv(p + name, kind, k, cin, cout, stride=stride, use_bias=bias,
                             initializer=conv_init, regularizer_weight=wd, regularize_bias=True)

        expanded = spec.expanded
        self.layers: list = []
        self.expand = self.expand_bn = None
        if spec.expand_ratio != 1:
            self.expand = conv("expand_conv2d", "conv", 1, spec.in_filters, expanded)
            self.expand_bn = KerasBatchNorm(p + "expand_bn", expanded, BATCH_NORM)
            self.layers += [self.expand, self.expand_bn]
        self.depthwise = conv("depthwise_conv2d", "depthwise", spec.kernel_size, expanded,
                              expanded, spec.stride)
        self.depthwise_bn = KerasBatchNorm(p + "depthwise_bn", expanded, BATCH_NORM)
        self.se_reduce = conv("se_reduce_conv2d", "conv", 1, expanded, spec.se_filters, bias=True)
        self.se_expand = conv("se_expand_conv2d", "conv", 1, spec.se_filters, expanded, bias=True)
        self.project = conv("project_conv2d", "conv", 1, expanded, spec.out_filters)
        self.project_bn = KerasBatchNorm(p + "project_bn", spec.out_filters, BATCH_NORM)
        self.layers += [self.depthwise, self.depthwise_bn, self.se_reduce, self.se_expand,
                        self.project, self.project_bn]

    def __call__(self, inputs: tf.Tensor, training: bool, bn_training: bool) -> tf.Tensor:
        x = inputs
        if self.expand is not None:
            x = activate(self.expand_bn(self.expand(x), bn_training), "swish")
        x = activate(self.depthwise_bn(self.depthwise(x), bn_training), "swish")
        se = tf.reduce_mean(x, axis=[1, 2], keepdims=True)
        se = activate(self.se_reduce(se), "swish")
        x = x * tf.sigmoid(self.se_expand(se))
        x = self.project_bn(self.project(x), bn_training)
        if not self.spec.has_residual:
            return x
        if training and self.spec.drop_rate > 0:
            # Keras Dropout with noise_shape (batch, 1, 1, 1): drop whole examples' residual
            # branches, scale the kept ones by 1 / (1 - rate).
            x = tf.nn.dropout(x, rate=self.spec.drop_rate,
                              noise_shape=tf.stack([tf.shape(x)[0], 1, 1, 1]))
        return x + inputs


class EfficientNet(tf.Module):
    """The backbone up to ``max_level`` (1..5): ``__call__(images, training, bn_training)
    -> {level: tensor}`` for ``min_level..max_level``.  ``layers`` holds the built weighted
    layers in Keras order (each with ``layer_name``, ``weights()``)."""

    def __init__(self, variant: str, min_level: int, max_level: int) -> None:
        super().__init__(name=None)
        if variant not in VARIANTS:
            raise ValueError(f"unknown EfficientNet variant {variant!r}")
        self.variant = variant
        self.levels = list(range(min_level, max_level + 1))
        width, _ = VARIANTS[variant]
        stem = round_filters(STEM_FILTERS, width)
        self.stem = KerasConv("stem_conv2d", "conv", 3, 3, stem, stride=2, use_bias=False,
                              initializer=variance_scaling(2.0, "fan_out", "normal"),
                              regularizer_weight=WEIGHT_DECAY)
        self.stem_bn = KerasBatchNorm("stem_bn", stem, BATCH_NORM)
        last = last_layer_for_level(max_level)
        self.blocks: list[_MBConv] = []
        for spec in block_specs(variant):
            self.blocks.append(_MBConv(spec))
            if last in spec.layer_names():
                break
        self.layers = [self.stem, self.stem_bn] + [l for b in self.blocks for l in b.layers]
        self.out_depths = {level: self._depth_at(level) for level in self.levels}

    def _depth_at(self, level: int) -> int:
        endpoint = LEVEL_ENDPOINTS[level]
        block = next(b for b in self.blocks if endpoint.startswith(b.spec.prefix))
        return block.spec.out_filters

    def units(self) -> list:
        return list(self.layers)

    def __call__(self, images: tf.Tensor, training: bool = False,
                 bn_training: bool | None = None) -> dict[int, tf.Tensor]:
        bn_training = training if bn_training is None else bn_training
        x = activate(self.stem_bn(self.stem(images), bn_training), "swish")
        outputs: dict[int, tf.Tensor] = {}
        wanted = {LEVEL_ENDPOINTS[level].rsplit("/", 1)[0] + "/": level for level in self.levels}
        for block in self.blocks:
            x = block(x, training, bn_training)
            level = wanted.get(block.spec.prefix)
            if level is not None:
                outputs[level] = x
        return outputs
