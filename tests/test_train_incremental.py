"""Resume or start again: what ``train`` decides from the fingerprint beside the checkpoints.

The decision is made before the model is built, so these tests stop training there (the
builder raises) and look at what the run did to ``model_dir``; the checkpoints are written
directly with the checkpoint manager.
"""

from __future__ import annotations

import logging
import os

import numpy as np
import pytest

from odflow import checkpoints as ck
from odflow import config as config_lib
from odflow.errors import OdflowError
from odflow.train import fingerprint as fp
from odflow.train import workdir
from odflow.train.cli import main
from odflow.train.loop import TrainOptions, train
from tests.support.training import write_config


@pytest.fixture(autouse=True)
def _restore_logging():
    """``main`` points the root logger at the captured stderr of the test that ran it, which
    is closed afterwards: drop such handlers (not pytest's own subclasses) around each test."""
    handlers = [h for h in logging.root.handlers
                if type(h) not in (logging.StreamHandler, logging.FileHandler)]
    logging.root.handlers[:] = handlers
    yield
    logging.root.handlers[:] = handlers

class Built(Exception):
    """Raised instead of building the model: the decision has been made."""


@pytest.fixture
def no_model(monkeypatch):
    from odflow.model import builder

    def build(*args, **kwargs):
        raise Built()

    monkeypatch.setattr(builder, "build", build)


def trained_dir(tmp_path, steps=(2, 4), seed=3, **config_kwargs):
    """A model_dir as a run of ``config`` would leave it: fingerprint, checkpoints, events."""
    config = write_config(tmp_path, **config_kwargs)
    model_dir = tmp_path / "ckpt"
    model_dir.mkdir()
    fp.save(model_dir, fp.compute(config_lib.load(config), seed))
    manager = ck.CheckpointManager(model_dir)
    for step in steps:
        manager.save({"w": np.zeros([2], np.float32), "global_step": np.int64(step)}, step)
    (model_dir / "events.out.tfevents.1.host").write_bytes(b"events")
    return config, model_dir


def options(config, model_dir, **kwargs) -> TrainOptions:
    defaults = {"model_dir": str(model_dir), "pipeline_config_path": str(config),
                "eval_every": -1, "seed": 3, "show_progress_bar": False,
                "num_train_steps": 6}
    defaults.update(kwargs)
    return TrainOptions(**defaults)


def superseded(model_dir):
    return sorted((model_dir / workdir.SUPERSEDED).iterdir()) \
        if (model_dir / workdir.SUPERSEDED).exists() else []


def test_same_inputs_resume(tmp_path, no_model, caplog):
    config, model_dir = trained_dir(tmp_path)
    with pytest.raises(Built), caplog.at_level(logging.INFO):
        train(options(config, model_dir, num_train_steps=6))
    assert superseded(model_dir) == [] and ck.checkpoint_exists(model_dir / "model.ckpt-4")
    assert "not resuming" not in caplog.text


def test_raising_num_steps_is_the_same_run(tmp_path, no_model):
    config, model_dir = trained_dir(tmp_path, num_steps=4)
    write_config(tmp_path, num_steps=40)  # what config.yaml's train.num_steps changes
    with pytest.raises(Built):
        train(options(config, model_dir, num_train_steps=None))
    assert superseded(model_dir) == []


def test_changed_config_moves_the_checkpoints_and_starts_again(tmp_path, no_model, caplog):
    config, model_dir = trained_dir(tmp_path)
    write_config(tmp_path, learning_rate=0.001)
    with pytest.raises(Built), caplog.at_level(logging.WARNING):
        train(options(config, model_dir))
    [moved] = superseded(model_dir)
    assert {p.name for p in moved.iterdir()} == {
        "checkpoint", "fingerprint.json", "events.out.tfevents.1.host",
        "model.ckpt-2.index", "model.ckpt-2.data-00000-of-00001",
        "model.ckpt-4.index", "model.ckpt-4.data-00000-of-00001"}
    assert not workdir.has_checkpoints(model_dir)
    lines = [r.getMessage() for r in caplog.records if "not resuming" in r.getMessage()]
    assert len(lines) == 1
    assert ("pipeline config (train_config.optimizer.rms_prop_optimizer.learning_rate."
            "constant_learning_rate.learning_rate: 0.004 -> 0.001)") in lines[0]
    assert str(moved) in lines[0]
    # the new fingerprint labels the checkpoints this run will save
    assert fp.load(model_dir) == fp.compute(config_lib.load(config), 3)


def test_changed_records_or_seed_start_again(tmp_path, no_model, caplog):
    config, model_dir = trained_dir(tmp_path)
    os.utime(tmp_path / "val.record", (1e9, 1e9))  # touched, same content: no change
    with pytest.raises(Built):
        train(options(config, model_dir))
    assert superseded(model_dir) == []
    from tests.support.training import make_records

    make_records(tmp_path / "train.record", 6, seed=99)
    with pytest.raises(Built), caplog.at_level(logging.WARNING):
        train(options(config, model_dir, seed=4))
    assert len(superseded(model_dir)) == 1
    assert "train records; seed (3 -> 4)" in caplog.text


def test_nan_stopped_run_with_a_fixed_config_starts_again(tmp_path, no_model):
    # a NaN stops training without saving: the directory holds the checkpoints before it
    config, model_dir = trained_dir(tmp_path, learning_rate=1e4)
    write_config(tmp_path, learning_rate=0.004)
    with pytest.raises(Built):
        train(options(config, model_dir))
    assert len(superseded(model_dir)) == 1


def test_resume_and_restart_flags_force_either(tmp_path, no_model, caplog):
    config, model_dir = trained_dir(tmp_path)
    write_config(tmp_path, batch_size=4)
    with pytest.raises(Built), caplog.at_level(logging.WARNING):
        train(options(config, model_dir, resume=True))
    assert superseded(model_dir) == [] and "as --resume asks" in caplog.text
    assert "train_config.batch_size: 2 -> 4" in caplog.text
    assert fp.load(model_dir)["config"]["fields"]["train_config.batch_size"] == "4"
    with pytest.raises(Built):  # now labelled with the new inputs: resumes without the flag
        train(options(config, model_dir))
    assert superseded(model_dir) == []
    with pytest.raises(Built):
        train(options(config, model_dir, restart=True))
    assert len(superseded(model_dir)) == 1 and not workdir.has_checkpoints(model_dir)
    with pytest.raises(OdflowError, match="contradict"):
        train(options(config, model_dir, restart=True, resume=True))


def test_checkpoints_without_fingerprint_are_superseded(tmp_path, no_model, caplog):
    config, model_dir = trained_dir(tmp_path)
    (model_dir / fp.FILE_NAME).unlink()
    with pytest.raises(Built), caplog.at_level(logging.WARNING):
        train(options(config, model_dir))
    assert len(superseded(model_dir)) == 1
    assert f"there is no {fp.FILE_NAME} beside them" in caplog.text


def test_lower_num_steps_uses_the_kept_checkpoint(tmp_path, no_model):
    config, model_dir = trained_dir(tmp_path)
    result = train(options(config, model_dir, num_train_steps=2))
    assert result.step == 2 and result.checkpoint == str(model_dir / "model.ckpt-2")
    assert ck.read_state(model_dir).latest == "model.ckpt-4"  # nothing rewritten


def test_lower_num_steps_without_that_checkpoint_says_what_to_do(tmp_path, no_model, capsys):
    config, model_dir = trained_dir(tmp_path)
    code = main(["--model_dir", str(model_dir), "--pipeline_config_path", str(config),
                 "--num_train_steps", "3", "--eval_every", "-1", "--seed", "3"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert (f"training is to end at step 3 (--num_train_steps, else train_config.num_steps), "
            f"below step 4 of the latest checkpoint {model_dir / 'model.ckpt-4'}") in err
    assert "Set the number of steps to 4 or more" in err and "--restart" in err
    assert ck.checkpoint_exists(model_dir / "model.ckpt-4")  # nothing moved


@pytest.mark.slow
def test_changed_inputs_really_train_again_from_the_start(tmp_path, caplog):
    config, model_dir = trained_dir(tmp_path, augment=False)
    write_config(tmp_path, augment=False, learning_rate=0.001)
    with caplog.at_level(logging.INFO):
        result = train(options(config, model_dir, num_train_steps=1))  # below 4: not resumed
    assert result.step == 1 and "training from step 0 to 1" in caplog.text
    assert ck.read_bundle(model_dir / "model.ckpt-1")["global_step"] == 1
    [moved] = superseded(model_dir)
    assert ck.checkpoint_exists(moved / "model.ckpt-4")


def test_events_without_checkpoints_move_aside_on_a_fresh_start(tmp_path, no_model):
    config = write_config(tmp_path)
    model_dir = tmp_path / "ckpt"
    model_dir.mkdir()
    (model_dir / "events.out.tfevents.1.host").write_bytes(b"events of a run killed early")
    with pytest.raises(Built):
        train(options(config, model_dir))
    [moved] = superseded(model_dir)
    assert (moved / "events.out.tfevents.1.host").exists()
    assert fp.load(model_dir) is not None
