"""Optimisers and learning-rate schedules from ``train_config.optimizer``, with TF1 semantics.

The zoo's model was trained with TF1's ``tf.train.RMSPropOptimizer``; Keras 3's ``RMSprop`` is
a different algorithm: it starts the mean square at 0 instead of 1, and puts epsilon outside the
square root (``g / (sqrt(ms) + eps)``) where TF1 puts it inside (``g / sqrt(ms + eps)``).  With
the configs' ``epsilon: 1.0`` the two give very different step sizes, so a config tuned for the
API would not train the same way under Keras.  We therefore apply updates with the same training
kernels TF1 used (``ResourceApplyRMSProp``, ``ResourceApplyMomentum``, ``ResourceApplyAdam``),
which also lets the slots carry TF1's names (``V/RMSProp``, ``V/RMSProp_1``, ``V/Momentum``,
``V/Adam``, ``V/Adam_1``) in our name-based checkpoints.

Schedules are plain functions of the (0-based) global step evaluated before the update, as
TF1's were; their formulas follow the API's ``learning_schedules`` documentation.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence

import tensorflow as tf

from odflow.errors import OdflowError

Schedule = Callable[[tf.Tensor], tf.Tensor]

# -- learning rates -----------------------------------------------------------------------------


def constant(rate: float) -> Schedule:
    def schedule(step: tf.Tensor) -> tf.Tensor:
        del step
        return tf.constant(rate, tf.float32)
    return schedule


def exponential_decay(initial: float, decay_steps: int, decay_factor: float,
                      staircase: bool = True, burnin_rate: float = 0.0, burnin_steps: int = 0,
                      min_rate: float = 0.0) -> Schedule:
    """``initial * factor^(step / decay_steps)``, flat ``burnin_rate`` before ``burnin_steps``.

    As upstream, the decay counts from the end of the burn-in, a burn-in rate of 0 means the
    initial rate, and the result never drops below ``min_rate``.
    """
    if decay_steps <= 0:
        raise OdflowError("exponential_decay_learning_rate.decay_steps must be positive")
    burnin = burnin_rate if burnin_rate else initial

    def schedule(step: tf.Tensor) -> tf.Tensor:
        step = tf.cast(step, tf.float32)
        exponent = (step - burnin_steps) / float(decay_steps)
        if staircase:
            exponent = tf.floor(exponent)
        decayed = initial * tf.pow(tf.constant(decay_factor, tf.float32), exponent)
        rate = tf.where(step < float(burnin_steps), tf.constant(burnin, tf.float32), decayed)
        return tf.maximum(rate, min_rate)
    return schedule


def manual_step(boundaries: Sequence[int], rates: Sequence[float],
                warmup: bool = False) -> Schedule:
    """Piecewise constant: ``rates[i]`` from ``boundaries[i-1]`` on (``rates[0]`` from 0).

    With ``warmup`` the first piece rises linearly from ``rates[0]`` to ``rates[1]`` over the
    first ``boundaries[0]`` steps instead of staying flat.
    """
    boundaries = [int(b) for b in boundaries]
    rates = [float(r) for r in rates]
    if any(b <= 0 for b in boundaries) or any(
            later <= earlier for earlier, later in itertools.pairwise(boundaries)):
        raise OdflowError("manual_step_learning_rate.schedule: the steps must be positive and "
                          f"strictly increasing, got {boundaries}")
    if len(rates) != len(boundaries) + 1:
        raise OdflowError("manual_step_learning_rate: need one rate per schedule entry")
    edges = tf.constant([0] + boundaries, tf.int64)
    values = tf.constant(rates, tf.float32)

    def schedule(step: tf.Tensor) -> tf.Tensor:
        step = tf.cast(step, tf.int64)
        index = tf.reduce_max(tf.where(step >= edges, tf.range(len(rates), dtype=tf.int64), 0))
        rate = tf.gather(values, index)
        if warmup and boundaries:
            slope = (rates[1] - rates[0]) / boundaries[0]
            ramp = rates[0] + slope * tf.cast(step, tf.float32)
            rate = tf.where(step < boundaries[0], ramp, rate)
        return rate
    return schedule


def cosine_decay(base: float, total_steps: int, warmup_rate: float = 0.0, warmup_steps: int = 0,
                 hold_base_rate_steps: int = 0) -> Schedule:
    """Linear warm-up to ``base``, an optional hold, then half a cosine down to 0 at the end."""
    if total_steps < warmup_steps:
        raise OdflowError("cosine_decay_learning_rate.total_steps must be at least warmup_steps")
    if warmup_steps > 0 and base < warmup_rate:
        raise OdflowError("cosine_decay_learning_rate.learning_rate_base must be at least "
                          "warmup_learning_rate")
    decay_span = float(max(total_steps - warmup_steps - hold_base_rate_steps, 1))

    def schedule(step: tf.Tensor) -> tf.Tensor:
        step = tf.cast(step, tf.float32)
        progress = (step - warmup_steps - hold_base_rate_steps) / decay_span
        rate = 0.5 * base * (1.0 + tf.cos(math.pi * progress))
        if hold_base_rate_steps > 0:
            rate = tf.where(step > warmup_steps + hold_base_rate_steps, rate, base)
        if warmup_steps > 0:
            slope = (base - warmup_rate) / warmup_steps
            rate = tf.where(step < warmup_steps, slope * step + warmup_rate, rate)
        return tf.where(step > total_steps, 0.0, rate)
    return schedule


def build_learning_rate(proto, field: str) -> Schedule:
    """The schedule a ``LearningRate`` message describes; ``field`` names it in errors."""
    kind = proto.WhichOneof("learning_rate")
    if kind == "constant_learning_rate":
        return constant(proto.constant_learning_rate.learning_rate)
    if kind == "exponential_decay_learning_rate":
        c = proto.exponential_decay_learning_rate
        return exponential_decay(c.initial_learning_rate, c.decay_steps, c.decay_factor,
                                 c.staircase, c.burnin_learning_rate, c.burnin_steps,
                                 c.min_learning_rate)
    if kind == "manual_step_learning_rate":
        c = proto.manual_step_learning_rate
        return manual_step([s.step for s in c.schedule],
                           [c.initial_learning_rate] + [s.learning_rate for s in c.schedule],
                           c.warmup)
    if kind == "cosine_decay_learning_rate":
        c = proto.cosine_decay_learning_rate
        return cosine_decay(c.learning_rate_base, c.total_steps, c.warmup_learning_rate,
                            c.warmup_steps, c.hold_base_rate_steps)
    raise OdflowError(f"{field}.learning_rate is not set; set one of constant_learning_rate, "
                      "exponential_decay_learning_rate, manual_step_learning_rate, "
                      "cosine_decay_learning_rate")


# -- optimisers ---------------------------------------------------------------------------------


class Optimizer:
    """Slots named as TF1 named them, and an update that matches TF1 bit for bit.

    ``build`` creates the slots (call it inside the distribution strategy's scope so they are
    mirrored like the variables); ``apply_one`` updates one variable and its slots and is what
    ``strategy.extended.update`` runs on each device.
    """

    kind = ""
    #: checkpoint suffixes of the per-variable slots, in ``apply_one`` argument order
    slot_suffixes: tuple[str, ...] = ()

    def __init__(self, learning_rate: Schedule):
        self.learning_rate = learning_rate
        self.slots: dict[str, list[tf.Variable]] = {}

    def _slot_initial(self, suffix: str, variable: tf.Variable) -> tf.Tensor:
        return tf.zeros(variable.shape, variable.dtype)

    def build(self, variables: dict[str, tf.Variable]) -> None:
        for name, variable in variables.items():
            self.slots[name] = [
                tf.Variable(self._slot_initial(suffix, variable), trainable=False,
                            name=f"{name}/{suffix}".replace(":", "_"))
                for suffix in self.slot_suffixes]

    def named_slots(self) -> dict[str, tf.Variable]:
        """Every slot and extra state under its TF1 checkpoint name."""
        return {f"{name}/{suffix}": slot
                for name, slots in self.slots.items()
                for suffix, slot in zip(self.slot_suffixes, slots)}

    def after_apply(self) -> None:
        """Advance state shared by all variables (Adam's beta powers); cross-replica context."""
        return

    def apply_one(self, variable, grad: tf.Tensor, lr: tf.Tensor, *slots) -> tf.Operation:
        raise NotImplementedError


class RMSProp(Optimizer):
    """TF1 RMSProp: ``ms = rho ms + (1-rho) g^2; mom = m mom + lr g / sqrt(ms + eps); v -= mom``.

    The mean square starts at 1, as in TF1.
    """

    kind = "rms_prop_optimizer"
    slot_suffixes = ("RMSProp", "RMSProp_1")

    def __init__(self, learning_rate: Schedule, decay: float, momentum: float, epsilon: float):
        super().__init__(learning_rate)
        self.decay, self.momentum, self.epsilon = decay, momentum, epsilon

    def _slot_initial(self, suffix: str, variable: tf.Variable) -> tf.Tensor:
        if suffix == "RMSProp":
            return tf.ones(variable.shape, variable.dtype)
        return tf.zeros(variable.shape, variable.dtype)

    def apply_one(self, variable, grad, lr, ms, mom):
        return tf.raw_ops.ResourceApplyRMSProp(
            var=variable.handle, ms=ms.handle, mom=mom.handle, lr=lr,
            rho=tf.constant(self.decay, tf.float32),
            momentum=tf.constant(self.momentum, tf.float32),
            epsilon=tf.constant(self.epsilon, tf.float32), grad=grad)


class Momentum(Optimizer):
    """TF1 momentum: ``acc = m acc + g; v -= lr acc``."""

    kind = "momentum_optimizer"
    slot_suffixes = ("Momentum",)

    def __init__(self, learning_rate: Schedule, momentum: float):
        super().__init__(learning_rate)
        self.momentum = momentum

    def apply_one(self, variable, grad, lr, accumulator):
        return tf.raw_ops.ResourceApplyMomentum(
            var=variable.handle, accum=accumulator.handle, lr=lr, grad=grad,
            momentum=tf.constant(self.momentum, tf.float32))


class Adam(Optimizer):
    """TF1 Adam (beta1 0.9, beta2 0.999); ``beta1_power``/``beta2_power`` are checkpointed too."""

    kind = "adam_optimizer"
    slot_suffixes = ("Adam", "Adam_1")
    beta1, beta2 = 0.9, 0.999

    def __init__(self, learning_rate: Schedule, epsilon: float):
        super().__init__(learning_rate)
        self.epsilon = epsilon
        self.beta1_power: tf.Variable | None = None
        self.beta2_power: tf.Variable | None = None

    def build(self, variables: dict[str, tf.Variable]) -> None:
        super().build(variables)
        self.beta1_power = tf.Variable(self.beta1, dtype=tf.float32, trainable=False,
                                       name="beta1_power")
        self.beta2_power = tf.Variable(self.beta2, dtype=tf.float32, trainable=False,
                                       name="beta2_power")

    def named_slots(self) -> dict[str, tf.Variable]:
        named = super().named_slots()
        named["beta1_power"] = self.beta1_power
        named["beta2_power"] = self.beta2_power
        return named

    def apply_one(self, variable, grad, lr, m, v):
        return tf.raw_ops.ResourceApplyAdam(
            var=variable.handle, m=m.handle, v=v.handle,
            beta1_power=self.beta1_power.read_value(), beta2_power=self.beta2_power.read_value(),
            lr=lr, beta1=tf.constant(self.beta1, tf.float32),
            beta2=tf.constant(self.beta2, tf.float32),
            epsilon=tf.constant(self.epsilon, tf.float32), grad=grad)

    def after_apply(self) -> None:
        """TF1 advances the beta powers once per step, after every variable was updated."""
        self.beta1_power.assign(self.beta1_power * self.beta1)
        self.beta2_power.assign(self.beta2_power * self.beta2)


def build_optimizer(optimizer_config) -> Optimizer:
    """The optimiser ``train_config.optimizer`` describes."""
    kind = optimizer_config.WhichOneof("optimizer")
    field = f"train_config.optimizer.{kind}"
    if kind == "rms_prop_optimizer":
        c = optimizer_config.rms_prop_optimizer
        return RMSProp(build_learning_rate(c.learning_rate, field),
                       c.decay, c.momentum_optimizer_value, c.epsilon)
    if kind == "momentum_optimizer":
        c = optimizer_config.momentum_optimizer
        return Momentum(build_learning_rate(c.learning_rate, field), c.momentum_optimizer_value)
    if kind == "adam_optimizer":
        c = optimizer_config.adam_optimizer
        return Adam(build_learning_rate(c.learning_rate, field), c.epsilon)
    raise OdflowError("train_config.optimizer is not set; set rms_prop_optimizer, "
                      "momentum_optimizer or adam_optimizer")
