"""The training step as it was before issue 20's speed work, kept as the reference.

``tests/test_train_step_equality.py`` holds the current ``odflow.train.step.build_train_step``
to it (same losses, weights, optimiser slots and moving averages after a few steps on a fixed
batch) and ``benchmarks/train_step.py --baseline`` times it beside the current step.  It is a
frozen copy of the old code path on purpose: do not "fix" it to follow later changes.
"""

from __future__ import annotations

from collections.abc import Callable

import tensorflow as tf

from odflow.train.state import TrainingState
from odflow.train.step import TOTAL, model_losses


def reference_ema_update(ema) -> None:
    """The old moving-average update: ``shadow.assign_sub((1 - decay) * (shadow - V))``."""
    strategy = tf.distribute.get_strategy()
    decay = tf.constant(ema.decay, tf.float32)

    def step(shadow, value):
        return shadow.assign_sub((1.0 - decay) * (shadow - value))

    for name, shadow in ema.shadows.items():
        strategy.extended.update(shadow, step, args=(ema.variables[name],), group=False)


def build_reference_train_step(state: TrainingState, strategy: tf.distribute.Strategy, *,
                               clip_norm: float = 0.0, add_regularization: bool = True
                               ) -> Callable[[dict], tuple[dict, tf.Tensor, tf.Tensor]]:
    """The old ``build_train_step``: ``(losses, learning_rate, finite)`` per batch."""
    names = list(state.trainable)
    variables = [state.trainable[n] for n in names]
    optimizer = state.optimizer

    def replica_step(batch: dict):
        with tf.GradientTape() as tape:
            losses = model_losses(state.model, batch, add_regularization)
        grads = tape.gradient(losses[TOTAL], variables,
                              unconnected_gradients=tf.UnconnectedGradients.ZERO)
        context = tf.distribute.get_replica_context()
        grads = context.all_reduce(tf.distribute.ReduceOp.MEAN, grads)
        losses = context.all_reduce(tf.distribute.ReduceOp.MEAN, losses)
        norm = tf.linalg.global_norm(grads)
        finite = tf.math.is_finite(losses[TOTAL]) & tf.math.is_finite(norm)
        if clip_norm > 0:
            scale = clip_norm / tf.maximum(norm, clip_norm)
            grads = [g * scale for g in grads]
        return losses, grads, finite

    def first(value):
        return strategy.experimental_local_results(value)[0]

    @tf.function
    def train_step(batch: dict):
        losses, grads, finite = strategy.run(replica_step, args=(batch,))
        losses = {key: first(value) for key, value in losses.items()}
        finite = first(finite)
        learning_rate = optimizer.learning_rate(state.global_step.read_value())

        def apply() -> tf.Tensor:
            for variable, grad, name in zip(variables, grads, names):
                strategy.extended.update(variable, optimizer.apply_one,
                                         args=(grad, learning_rate, *optimizer.slots[name]),
                                         group=False)
            optimizer.after_apply()
            if state.ema is not None:
                reference_ema_update(state.ema)
            state.global_step.assign_add(1)
            return tf.constant(True)

        tf.cond(finite, apply, lambda: tf.constant(False))
        return losses, learning_rate, finite

    return train_step
