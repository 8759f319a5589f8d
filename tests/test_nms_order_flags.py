"""The NMS clipping order (``--clip_before_nms``, ``postprocess.clip_before_nms``) reaches the
model that training's evaluation, ``odflow eval`` and the export build.

The order's effect on detections is tested by hand-worked cases in test_model_postprocess.py;
here each entry point is followed to ``builder.build_pipeline``, which is stopped there.
"""

from __future__ import annotations

import numpy as np
import pytest

from odflow import checkpoints
from odflow.export import cli as export_cli
from odflow.model import builder
from odflow.train import cli as train_cli
from tests.support.training import make_config, write_config


class Built(Exception):
    """Raised by the stand-in builder: the entry point got as far as building the model."""


@pytest.fixture
def built_with(monkeypatch: pytest.MonkeyPatch) -> list[dict]:
    calls: list[dict] = []

    def build_pipeline(config, is_training, **options):
        calls.append({"is_training": is_training, **options})
        raise Built

    monkeypatch.setattr(builder, "build_pipeline", build_pipeline)
    return calls


@pytest.mark.parametrize(("flags", "expected"), [
    ([], False), (["--clip_before_nms"], True), (["--clip_before_nms", "true"], True),
    (["--clip_before_nms=false"], False), (["--clip_before_nms", "TRUE"], True),
])
def test_every_command_parses_the_flag(flags: list[str], expected: bool) -> None:
    train = train_cli.build_parser().parse_args(["--pipeline_config_path", "p", *flags])
    evaluate = train_cli.build_eval_parser().parse_args(
        ["--pipeline_config_path", "p", "--checkpoint_dir", "c", *flags])
    export = export_cli.parse_args(["--pipeline_config_path", "p", "--trained_checkpoint_prefix",
                                    "c", "--output_directory", "o", *flags])
    assert train.clip_before_nms is evaluate.clip_before_nms is export.clip_before_nms is expected


def test_a_value_other_than_true_or_false_is_refused(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as stop:
        export_cli.parse_args(["--pipeline_config_path", "p", "--trained_checkpoint_prefix", "c",
                               "--output_directory", "o", "--clip_before_nms", "maybe"])
    assert stop.value.code == 2
    assert "--clip_before_nms: expected true or false, not 'maybe'" in capsys.readouterr().err


@pytest.mark.parametrize("flags", [[], ["--clip_before_nms"]])
def test_training_builds_its_model_with_the_order(tmp_path, built_with, flags) -> None:
    config = write_config(tmp_path)
    with pytest.raises(Built):
        train_cli.run(["--model_dir", str(tmp_path / "ckpt"), "--pipeline_config_path",
                       str(config), "--eval_every", "0", *flags])
    assert built_with == [{"is_training": True, "clip_before_nms": bool(flags)}]


@pytest.mark.parametrize("flags", [[], ["--clip_before_nms", "true"]])
def test_eval_builds_its_model_with_the_order(tmp_path, built_with, flags) -> None:
    config = write_config(tmp_path)
    checkpoints.write_bundle(tmp_path / "model.ckpt-3", {"global_step": np.int64(3)})
    with pytest.raises(Built):
        train_cli.run_eval(["--pipeline_config_path", str(config), "--checkpoint_path",
                            str(tmp_path / "model.ckpt-3"), *flags])
    assert built_with == [{"is_training": False, "clip_before_nms": bool(flags)}]


@pytest.mark.parametrize("flags", [[], ["--clip_before_nms"]])
def test_export_builds_its_model_with_the_order(tmp_path, built_with, flags) -> None:
    config = write_config(tmp_path)
    checkpoints.write_bundle(tmp_path / "model.ckpt-3", {"global_step": np.int64(3)})
    with pytest.raises(Built):
        export_cli.run(["--pipeline_config_path", str(config), "--trained_checkpoint_prefix",
                        str(tmp_path / "model.ckpt-3"), "--output_directory",
                        str(tmp_path / "exported"), *flags])
    assert built_with == [{"is_training": False, "clip_before_nms": bool(flags)}]


@pytest.mark.slow
def test_the_built_model_suppresses_with_the_order(tmp_path) -> None:
    model_config = make_config(tmp_path).model
    default = builder.build(model_config, is_training=False)
    zoo_2018 = builder.build(model_config, is_training=False, clip_before_nms=True)
    assert default.non_max_suppression.keywords["clip_before_nms"] is False
    assert zoo_2018.non_max_suppression.keywords["clip_before_nms"] is True
