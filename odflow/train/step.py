"""One training step as a ``tf.function``: preprocess -> predict -> loss -> gradients -> apply.

The step runs on every replica of the strategy (one on a CPU or a single GPU, one per GPU with
``MirroredStrategy``).  Gradients and losses are averaged across replicas inside the replica
function, so each replica then holds the same values and the update can be applied to each
device's copy of the variables with ``strategy.extended.update``.  A step whose loss or
gradients are not finite applies nothing: the variables stay as they were after the last good
step, and the loop stops with an error.
"""

from __future__ import annotations

from collections.abc import Callable

import tensorflow as tf

from odflow.train.state import TrainingState

TOTAL = "Loss/total_loss"
REGULARIZATION = "Loss/regularization_loss"
LEARNING_RATE = "learning_rate"
GROUNDTRUTH_KEYS = ("groundtruth_boxes", "groundtruth_classes", "num_groundtruth_boxes")


def is_loss(tag: str) -> bool:
    """Loss terms add up to the total; other entries (miner counts) are only reported."""
    return tag.endswith("_loss") and tag != TOTAL


def model_losses(model, batch: dict, add_regularization: bool,
                 training: bool = True) -> dict[str, tf.Tensor]:
    """The loss dict of one batch, with regularisation and total, under the upstream tags."""
    preprocessed, true_shapes = model.preprocess(batch["image"])
    predictions = model.predict(preprocessed, training=training)
    del true_shapes  # the loss needs only the normalised boxes
    groundtruth = {key: batch[key] for key in GROUNDTRUTH_KEYS}
    losses = dict(model.loss(predictions, groundtruth, with_summaries=True))
    if add_regularization:
        losses[REGULARIZATION] = tf.convert_to_tensor(model.regularization_loss(), tf.float32)
    losses[TOTAL] = tf.add_n([tf.cast(v, tf.float32) for k, v in losses.items() if is_loss(k)])
    return {key: tf.cast(value, tf.float32) for key, value in losses.items()}


def build_train_step(state: TrainingState, strategy: tf.distribute.Strategy, *,
                     clip_norm: float = 0.0, add_regularization: bool = True
                     ) -> Callable[[dict], tuple[dict, tf.Tensor, tf.Tensor]]:
    """A ``tf.function`` mapping a (distributed) batch to ``(losses, learning_rate, finite)``."""
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
            # Clipping by the global norm, as model_main's optimize_loss did.
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
                state.ema.update()
            state.global_step.assign_add(1)
            return tf.constant(True)

        tf.cond(finite, apply, lambda: tf.constant(False))
        return losses, learning_rate, finite

    return train_step
