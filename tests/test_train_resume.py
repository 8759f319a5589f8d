"""Resume at the exact step with the same optimizer state, through the public CLI.

A deterministic run of N steps is the reference; the same run stopped midway (SIGTERM, as a
SLURM time limit sends; or kill -9 right after a checkpoint, as an OOM killer does) and then
started again must end with a bit-identical final checkpoint: weights, optimizer slots, EMA
and step.  Only the CLI and the checkpoint files are used, so the tests hold whatever the
training package does inside.
"""

from __future__ import annotations

import signal
from pathlib import Path

import numpy as np
import pytest

from tests.support import tiny_training as tt

pytestmark = pytest.mark.slow

NUM_STEPS = 8


def _reference(directory: Path, num_train: int) -> dict[str, np.ndarray]:
    config = tt.write_config(directory, num_train=num_train, num_steps=NUM_STEPS)
    model_dir = directory / "uninterrupted"
    result = tt.run(tt.train_command(config, model_dir))
    assert result.returncode == 0, result.stderr[-3000:]
    assert tt.latest_step(model_dir) == NUM_STEPS
    return tt.checkpoint_tensors(model_dir / f"model.ckpt-{NUM_STEPS}")


@pytest.fixture(scope="module")
def one_image(tmp_path_factory):
    """One training image: every batch is the same, so the data stream cannot differ between
    an interrupted and an uninterrupted run; what remains is model, optimizer, EMA and step."""
    directory = tmp_path_factory.mktemp("one_image")
    return directory, _reference(directory, num_train=1)


def _assert_identical(reference: dict[str, np.ndarray], resumed: dict[str, np.ndarray]) -> None:
    assert sorted(resumed) == sorted(reference)
    different = [name for name in reference
                 if not np.array_equal(reference[name], resumed[name])]
    assert not different, f"{len(different)} of {len(reference)} tensors differ: {different[:10]}"


def _interrupt_and_resume(directory: Path, name: str, signum: int) -> tuple[int, int | None]:
    config = directory / "pipeline.config"
    model_dir = directory / name
    command = tt.train_command(config, model_dir)
    process = tt.start_and_wait_for_checkpoint(command, model_dir, step=2)
    process.send_signal(signum)
    code = process.wait(timeout=300)
    stopped = tt.latest_step(model_dir)
    result = tt.run(command)
    assert result.returncode == 0, result.stderr[-3000:]
    assert tt.latest_step(model_dir) == NUM_STEPS
    return code, stopped


def test_checkpoint_holds_slots_and_moving_averages(one_image):
    """The comparison below covers the optimizer state and the EMA, not only the weights
    (TF1 names: ``<var>/RMSProp`` and ``<var>/RMSProp_1`` slots,
    ``<var>/ExponentialMovingAverage``)."""
    _, reference = one_image
    weight = "FeatureExtractor/MobilenetV1/Conv2d_0/weights"
    assert {weight, weight + "/RMSProp", weight + "/RMSProp_1",
            weight + "/ExponentialMovingAverage"} <= set(reference), sorted(reference)[:20]
    assert "global_step" in reference and int(reference["global_step"]) == NUM_STEPS
    # Training moved them: equal tensors below are not equal because nothing changed.
    assert np.any(reference[weight + "/RMSProp"] != 0)
    assert not np.array_equal(reference[weight], reference[weight + "/ExponentialMovingAverage"])


def test_sigterm_midway_then_resume_is_bit_identical(one_image):
    directory, reference = one_image
    code, stopped = _interrupt_and_resume(directory, "sigterm", signal.SIGTERM)
    assert code == 128 + signal.SIGTERM
    assert stopped is not None and 2 <= stopped < NUM_STEPS, stopped
    _assert_identical(reference, tt.checkpoint_tensors(directory / "sigterm" /
                                                       f"model.ckpt-{NUM_STEPS}"))


def test_kill_9_after_a_save_then_resume_is_bit_identical(one_image):
    directory, reference = one_image
    code, stopped = _interrupt_and_resume(directory, "sigkill", signal.SIGKILL)
    assert code == -signal.SIGKILL
    assert stopped is not None and 2 <= stopped < NUM_STEPS, stopped
    _assert_identical(reference, tt.checkpoint_tensors(directory / "sigkill" /
                                                       f"model.ckpt-{NUM_STEPS}"))


def test_resume_with_several_images_continues_the_same_data_stream(tmp_path):
    reference = _reference(tmp_path, num_train=6)
    model_dir = tmp_path / "stopped_at_4"
    command = tt.train_command(tmp_path / "pipeline.config", model_dir)
    first = tt.run(command + ["--num_train_steps=4"])
    assert first.returncode == 0, first.stderr[-3000:]
    assert tt.latest_step(model_dir) == 4
    second = tt.run(command)
    assert second.returncode == 0, second.stderr[-3000:]
    _assert_identical(reference, tt.checkpoint_tensors(model_dir / f"model.ckpt-{NUM_STEPS}"))
