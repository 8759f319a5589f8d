"""Exponential moving average of the trainable weights (``optimizer.use_moving_average``).

Upstream wrapped the optimiser in TF1's ``MovingAverageOptimizer``: after every update each
trainable variable V has a shadow ``V/ExponentialMovingAverage`` updated as
``shadow -= (1 - decay) * (shadow - V)`` with a constant decay (no ``num_updates`` ramp).
Evaluation and export read the shadows instead of the raw weights when
``eval_config.use_moving_averages`` is true.

One deliberate difference: TF1 initialised the shadows from the variables' *initialisers*, so
after fine-tuning from the zoo the average started at random weights and needed tens of
thousands of steps to forget them.  We start the shadows at the weights actually in use when
training begins (after the fine-tune checkpoint was restored).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import tensorflow as tf

SUFFIX = "ExponentialMovingAverage"


class MovingAverage:
    def __init__(self, variables: dict[str, tf.Variable], decay: float):
        """Create the shadows (inside the strategy's scope, so they are mirrored too)."""
        self.decay = float(decay)
        self.variables = dict(variables)
        self.shadows = {
            name: tf.Variable(variable.read_value(), trainable=False, name=f"{name}/{SUFFIX}")
            for name, variable in self.variables.items()}

    def named_variables(self) -> dict[str, tf.Variable]:
        """The shadows under their TF1 checkpoint names ``V/ExponentialMovingAverage``."""
        return {f"{name}/{SUFFIX}": shadow for name, shadow in self.shadows.items()}

    def reset(self) -> None:
        """Make every shadow equal to its variable (used after a fine-tune restore)."""
        for name, shadow in self.shadows.items():
            shadow.assign(self.variables[name].read_value())

    def update(self) -> None:
        """One averaging step; call in cross-replica context after the optimiser's update.

        ``shadow -= (1 - decay) * (shadow - V)`` is plain gradient descent on the shadow with
        step ``1 - decay`` and "gradient" ``shadow - V``, so each shadow is updated by one
        ``ResourceApplyGradientDescent`` kernel after the subtraction, instead of a multiply
        and an ``assign_sub``: one op fewer per variable (hundreds per step), the same
        arithmetic (``tests/test_train_step_equality.py`` holds it to the old code).
        """
        strategy = tf.distribute.get_strategy()
        rate = tf.constant(1.0, tf.float32) - tf.constant(self.decay, tf.float32)

        def step(shadow, value):
            return tf.raw_ops.ResourceApplyGradientDescent(
                var=shadow.handle, alpha=rate, delta=shadow.read_value() - value)

        for name, shadow in self.shadows.items():
            strategy.extended.update(shadow, step, args=(self.variables[name],), group=False)


@contextlib.contextmanager
def swapped_in(targets: dict[str, tf.Variable], values: dict[str, tf.Variable]) -> Iterator[None]:
    """Temporarily give ``targets[name]`` the value of ``values[name]`` (evaluation with EMA)."""
    saved = {name: tf.identity(targets[name].read_value()) for name in values}
    for name, value in values.items():
        targets[name].assign(value.read_value())
    try:
        yield
    finally:
        for name, value in saved.items():
            targets[name].assign(value)
