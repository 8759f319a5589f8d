"""Training runs in-process on tiny generated data: checkpoints, events, resume, NaN, eval."""

from __future__ import annotations

import json
import logging
import shutil

import numpy as np
import pytest
import tensorflow as tf

from odflow import checkpoints as ck
from odflow.errors import OdflowError
from odflow.evaluation.coco import METRIC_KEYS
from odflow.train.loop import TrainOptions, train
from tests.support.training import write_config

pytestmark = pytest.mark.slow

TRAIN_TAGS = {"Loss/classification_loss", "Loss/localization_loss", "Loss/regularization_loss",
              "Loss/total_loss", "learning_rate", "Loss/HardExampleMiner/NumPositives",
              "Loss/HardExampleMiner/NumNegatives"}


def options(tmp, config, **kwargs) -> TrainOptions:
    defaults = {"model_dir": str(tmp / "ckpt"), "pipeline_config_path": str(config),
                "log_every": 2, "checkpoint_every_steps": 2, "checkpoint_every_minutes": 0,
                "eval_every": -1, "seed": 3, "show_progress_bar": False}
    defaults.update(kwargs)
    return TrainOptions(**defaults)


def event_tags(directory) -> dict[str, list[int]]:
    from tensorflow.core.util import event_pb2

    tags: dict[str, list[int]] = {}
    for path in sorted(directory.glob("events.out.tfevents.*")):
        for record in tf.data.TFRecordDataset(str(path)):
            event = event_pb2.Event.FromString(record.numpy())
            for value in event.summary.value:
                tags.setdefault(value.tag, []).append(event.step)
    return tags


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """4 steps with moving averages, checkpoints every 2 steps, evaluation at the end."""
    tmp = tmp_path_factory.mktemp("trained")
    config = write_config(tmp, num_steps=4, use_moving_average=True,
                          eval_use_moving_averages=True)
    result = train(options(tmp, config, eval_every=0, metrics_json=str(tmp / "metrics.json")))
    return tmp, config, result


def test_run_writes_named_checkpoints_and_state_file(trained):
    tmp, _, result = trained
    model_dir = tmp / "ckpt"
    assert result.step == 4 and result.checkpoint == str(model_dir / "model.ckpt-4")
    assert ck.checkpoint_exists(model_dir / "model.ckpt-2")
    assert ck.read_state(model_dir).latest == "model.ckpt-4"
    assert tf.train.latest_checkpoint(str(model_dir)) == str(model_dir / "model.ckpt-4")
    names = dict(tf.train.list_variables(str(model_dir / "model.ckpt-4")))
    reader = tf.train.load_checkpoint(str(model_dir / "model.ckpt-4"))
    assert reader.get_tensor("global_step") == 4
    assert reader.get_variable_to_dtype_map()["global_step"] == tf.int64
    weights = "FeatureExtractor/MobilenetV1/Conv2d_0/weights"
    for name in (weights, f"{weights}/RMSProp", f"{weights}/RMSProp_1",
                 f"{weights}/ExponentialMovingAverage",
                 "FeatureExtractor/MobilenetV1/Conv2d_0/BatchNorm/moving_mean",
                 "BoxPredictor_0/ClassPredictor/biases/RMSProp"):
        assert name in names, name
    assert "FeatureExtractor/MobilenetV1/Conv2d_0/BatchNorm/moving_mean/RMSProp" not in names
    model_vars = [n for n in names if n.split("/")[-1] not in
                  ("RMSProp", "RMSProp_1", "ExponentialMovingAverage") and n != "global_step"]
    trainable = [n for n in model_vars if not n.endswith(("moving_mean", "moving_variance"))]
    # as in a TF1 training checkpoint: 3 extra entries per trainable variable + global_step
    assert len(names) == len(model_vars) + 3 * len(trainable) + 1
    assert names[weights] == [3, 3, 3, 8]  # depth 32 x 0.25


def test_run_writes_train_and_eval_events_and_metrics(trained):
    tmp, _, _ = trained
    model_dir = tmp / "ckpt"
    tags = event_tags(model_dir)
    assert TRAIN_TAGS <= set(tags)
    assert tags["Loss/total_loss"] == [1, 2, 4]  # the first step, then every 2
    assert "train_input_images" in tags
    eval_tags = event_tags(model_dir / "eval_0")
    assert set(METRIC_KEYS) <= set(eval_tags) and eval_tags[METRIC_KEYS[0]] == [4]
    payload = json.loads((tmp / "metrics.json").read_text())
    assert set(payload["metrics"]) == set(METRIC_KEYS)
    assert payload["global_step"] == 4 and payload["num_images"] == 3


def test_resume_restores_optimizer_state_and_continues(trained, tmp_path, caplog):
    src, config, _ = trained
    shutil.copytree(src / "ckpt", tmp_path / "ckpt")
    from odflow import config as config_lib
    from odflow.model import builder
    from odflow.train.state import TrainingState

    cfg = config_lib.load(config)
    state = TrainingState(builder.build(cfg.model, True), cfg.train_config.optimizer,
                          cfg.train_config)
    prefix = str(tmp_path / "ckpt/model.ckpt-4")
    state.restore(prefix)
    saved = ck.read_bundle(prefix)
    restored = {k: v.numpy() for k, v in state.named_tensors().items()}
    assert set(restored) == set(saved)
    for name, value in saved.items():
        np.testing.assert_array_equal(restored[name], value, err_msg=name)

    with caplog.at_level(logging.INFO):
        result = train(options(tmp_path, config, num_train_steps=6))
    assert "resumed from" in caplog.text and "at step 4" in caplog.text
    assert result.step == 6
    assert tf.train.load_checkpoint(result.checkpoint).get_tensor("global_step") == 6


def test_nothing_to_do_when_already_at_num_steps(trained, tmp_path, monkeypatch):
    src, config, _ = trained
    shutil.copytree(src / "ckpt", tmp_path / "ckpt")
    from odflow.model import builder

    def fail(*args, **kwargs):
        raise AssertionError("the model must not be built")

    monkeypatch.setattr(builder, "build", fail)
    result = train(options(tmp_path, config))
    assert result.step == 4 and result.checkpoint.endswith("model.ckpt-4")


def test_nan_loss_stops_and_keeps_last_good_checkpoint(trained, tmp_path, monkeypatch):
    src, config, _ = trained
    shutil.copytree(src / "ckpt", tmp_path / "ckpt")
    from odflow.train import step as step_module

    real = step_module.model_losses

    def poisoned(*args, **kwargs):
        losses = real(*args, **kwargs)
        losses[step_module.TOTAL] = losses[step_module.TOTAL] * np.float32("nan")
        return losses

    monkeypatch.setattr(step_module, "model_losses", poisoned)
    before = ck.read_bundle(tmp_path / "ckpt/model.ckpt-4")
    with pytest.raises(OdflowError, match=r"NaN or infinite at step 5.*model\.ckpt-4"):
        train(options(tmp_path, config, num_train_steps=8, checkpoint_every_steps=1))
    assert ck.read_state(tmp_path / "ckpt").latest == "model.ckpt-4"
    assert not ck.checkpoint_exists(tmp_path / "ckpt/model.ckpt-5")
    after = ck.read_bundle(tmp_path / "ckpt/model.ckpt-4")
    for name in before:
        np.testing.assert_array_equal(before[name], after[name])


def test_run_once_evaluates_the_moving_averages(trained, tmp_path):
    src, config, _ = trained
    from odflow.train.cli import main

    out = tmp_path / "eval" / "metrics.json"
    code = main(["--pipeline_config_path", str(config), "--checkpoint_dir", str(src / "ckpt"),
                 "--run_once", "--model_dir", str(tmp_path / "events"),
                 "--metrics_json", str(out)])
    assert code == 0
    payload = json.loads(out.read_text())
    assert payload["global_step"] == 4
    assert payload["checkpoint"] == str(src / "ckpt/model.ckpt-4")
    assert set(METRIC_KEYS) <= set(event_tags(tmp_path / "events/eval_0"))


def test_fine_tune_checkpoint_only_when_starting_fresh(trained, tmp_path, caplog):
    src, _, _ = trained
    config = write_config(tmp_path, num_steps=1,
                          fine_tune_checkpoint=str(src / "ckpt/model.ckpt-4"))
    with caplog.at_level(logging.INFO):
        train(options(tmp_path, config))
    assert "fine-tuning from" in caplog.text and "restored" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.INFO):
        result = train(options(tmp_path, config, num_train_steps=2))
    assert result.step == 2
    assert "fine-tuning from" not in caplog.text and "resumed from" in caplog.text


def test_fine_tune_checkpoint_errors(tmp_path):
    config = write_config(tmp_path, fine_tune_checkpoint=str(tmp_path / "nowhere/model.ckpt"))
    with pytest.raises(OdflowError, match="train_config.fine_tune_checkpoint.*nowhere"):
        train(options(tmp_path, config))
    unrelated = tmp_path / "other" / "model.ckpt"
    ck.write_bundle(unrelated, {"SomethingElse/weights": np.zeros([2], np.float32)})
    config = write_config(tmp_path, name="other.config", fine_tune_checkpoint=str(unrelated))
    with pytest.raises(OdflowError, match="nothing restored"):
        train(options(tmp_path, config, model_dir=str(tmp_path / "fresh")))


def test_train_step_traces_once(tmp_path):
    from odflow import config as config_lib
    from odflow.inputs import build_dataset
    from odflow.model import builder
    from odflow.train.state import TrainingState
    from odflow.train.step import build_train_step

    cfg = config_lib.load(write_config(tmp_path))
    state = TrainingState(builder.build(cfg.model, True), cfg.train_config.optimizer,
                          cfg.train_config)
    step = build_train_step(state, tf.distribute.get_strategy())
    batches = iter(build_dataset(
        cfg.train_input_reader, model_config=cfg.model, batch_size=2, is_training=True,
        augmentations=list(cfg.train_config.data_augmentation_options), seed=0))
    for _ in range(3):
        losses, learning_rate, finite = step(next(batches))
        assert bool(finite) and float(learning_rate) == pytest.approx(0.004)
        assert np.isfinite(float(losses["Loss/total_loss"]))
    assert step.experimental_get_tracing_count() == 1
    assert state.step == 3
