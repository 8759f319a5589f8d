"""The sped-up training step trains exactly as the old one did (issue 20).

Two copies of the small SSD start from the same weights; one steps with today's
``odflow.train.step.build_train_step``, the other with the pre-issue-20 step kept in
``tests/support/reference_step.py``, on the same fixed batch.  After each step the losses and
the learning rate, and at the end every variable a checkpoint holds (weights, batch-norm
statistics, optimiser slots, moving averages, the global step) must agree within float32
rounding.  The hand-worked optimiser and EMA formulas are in ``test_train_optimizers.py``;
this test catches a faster path that drifts from them (a grouped or fused update reading a
stale value, a wrong decay, a skipped variable).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from odflow.inputs import build_dataset
from odflow.model import builder
from odflow.train.state import TrainingState
from odflow.train.step import build_train_step
from tests.support.reference_step import build_reference_train_step
from tests.support.training import make_config

pytestmark = pytest.mark.slow  # two small detectors traced and stepped: ~5-10 s per case

STEPS = 3


def _fixed_batch(cfg) -> dict:
    dataset = build_dataset(cfg.train_input_reader, model_config=cfg.model, augmentations=[],
                            batch_size=cfg.train_config.batch_size, is_training=True,
                            max_number_of_boxes=cfg.train_config.max_number_of_boxes, seed=3)
    return next(iter(dataset))


def _state(cfg, initial: dict[str, np.ndarray] | None) -> TrainingState:
    state = TrainingState(builder.build(cfg.model, is_training=True),
                          cfg.train_config.optimizer, cfg.train_config)
    if initial is not None:
        for name, variable in state.variables.items():
            variable.assign(initial[name])
        if state.ema is not None:
            state.ema.reset()
    return state


def _run(build, state, batch) -> list[dict[str, float]]:
    step = build(state, tf.distribute.get_strategy())
    history = []
    for _ in range(STEPS):
        losses, learning_rate, finite = step(batch)
        assert bool(finite)
        history.append({**{k: float(v) for k, v in losses.items()}, "lr": float(learning_rate)})
    return history


@pytest.mark.parametrize("optimizer", ["rms_prop", "adam"])
def test_train_step_matches_the_reference_step(tmp_path: Path, optimizer: str) -> None:
    # RMSProp with EMA is the tutorial's setting, Adam without it the demo's.
    cfg = make_config(tmp_path, batch_size=2, size=64, optimizer=optimizer,
                      use_moving_average=optimizer == "rms_prop", augment=False,
                      with_eval=False, learning_rate=0.01)
    cfg.train_config.optimizer.moving_average_decay = 0.9  # large EMA steps: visible drift
    batch = _fixed_batch(cfg)
    tf.keras.utils.set_random_seed(5)
    current = _state(cfg, None)
    initial = {name: v.numpy() for name, v in current.variables.items()}
    reference = _state(cfg, initial)
    if current.ema is not None:
        current.ema.reset()

    got = _run(build_train_step, current, batch)
    expected = _run(build_reference_train_step, reference, batch)

    for step, (mine, theirs) in enumerate(zip(got, expected, strict=True), start=1):
        assert mine.keys() == theirs.keys()
        for key in theirs:
            assert mine[key] == pytest.approx(theirs[key], rel=1e-5, abs=1e-6), (step, key)
    mine, theirs = current.named_tensors(), reference.named_tensors()
    assert mine.keys() == theirs.keys()
    moved = 0
    for name, value in theirs.items():
        np.testing.assert_allclose(mine[name].numpy(), value.numpy(), rtol=1e-5, atol=1e-6,
                                   err_msg=name)
        moved += name in initial and not np.array_equal(value.numpy(), initial[name])
    assert moved > 0.5 * len(current.trainable)  # the steps did train (not a vacuous pass)
    if current.ema is not None:  # and the averages moved off the weights they started at
        shadows = current.ema.named_variables()
        drifted = sum(not np.array_equal(theirs[name].numpy(), initial[name.rsplit("/", 1)[0]])
                      for name in shadows)
        assert drifted > 0.5 * len(shadows)
