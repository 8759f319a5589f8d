"""The TF2 tutorial's two commands, ``model_main_tf2.py`` and ``exporter_main_v2.py``: their flags
mean the ``odflow train`` / ``odflow export`` command lines written out here by hand (from the
TF2 API's flag definitions: ``--checkpoint_dir`` set means evaluate; ``--checkpoint_every_n``
is the save interval in steps; ``--trained_checkpoint_dir`` is a directory).  The runs of the
scripts themselves are in test_workflow_tf2_families.py, on a trained TF2-family model."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from odflow.export.tf2_flags import export_args
from odflow.train.tf2_flags import build_parser, ignored_flags, train_args

REPO = Path(__file__).resolve().parents[1]


def test_training_command_of_the_tf2_tutorial() -> None:
    argv = ["--model_dir=models/my_ssd", "--pipeline_config_path=models/my_ssd/pipeline.config"]
    assert train_args(argv) == [
        "--model_dir", "models/my_ssd", "--pipeline_config_path", "models/my_ssd/pipeline.config",
        "--checkpoint_every_steps", "1000"]  # the TF2 API's default interval


def test_training_flags_map_onto_odflow_train() -> None:
    argv = ["--model_dir", "m", "--pipeline_config_path", "p.config", "--num_train_steps", "500",
            "--sample_1_of_n_eval_examples", "1", "--checkpoint_every_n", "50",
            "--alsologtostderr"]
    assert train_args(argv) == [
        "--model_dir", "m", "--pipeline_config_path", "p.config", "--num_train_steps", "500",
        "--sample_1_of_n_eval_examples", "1", "--checkpoint_every_steps", "50"]
    assert ignored_flags(build_parser().parse_args(argv)) == ["--alsologtostderr"]


def test_checkpoint_dir_means_evaluate_instead_of_training() -> None:
    argv = ["--model_dir=models/my_ssd", "--pipeline_config_path=p.config",
            "--checkpoint_dir=models/my_ssd", "--num_train_steps=9", "--use_tpu=false"]
    assert train_args(argv) == [
        "--model_dir", "models/my_ssd", "--pipeline_config_path", "p.config",
        "--checkpoint_dir", "models/my_ssd", "--run_once"]


def test_export_command_of_the_tf2_tutorial() -> None:
    argv = ["--input_type", "image_tensor",
            "--pipeline_config_path", "models/my_ssd/pipeline.config",
            "--trained_checkpoint_dir", "models/my_ssd",
            "--output_directory", "exported-models/my_model"]
    assert export_args(argv) == [
        "--input_type", "image_tensor", "--pipeline_config_path", "models/my_ssd/pipeline.config",
        "--trained_checkpoint_prefix", "models/my_ssd",
        "--output_directory", "exported-models/my_model"]


@pytest.mark.parametrize("script, missing", [
    ("model_main_tf2.py", "--model_dir"), ("exporter_main_v2.py", "--trained_checkpoint_dir")])
def test_scripts_say_what_is_missing_and_exit_non_zero(script: str, missing: str) -> None:
    done = subprocess.run([sys.executable, str(REPO / "scripts" / script),
                           "--pipeline_config_path", "p.config"], capture_output=True,
                          text=True, check=False, cwd="/")
    assert done.returncode == 2
    assert missing in done.stderr


@pytest.mark.slow  # imports TensorFlow in a subprocess
def test_a_missing_config_is_a_clear_error_from_the_tf2_script(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, str(REPO / "scripts" / "exporter_main_v2.py"),
                           "--input_type", "image_tensor",
                           "--pipeline_config_path", str(tmp_path / "nope.config"),
                           "--trained_checkpoint_dir", str(tmp_path),
                           "--output_directory", str(tmp_path / "out")],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 2
    assert "nope.config does not exist" in done.stderr
    assert not (tmp_path / "out").exists()
