"""Conv and batch-norm layers with the TF2 (Keras) API's semantics and variable names.

The TF2 Detection Model Zoo's models are Keras models: a conv's bias is added *before* the
batch norm that follows it (TF1's ``ConvUnit`` adds it after), padding is always Keras
``'same'`` (TensorFlow's SAME: the extra row/column of a stride-2 conv goes at the bottom/right),
and variables are called ``kernel``, ``depthwise_kernel``, ``pointwise_kernel``, ``bias``,
``gamma``, ``beta``, ``moving_mean``, ``moving_variance``.  Each layer here keeps its
variables under those attribute names (``weights()``), so a family's TF2 key mapping is
``<layer path>/<attribute>``; ``name`` is the Keras layer name (``stack_1/block_0/
depthwise_conv2d``), and ``named_variables()`` gives ``<name>/<attribute>`` for odflow's own
name-based checkpoints.

Built from ``tf.Variable`` and ``tf.nn`` ops like ``odflow.model.layers`` (fused batch norm in
both directions); batch norm is that module's ``BatchNorm``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import tensorflow as tf

from odflow.model.hyperparams import BatchNormParams
from odflow.model.layers import BatchNorm

Initializer = Callable[[Sequence[int]], tf.Tensor]


def activate(x: tf.Tensor, activation: str) -> tf.Tensor:
    """The activations these models use, by the names ``odflow.model.hyperparams`` gives."""
    if activation == "swish":
        return x * tf.sigmoid(x)  # Keras/tf-models "simple_swish"
    if activation == "relu6":
        return tf.nn.relu6(x)
    if activation == "relu":
        return tf.nn.relu(x)
    if activation == "sigmoid":
        return tf.sigmoid(x)
    if activation == "none":
        return x
    raise ValueError(f"unknown activation {activation!r}")


class KerasConv(tf.Module):
    """One Keras conv layer: ``kind`` ``conv`` (``Conv2D``), ``depthwise``
    (``DepthwiseConv2D``, multiplier 1) or ``separable`` (``SeparableConv2D``, multiplier 1),
    'same' padding, optional bias (initialised to ``bias_init``).

    ``regularizer_weight`` is the Keras l2 factor on every kernel and the bias
    (``weight * sum(w**2)``); ``regularize_bias`` says whether the bias counts too.
    """

    def __init__(self, name: str, kind: str, kernel_size: int, in_depth: int, out_depth: int,
                 *, stride: int = 1, use_bias: bool = True, initializer: Initializer,
                 bias_init: float = 0.0, regularizer_weight: float = 0.0,
                 regularize_bias: bool = False) -> None:
        super().__init__(name=None)
        if kind not in ("conv", "depthwise", "separable"):
            raise ValueError(f"unknown conv kind {kind!r}")
        self.layer_name = name
        self.kind = kind
        self.stride = stride
        self.out_depth = in_depth if kind == "depthwise" else out_depth
        self.regularizer_weight = regularizer_weight
        self.regularize_bias = regularize_bias
        k = kernel_size
        self._weights: dict[str, tf.Variable] = {}
        if kind == "conv":
            self._add("kernel", initializer([k, k, in_depth, out_depth]))
        else:
            self._add("depthwise_kernel", initializer([k, k, in_depth, 1]))
        if kind == "separable":
            self._add("pointwise_kernel", initializer([1, 1, in_depth, out_depth]))
        if use_bias:
            self._add("bias", tf.fill([self.out_depth], float(bias_init)))

    def _add(self, attribute: str, value: tf.Tensor) -> None:
        self._weights[attribute] = tf.Variable(value, name=f"{self.layer_name}/{attribute}",
                                               dtype=tf.float32)

    def weights(self) -> dict[str, tf.Variable]:
        """Keras attribute name -> variable."""
        return dict(self._weights)

    def named_variables(self) -> dict[str, tf.Variable]:
        return {f"{self.layer_name}/{a}": v for a, v in self._weights.items()}

    def regularization(self) -> tf.Tensor | None:
        if self.regularizer_weight == 0.0:
            return None
        terms = [tf.reduce_sum(tf.square(v)) for a, v in self._weights.items()
                 if a != "bias" or self.regularize_bias]
        return self.regularizer_weight * tf.add_n(terms)

    def __call__(self, x: tf.Tensor) -> tf.Tensor:
        strides = [1, self.stride, self.stride, 1]
        w = self._weights
        if self.kind == "conv":
            y = tf.nn.conv2d(x, w["kernel"], strides, "SAME")
        elif self.kind == "depthwise":
            y = tf.nn.depthwise_conv2d(x, w["depthwise_kernel"], strides, "SAME")
        else:
            y = tf.nn.separable_conv2d(x, w["depthwise_kernel"], w["pointwise_kernel"], strides,
                                       "SAME")
        if "bias" in w:
            y = tf.nn.bias_add(y, w["bias"])
        return y


class KerasBatchNorm(tf.Module):
    """A Keras ``BatchNormalization`` layer named ``name`` (momentum = ``params.decay``)."""

    def __init__(self, name: str, depth: int, params: BatchNormParams) -> None:
        super().__init__(name=None)
        self.layer_name = name
        self.norm = BatchNorm(name, depth, params)

    def weights(self) -> dict[str, tf.Variable]:
        names = ("gamma", "beta", "moving_mean", "moving_variance")
        return {n: getattr(self.norm, n) for n in names if getattr(self.norm, n) is not None}

    def named_variables(self) -> dict[str, tf.Variable]:
        return {f"{self.layer_name}/{a}": v for a, v in self.weights().items()}

    def regularization(self) -> None:
        return None

    def __call__(self, x: tf.Tensor, training: bool = False) -> tf.Tensor:
        return self.norm(x, training)


def variance_scaling(scale: float, mode: str, distribution: str) -> Initializer:
    """Keras ``VarianceScaling`` (``truncated_normal`` with its 0.8796 correction, or
    ``uniform``); what tf-models' EfficientNet initialises its convs and logits with."""
    import math

    def init(shape: Sequence[int]) -> tf.Tensor:
        receptive = math.prod(shape[:-2]) if len(shape) > 2 else 1
        fan_in, fan_out = shape[-2] * receptive, shape[-1] * receptive
        n = max(1.0, fan_out if mode == "fan_out" else fan_in)
        if distribution == "uniform":
            limit = math.sqrt(3.0 * scale / n)
            return tf.random.uniform(shape, -limit, limit)
        return tf.random.truncated_normal(shape, 0.0, math.sqrt(scale / n) / 0.87962566103423978)
    return init


def keras_l2(hyperparams) -> float:
    """The l2 factor the TF2 API gives Keras layers from a config's regulariser: it halves
    the weight (``l2(weight * 0.5)``) so that the loss equals TF1 slim's ``weight *
    l2_loss(w)``.  Only l2 (or none) is supported here; the builder refuses l1."""
    if hyperparams.regularizer == "l2":
        return 0.5 * hyperparams.regularizer_weight
    if hyperparams.regularizer == "none" or hyperparams.regularizer_weight == 0.0:
        return 0.0
    raise ValueError("Keras-style layers support only an l2 regularizer")
