"""The best checkpoint (odflow.train.best): kept past pruning, published, chosen for export.

The mAP of each evaluation is scripted (the COCO runner is replaced), so that the last
checkpoint is certainly worse than an earlier one; which checkpoint is which is read back
from the files (their ``global_step`` tensor), not from the code under test.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from odflow import checkpoints as ck
from odflow.errors import OdflowError
from odflow.evaluation.coco import METRIC_KEYS
from odflow.train import workdir
from odflow.train.best import METRIC, BestCheckpoint, choose_metrics

MAP = "DetectionBoxes_Precision/mAP"


class FakeEvaluator:
    """What BestCheckpoint needs of a CocoEvaluator: write_json in its layout."""

    def __init__(self, value: float):
        self.value = value

    def write_json(self, path, extra=None):
        payload = {"metrics": dict.fromkeys(METRIC_KEYS, self.value), **(extra or {})}
        Path(path).write_text(json.dumps(payload))


def save(manager: ck.CheckpointManager, step: int) -> str:
    return manager.save({"global_step": np.int64(step), "w": np.full(3, step, np.float32)},
                        step)


def global_step(prefix) -> int:
    return int(ck.read_bundle(prefix)["global_step"])


def test_best_survives_pruning_ties_keep_the_earlier_and_it_is_published(tmp_path):
    model_dir = tmp_path / "ckpt"
    model_dir.mkdir()
    manager = ck.CheckpointManager(model_dir, max_to_keep=1)
    best = BestCheckpoint(model_dir)
    kept = [best.consider(step, {MAP: value}, save(manager, step), FakeEvaluator(value))
            for step, value in ((2, 0.2), (4, 0.5), (6, 0.5), (8, 0.3))]
    assert kept == [True, True, False, False]
    assert not ck.checkpoint_exists(model_dir / "model.ckpt-4")  # pruned by the manager
    assert global_step(model_dir / "best/model.ckpt-4") == 4
    assert not ck.checkpoint_exists(model_dir / "best/model.ckpt-2")  # the older best went
    published = best.publish(tmp_path / "metrics_best.json")
    assert published == model_dir / "best/model.ckpt" and global_step(published) == 4
    payload = json.loads((tmp_path / "metrics_best.json").read_text())
    assert payload["global_step"] == 4 and payload["metrics"][METRIC] == 0.5
    assert payload["trained_checkpoint"] == str(model_dir / "model.ckpt-4")
    # A resumed run (new process) knows the best so far: 0.45 does not replace it.
    again = BestCheckpoint(model_dir)
    assert (again.step, again.value) == (4, 0.5)
    assert not again.consider(10, {MAP: 0.45}, save(manager, 10), FakeEvaluator(0.45))
    assert again.consider(12, {MAP: 0.6}, save(manager, 12), FakeEvaluator(0.6))
    assert global_step(again.publish(tmp_path / "m.json")) == 12


def test_starting_again_moves_the_best_to_superseded(tmp_path):
    model_dir = tmp_path / "ckpt"
    model_dir.mkdir()
    manager = ck.CheckpointManager(model_dir)
    BestCheckpoint(model_dir).consider(2, {MAP: 0.1}, save(manager, 2), FakeEvaluator(0.1))
    moved = workdir.supersede(model_dir)
    assert (moved / "best/model.ckpt-2.index").is_file()
    assert not any((model_dir / "best").iterdir())
    assert BestCheckpoint(model_dir).step is None


def test_publish_without_an_evaluation_is_an_error(tmp_path):
    with pytest.raises(OdflowError, match="no best checkpoint"):
        BestCheckpoint(tmp_path).publish(tmp_path / "m.json")


def test_choose_metrics_names_the_exported_step(tmp_path):
    last, best = tmp_path / "last.json", tmp_path / "best.json"
    last.write_text(json.dumps({"metrics": {MAP: 0.3}, "global_step": 8}))
    best.write_text(json.dumps({"metrics": {MAP: 0.5}, "global_step": 4}))
    chosen = choose_metrics(last, best, "best", tmp_path / "metrics.json")
    assert json.loads((tmp_path / "metrics.json").read_text()) == chosen
    assert chosen["metrics"][MAP] == 0.5 and chosen["global_step"] == 4
    assert chosen["exported"] == {"checkpoint": "best", "global_step": 4, "last_step": 8,
                                  "best_step": 4, "best_mAP": 0.5}
    chosen = choose_metrics(last, best, "last", tmp_path / "metrics.json")
    assert chosen["metrics"][MAP] == 0.3 and chosen["exported"]["global_step"] == 8
    best.write_text("{}")
    with pytest.raises(OdflowError, match="not an odflow metrics JSON"):
        choose_metrics(last, best, "best", tmp_path / "metrics.json")


@pytest.mark.slow
def test_training_keeps_and_publishes_the_best_evaluation(tmp_path, monkeypatch):
    """2 steps, evaluated at 1 and 2 scoring 0.5 and 0.3, one checkpoint kept: the best
    (step 1, pruned from ckpt/) is published for export; metrics.json with
    export.checkpoint best says step 1."""
    from odflow.evaluation import coco
    from odflow.train.loop import TrainOptions, train
    from tests.support.training import write_config

    scores = iter([0.5, 0.3])
    monkeypatch.setitem(coco._RUNNERS, "faster",
                        lambda gt, dt: (np.full(12, next(scores)), None))
    config = write_config(tmp_path, num_steps=2, num_train=2, num_eval=1, size=64,
                          augment=False)
    model_dir = tmp_path / "ckpt"
    train(TrainOptions(model_dir=str(model_dir), pipeline_config_path=str(config),
                       eval_every=1, checkpoint_every_steps=1, checkpoint_every_minutes=0,
                       keep_checkpoint_max=1, seed=1, show_progress_bar=False,
                       metrics_json=str(tmp_path / "last.json"),
                       best_metrics_json=str(tmp_path / "best.json")))
    assert ck.checkpoints_in(model_dir) == ["model.ckpt-2"]
    assert global_step(model_dir / "best/model.ckpt") == 1
    last = json.loads((tmp_path / "last.json").read_text())
    assert last["global_step"] == 2 and last["metrics"][MAP] == pytest.approx(0.3)
    chosen = choose_metrics(tmp_path / "last.json", tmp_path / "best.json", "best",
                            tmp_path / "metrics.json")
    assert chosen["exported"] == {"checkpoint": "best", "global_step": 1, "last_step": 2,
                                  "best_step": 1, "best_mAP": pytest.approx(0.5)}
    assert chosen["metrics"][MAP] == pytest.approx(0.5)
