"""One convolution unit (conv or depthwise conv, then batch norm or biases, then activation).

Built from ``tf.Variable`` and ``tf.nn`` ops rather than Keras layers for two reasons: the
variables carry the TF1 checkpoint names directly (no Keras naming to translate), and the
fused batch-norm kernel is used in both directions (Keras 3's batch norm is unfused, which
costs a noticeable share of a MobileNet step on CPU).

Batch-norm moving statistics are ``ON_READ``/``MEAN`` variables, as Keras makes them, so each
replica of a ``MirroredStrategy`` updates its own copy and reads average them.
"""

from __future__ import annotations

import tensorflow as tf

from odflow.model.hyperparams import ConvHyperparams, Initializer


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


class ConvUnit(tf.Module):
    """A conv layer under one TF1 scope name, e.g. ``FeatureExtractor/MobilenetV1/Conv2d_0``.

    ``depthwise=True`` makes a depthwise conv (multiplier 1, variable ``depthwise_weights``).
    ``head=True`` is a predictor output: no normalisation, no activation, biases always
    (initialised to ``bias_init``), as the API's box predictor heads were.
    """

    def __init__(self, scope: str, kernel_size: int, in_depth: int, out_depth: int | None,
                 stride: int, hyperparams: ConvHyperparams, *, depthwise: bool = False,
                 explicit_padding: bool = False, head: bool = False,
                 bias_init: float = 0.0) -> None:
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
        self.batch_norm = bn
        depth = self.out_depth
        self.gamma = self.beta = self.moving_mean = self.moving_variance = self.biases = None
        if bn is not None:
            if bn.center:
                self.beta = self._variable("BatchNorm/beta", tf.zeros([depth]))
            if bn.scale:
                self.gamma = self._variable("BatchNorm/gamma", tf.ones([depth]))
            self.moving_mean = self._variable("BatchNorm/moving_mean", tf.zeros([depth]),
                                              moving=True)
            self.moving_variance = self._variable("BatchNorm/moving_variance",
                                                  tf.ones([depth]), moving=True)
        if head or bn is None or hyperparams.force_use_bias:
            self.biases = self._variable("biases", tf.fill([depth], float(bias_init)))

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
            y = self._batch_norm(y, training and self.batch_norm.train)
        if self.biases is not None:
            y = tf.nn.bias_add(y, self.biases)
        return _activate(y, self.activation)

    def _batch_norm(self, y: tf.Tensor, training: bool) -> tf.Tensor:
        depth = self.out_depth
        gamma = self.gamma if self.gamma is not None else tf.ones([depth])
        beta = self.beta if self.beta is not None else tf.zeros([depth])
        eps = self.batch_norm.epsilon
        if not training:
            y, _, _ = tf.compat.v1.nn.fused_batch_norm(
                y, gamma, beta, mean=self.moving_mean, variance=self.moving_variance,
                epsilon=eps, is_training=False)
            return y
        y, mean, variance = tf.compat.v1.nn.fused_batch_norm(y, gamma, beta, epsilon=eps,
                                                             is_training=True)
        # The fused kernel returns the Bessel-corrected batch variance, as TF1 used it.
        rate = 1.0 - self.batch_norm.decay
        self.moving_mean.assign_sub((self.moving_mean - tf.stop_gradient(mean)) * rate)
        self.moving_variance.assign_sub(
            (self.moving_variance - tf.stop_gradient(variance)) * rate)
        return y
