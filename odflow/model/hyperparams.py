"""Convolution hyperparameters (the config's ``Hyperparams`` message) as plain Python values.

The network modules never look at protos: they get a ``ConvHyperparams`` here, so the rules
of the TF1 API (which initialiser, which regulariser, batch norm or biases) live in one place
and every unsupported option is refused with the config field that set it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import tensorflow as tf

from odflow.errors import OdflowError
from odflow.protos import pipeline_pb2

Initializer = Callable[[Sequence[int]], tf.Tensor]

_ACTIVATIONS = {
    pipeline_pb2.Hyperparams.NONE: "none",
    pipeline_pb2.Hyperparams.RELU: "relu",
    pipeline_pb2.Hyperparams.RELU_6: "relu6",
    pipeline_pb2.Hyperparams.SWISH: "swish",
}


@dataclass(frozen=True)
class BatchNormParams:
    decay: float = 0.999
    center: bool = True
    scale: bool = False
    epsilon: float = 0.001
    train: bool = True
    # sync_batch_norm: batch statistics over all replicas' examples, not each replica's own.
    sync: bool = False


@dataclass(frozen=True)
class InitializerParams:
    """How TF1 initialised weights; ``make`` turns it into a function of the shape."""

    kind: str  # truncated_normal | random_normal | variance_scaling
    mean: float = 0.0
    stddev: float = 1.0
    factor: float = 2.0
    uniform: bool = False
    mode: str = "fan_in"

    def make(self) -> Initializer:
        if self.kind == "truncated_normal":
            return lambda shape: tf.random.truncated_normal(shape, self.mean, self.stddev)
        if self.kind == "random_normal":
            return lambda shape: tf.random.normal(shape, self.mean, self.stddev)
        return self._variance_scaling

    def _variance_scaling(self, shape: Sequence[int]) -> tf.Tensor:
        # tf.contrib.layers.variance_scaling_initializer: fans from the kernel shape,
        # uniform limit sqrt(3 f / n) or truncated normal with stddev sqrt(1.3 f / n).
        receptive = math.prod(shape[:-2]) if len(shape) > 2 else 1
        fan_in = shape[-2] * receptive
        fan_out = shape[-1] * receptive
        n = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2.0}[self.mode]
        if self.uniform:
            limit = math.sqrt(3.0 * self.factor / n)
            return tf.random.uniform(shape, -limit, limit)
        return tf.random.truncated_normal(shape, 0.0, math.sqrt(1.3 * self.factor / n))


@dataclass(frozen=True)
class ConvHyperparams:
    """Everything a conv layer needs to know; the weights regulariser is ``kind * weight``."""

    initializer: InitializerParams
    activation: str = "relu"
    regularizer: str = "l2"  # l1 | l2 | none
    regularizer_weight: float = 0.0
    batch_norm: BatchNormParams | None = None
    force_use_bias: bool = False

    def regularization(self, weights: tf.Variable) -> tf.Tensor | None:
        """TF1 slim regularisers: l2 = weight * sum(w^2) / 2, l1 = weight * sum(|w|)."""
        if self.regularizer == "none" or self.regularizer_weight == 0.0:
            return None
        if self.regularizer == "l2":
            return self.regularizer_weight * tf.nn.l2_loss(weights)
        return self.regularizer_weight * tf.reduce_sum(tf.abs(weights))


def mobilenet_v1_defaults() -> ConvHyperparams:
    """The hyperparameters TF1 gave the MobileNet v1 base (``mobilenet_v1_arg_scope``).

    The API used them, not the config's ``conv_hyperparams``, for the base network unless
    ``override_base_feature_extractor_hyperparams`` was set; depthwise weights are
    regularised too (the SSD extractor asked for ``regularize_depthwise=True``).
    """
    return ConvHyperparams(
        initializer=InitializerParams("truncated_normal", stddev=0.09),
        activation="relu6",
        regularizer="l2",
        regularizer_weight=0.00004,
        batch_norm=BatchNormParams(decay=0.9997, center=True, scale=True, epsilon=0.001),
    )


def from_proto(proto: pipeline_pb2.Hyperparams, field: str) -> ConvHyperparams:
    """Read a ``Hyperparams`` message; ``field`` is its path in the config, for messages."""
    if proto.op != pipeline_pb2.Hyperparams.CONV:
        raise OdflowError(f"{field}.op: only CONV is supported by odflow's SSD layers")
    if proto.HasField("group_norm"):
        raise OdflowError(f"{field}.group_norm is not supported by odflow; use batch_norm "
                          "or sync_batch_norm")
    batch_norm = None
    which = proto.WhichOneof("normalizer_oneof")
    if which in ("batch_norm", "sync_batch_norm"):
        bn = getattr(proto, which)
        batch_norm = BatchNormParams(decay=bn.decay, center=bn.center, scale=bn.scale,
                                     epsilon=bn.epsilon, train=bn.train,
                                     sync=which == "sync_batch_norm")
    return ConvHyperparams(
        initializer=_initializer(proto, field),
        activation=_ACTIVATIONS[proto.activation],
        batch_norm=batch_norm,
        force_use_bias=proto.force_use_bias,
        **_regularizer(proto, field),
    )


def _regularizer(proto: pipeline_pb2.Hyperparams, field: str) -> dict:
    if not proto.HasField("regularizer"):
        raise OdflowError(f"{field}.regularizer is required (l2_regularizer or l1_regularizer)")
    which = proto.regularizer.WhichOneof("regularizer_oneof")
    if which == "l2_regularizer":
        return {"regularizer": "l2", "regularizer_weight": proto.regularizer.l2_regularizer.weight}
    if which == "l1_regularizer":
        return {"regularizer": "l1", "regularizer_weight": proto.regularizer.l1_regularizer.weight}
    raise OdflowError(f"{field}.regularizer: set l2_regularizer or l1_regularizer")


def _initializer(proto: pipeline_pb2.Hyperparams, field: str) -> InitializerParams:
    if not proto.HasField("initializer"):
        raise OdflowError(f"{field}.initializer is required")
    init = proto.initializer
    which = init.WhichOneof("initializer_oneof")
    if which == "truncated_normal_initializer":
        p = init.truncated_normal_initializer
        return InitializerParams("truncated_normal", mean=p.mean, stddev=p.stddev)
    if which == "random_normal_initializer":
        p = init.random_normal_initializer
        return InitializerParams("random_normal", mean=p.mean, stddev=p.stddev)
    if which == "variance_scaling_initializer":
        p = init.variance_scaling_initializer
        mode = pipeline_pb2.VarianceScalingInitializer.Mode.Name(p.mode).lower()
        return InitializerParams("variance_scaling", factor=p.factor, uniform=p.uniform,
                                 mode=mode)
    raise OdflowError(
        f"{field}.initializer.{which} is not supported by odflow; use "
        "truncated_normal_initializer, variance_scaling_initializer or random_normal_initializer")
