"""One convolution unit (conv or depthwise conv, then batch norm or biases, then activation).

Built from ``tf.Variable`` and ``tf.nn`` ops rather than Keras layers for two reasons: the
variables carry the TF1 checkpoint names directly (no Keras naming to translate), and the
fused batch-norm kernel is used in both directions (Keras 3's batch norm is unfused, which
costs a noticeable share of a MobileNet step on CPU).

Batch-norm moving statistics are ``ON_READ``/``MEAN`` variables, as Keras makes them, so each
replica of a ``MirroredStrategy`` updates its own copy and reads average them.
"""

from __future__ import annotations

import dataclasses

import tensorflow as tf

from odflow.model.hyperparams import BatchNormParams, ConvHyperparams, Initializer


def fixed_padding(inputs: tf.Tensor, kernel_size: int) -> tf.Tensor:
    """Pad as TF1 slim's ``fixed_padding`` did, so that a VALID conv sees SAME-like borders
    that do not depend on the input size."""
    pad_total = kernel_size - 1
    pad_beg = pad_total // 2
    pad_end = pad_total - pad_beg
    return tf.pad(inputs, [[0, 0], [pad_beg, pad_end], [pad_beg, pad_end], [0, 0]])


def _activate(x: tf.Tensor, activation: str) -> tf.Tensor:
    if activation == "relu6":
        return tf.nn.relu6(x)
    if activation == "relu":
        return tf.nn.relu(x)
    if activation == "swish":
        return tf.nn.silu(x)
    if activation == "hard_swish":  # slim mobilenet_v3.hard_swish
        return x * tf.nn.relu6(x + 3.0) * (1.0 / 6.0)
    if activation == "hard_sigmoid":  # the squeeze-excite gate of slim MobileNet v3
        return tf.nn.relu6(x + 3.0) * 0.16667
    return x


def named_variables_of(units) -> dict[str, tf.Variable]:
    """Every unit's variables by TF1 name: a network's checkpoint view is the union of its
    layers' (the names, scoped per layer, never collide)."""
    named: dict[str, tf.Variable] = {}
    for unit in units:
        named.update(unit.named_variables())
    return named


class ConvUnit(tf.Module):
    """A conv layer under one TF1 scope name, e.g. ``FeatureExtractor/MobilenetV1/Conv2d_0``.

    ``depthwise=True`` makes a depthwise conv (multiplier 1, variable ``depthwise_weights``).
    ``head=True`` is a predictor output: no normalisation, no activation, biases always
    (initialised to ``bias_init``), as the API's box predictor heads were.  ``biases``
    overrides TF1's rule (biases without batch norm or with ``force_use_bias``).
    """

    def __init__(self, scope: str, kernel_size: int, in_depth: int, out_depth: int | None,
                 stride: int, hyperparams: ConvHyperparams, *, depthwise: bool = False,
                 explicit_padding: bool = False, head: bool = False,
                 bias_init: float = 0.0, biases: bool | None = None) -> None:
        super().__init__(name=None)
        self.scope = scope
        self.kernel_size = kernel_size
        self.stride = stride
        self.depthwise = depthwise
        self.explicit_padding = explicit_padding and kernel_size > 1
        self.hyperparams = hyperparams
        self.activation = "none" if head else hyperparams.activation
        self.out_depth = in_depth if depthwise else int(out_depth)
        init: Initializer = hyperparams.initializer.make()
        if depthwise:
            shape = [kernel_size, kernel_size, in_depth, 1]
            self.weights_name = f"{scope}/depthwise_weights"
        else:
            shape = [kernel_size, kernel_size, in_depth, self.out_depth]
            self.weights_name = f"{scope}/weights"
        self.weights = tf.Variable(init(shape), name=self.weights_name, dtype=tf.float32)
        self._named: dict[str, tf.Variable] = {self.weights_name: self.weights}

        bn = None if head else hyperparams.batch_norm
        self.batch_norm = None if bn is None else BatchNorm(f"{scope}/BatchNorm", self.out_depth, bn)
        if self.batch_norm is not None:
            self._named.update(self.batch_norm.named_variables())
        self.biases = None
        if biases is None:
            biases = head or bn is None or hyperparams.force_use_bias
        if biases:
            self.biases = tf.Variable(tf.fill([self.out_depth], float(bias_init)),
                                      name=f"{scope}/biases")
            self._named[f"{scope}/biases"] = self.biases

    def named_variables(self) -> dict[str, tf.Variable]:
        return dict(self._named)

    def regularization(self) -> tf.Tensor | None:
        if self.depthwise and not self.hyperparams.regularize_depthwise:
            return None
        return self.hyperparams.regularization(self.weights)

    def __call__(self, x: tf.Tensor, training: bool = False) -> tf.Tensor:
        """``training`` (a Python bool) switches batch norm to batch statistics and updates
        the moving averages; the caller folds in ``batch_norm.train``/``freeze_batchnorm``."""
        padding = "SAME"
        if self.explicit_padding:
            x = fixed_padding(x, self.kernel_size)
            padding = "VALID"
        strides = [1, self.stride, self.stride, 1]
        if self.depthwise:
            y = tf.nn.depthwise_conv2d(x, self.weights, strides, padding)
        else:
            y = tf.nn.conv2d(x, self.weights, strides, padding)
        if self.batch_norm is not None:
            y = self.batch_norm(y, training)
        if self.biases is not None:
            y = tf.nn.bias_add(y, self.biases)
        return _activate(y, self.activation)


class SeparableConvUnit(tf.Module):
    """A Keras ``SeparableConv2D`` followed by the hyperparams' batch norm (or biases) and
    activation, as the TF2 API's FPNLite layers and heads build it: a kxk depthwise conv with
    nothing after it (no batch norm, no activation, no biases), then a 1x1 conv that carries
    the normalisation and activation.  TF1's ``slim.separable_conv2d`` units (``ConvUnit``
    pairs) normalised the depthwise output too; this one does not.

    ``weights`` of the parts: ``depthwise.weights`` (``depthwise_kernel``), ``pointwise``
    (``pointwise_kernel``, biases, batch norm).
    """

    def __init__(self, scope: str, kernel_size: int, in_depth: int, out_depth: int, stride: int,
                 hyperparams: ConvHyperparams, *, explicit_padding: bool = False,
                 head: bool = False, bias_init: float = 0.0, biases: bool | None = None) -> None:
        super().__init__(name=None)
        plain = dataclasses.replace(hyperparams, batch_norm=None, activation="none")
        self.depthwise = ConvUnit(f"{scope}/depthwise", kernel_size, in_depth, None, stride,
                                  plain, depthwise=True, explicit_padding=explicit_padding,
                                  biases=False)
        self.pointwise = ConvUnit(f"{scope}/pointwise", 1, in_depth, out_depth, 1, hyperparams,
                                  head=head, bias_init=bias_init, biases=biases)
        self.stride = stride
        self.out_depth = out_depth
        self.batch_norm = self.pointwise.batch_norm
        self.biases = self.pointwise.biases

    def units(self) -> list[ConvUnit]:
        return [self.depthwise, self.pointwise]

    def named_variables(self) -> dict[str, tf.Variable]:
        return named_variables_of(self.units())

    def regularization(self) -> tf.Tensor | None:
        terms = [t for t in (u.regularization() for u in self.units()) if t is not None]
        return tf.add_n(terms) if terms else None

    def __call__(self, x: tf.Tensor, training: bool = False) -> tf.Tensor:
        return self.pointwise(self.depthwise(x, training), training)


def flat_units(layers) -> list[ConvUnit]:
    """``ConvUnit``s of a list that may hold ``SeparableConvUnit``s (for ``units()``)."""
    units: list[ConvUnit] = []
    for layer in layers:
        units += layer.units() if isinstance(layer, SeparableConvUnit) else [layer]
    return units


class BatchNorm(tf.Module):
    """Batch norm under one TF1 scope (``.../BatchNorm``, or ``.../BatchNorm/feature_j`` for a
    weight-shared predictor's per-level statistics), applied with the fused kernel.

    ``beta``/``gamma`` exist as ``center``/``scale`` ask; the moving statistics are
    ``ON_READ``/``MEAN`` variables (see the module docstring).
    """

    def __init__(self, scope: str, depth: int, params: BatchNormParams) -> None:
        super().__init__(name=None)
        self.scope = scope
        self.depth = depth
        self.params = params
        self._named: dict[str, tf.Variable] = {}
        self.beta = self._variable("beta", tf.zeros([depth])) if params.center else None
        self.gamma = self._variable("gamma", tf.ones([depth])) if params.scale else None
        self.moving_mean = self._variable("moving_mean", tf.zeros([depth]), moving=True)
        self.moving_variance = self._variable("moving_variance", tf.ones([depth]), moving=True)

    def _variable(self, suffix: str, value: tf.Tensor, moving: bool = False) -> tf.Variable:
        name = f"{self.scope}/{suffix}"
        if moving:
            var = tf.Variable(value, name=name, trainable=False,
                              synchronization=tf.VariableSynchronization.ON_READ,
                              aggregation=tf.VariableAggregation.MEAN)
        else:
            var = tf.Variable(value, name=name)
        self._named[name] = var
        return var

    def named_variables(self) -> dict[str, tf.Variable]:
        return dict(self._named)

    def __call__(self, y: tf.Tensor, training: bool = False) -> tf.Tensor:
        """``training`` (a Python bool; ``batch_norm.train: false`` overrides it) uses batch
        statistics and updates the moving averages."""
        training = training and self.params.train
        depth = self.depth
        gamma = self.gamma if self.gamma is not None else tf.ones([depth])
        beta = self.beta if self.beta is not None else tf.zeros([depth])
        eps = self.params.epsilon
        if not training:
            y, _, _ = tf.compat.v1.nn.fused_batch_norm(
                y, gamma, beta, mean=self.moving_mean, variance=self.moving_variance,
                epsilon=eps, is_training=False)
            return y
        replicas = tf.distribute.get_replica_context()
        if self.params.sync and replicas is not None and replicas.num_replicas_in_sync > 1:
            y, mean, variance = _cross_replica_batch_norm(y, gamma, beta, eps, replicas)
        else:
            y, mean, variance = tf.compat.v1.nn.fused_batch_norm(y, gamma, beta, epsilon=eps,
                                                                 is_training=True)
        # The fused kernel returns the Bessel-corrected batch variance, as TF1 used it.
        rate = 1.0 - self.params.decay
        self.moving_mean.assign_sub((self.moving_mean - tf.stop_gradient(mean)) * rate)
        self.moving_variance.assign_sub(
            (self.moving_variance - tf.stop_gradient(variance)) * rate)
        return y


def _cross_replica_batch_norm(y: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor, epsilon: float,
                              replicas: tf.distribute.ReplicaContext
                              ) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """Batch norm with the statistics of all replicas' examples (``sync_batch_norm``): the
    same output as one replica normalising the whole global batch.  Returns the normalised
    ``y``, the mean and the Bessel-corrected variance (as the fused kernel's, for the moving
    averages)."""
    axes = [0, 1, 2]
    count = tf.cast(tf.reduce_prod(tf.shape(y)[:3]), y.dtype)
    local = tf.concat([tf.reduce_sum(y, axes), tf.reduce_sum(tf.square(y), axes), [count]], 0)
    total = replicas.all_reduce(tf.distribute.ReduceOp.SUM, local)
    depth = y.shape[-1]
    n = total[-1]
    mean = total[:depth] / n
    variance = tf.maximum(total[depth:2 * depth] / n - tf.square(mean), 0.0)
    normalised = tf.nn.batch_normalization(y, mean, variance, beta, gamma, epsilon)
    return normalised, mean, variance * n / tf.maximum(n - 1.0, 1.0)
