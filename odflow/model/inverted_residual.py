"""MobileNet v2/v3's inverted residual block (slim ``conv_blocks.expanded_conv``).

1x1 ``expand`` (when the expansion is wider than the input), kxk ``depthwise``, optional
``squeeze_excite`` on the depthwise output, linear 1x1 ``project``, and the input added back
when the stride is 1 and the depth is unchanged.  Channel counts are rounded as slim rounded
them (``make_divisible``), so variable shapes equal the TF1 checkpoints'.
"""

from __future__ import annotations

import dataclasses

import tensorflow as tf

from odflow.model.hyperparams import ConvHyperparams
from odflow.model.layers import ConvUnit


def make_divisible(value: float, divisor: int = 8, min_value: int | None = None) -> int:
    """slim's ``_make_divisible``: nearest multiple of ``divisor``, at least ``min_value``,
    never more than 10 % below ``value``."""
    min_value = divisor if min_value is None else min_value
    rounded = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


def with_activation(hyperparams: ConvHyperparams, activation: str) -> ConvHyperparams:
    return dataclasses.replace(hyperparams, activation=activation)


class SqueezeExcite(tf.Module):
    """``x * hard_sigmoid(conv(relu(conv(mean(x)))))`` with ``squeeze_excite/Conv`` (depth/4,
    rounded to 8) and ``squeeze_excite/Conv_1``, both with biases and no batch norm."""

    def __init__(self, scope: str, depth: int, hyperparams: ConvHyperparams) -> None:
        super().__init__(name=None)
        plain = dataclasses.replace(hyperparams, batch_norm=None)
        squeeze = make_divisible(depth / 4, 8)
        self.squeeze = ConvUnit(f"{scope}/squeeze_excite/Conv", 1, depth, squeeze, 1,
                                with_activation(plain, "relu"))
        self.excite = ConvUnit(f"{scope}/squeeze_excite/Conv_1", 1, squeeze, depth, 1,
                               with_activation(plain, "hard_sigmoid"))

    def units(self) -> list[ConvUnit]:
        return [self.squeeze, self.excite]

    def __call__(self, x: tf.Tensor) -> tf.Tensor:
        # slim average-pooled over the whole (static) map: the mean over height and width.
        pooled = tf.reduce_mean(x, axis=[1, 2], keepdims=True)
        return x * self.excite(self.squeeze(pooled))


class ExpandedConv(tf.Module):
    """``__call__(x, training) -> (output, expansion_output)``; the expansion output (after
    its activation) is what SSD takes as its first feature map."""

    def __init__(self, scope: str, in_depth: int, out_depth: int, expansion: int, kernel: int,
                 stride: int, activation: str, hyperparams: ConvHyperparams, *,
                 squeeze_excite: bool = False, explicit_padding: bool = False) -> None:
        super().__init__(name=None)
        inner = with_activation(hyperparams, activation)
        self.expand = None
        depth = in_depth
        if expansion > in_depth:
            self.expand = ConvUnit(f"{scope}/expand", 1, in_depth, expansion, 1, inner)
            depth = expansion
        self.depthwise = ConvUnit(f"{scope}/depthwise", kernel, depth, None, stride, inner,
                                  depthwise=True, explicit_padding=explicit_padding)
        self.se = SqueezeExcite(scope, depth, hyperparams) if squeeze_excite else None
        self.project = ConvUnit(f"{scope}/project", 1, depth, out_depth, 1,
                                with_activation(hyperparams, "none"))
        self.residual = stride == 1 and in_depth == out_depth
        self.stride = stride
        self.out_depth = out_depth
        self.expansion_depth = depth

    def units(self) -> list[ConvUnit]:
        units = [self.expand] if self.expand is not None else []
        units.append(self.depthwise)
        units += self.se.units() if self.se is not None else []
        return units + [self.project]

    def __call__(self, x: tf.Tensor, training: bool = False) -> tuple[tf.Tensor, tf.Tensor]:
        net = self.expand(x, training) if self.expand is not None else x
        expansion_output = net
        net = self.depthwise(net, training)
        if self.se is not None:
            net = self.se(net)
        net = self.project(net, training)
        if self.residual:
            net = net + x
        return net, expansion_output
