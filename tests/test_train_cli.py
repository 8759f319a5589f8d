"""``scripts/model_main.py``: flags, clear errors for bad inputs, Ctrl+C and resume."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from odflow import checkpoints as ck
from odflow.train.cli import build_parser, ignored_flags, main
from tests.support.training import MODEL_MAIN, REPO, subprocess_env, wait_for_log, write_config


def test_help_lists_the_tutorial_flags():
    text = build_parser().format_help()
    for flag in ("--model_dir", "--pipeline_config_path", "--num_train_steps",
                 "--checkpoint_dir", "--run_once", "--eval_every", "--seed",
                 "--keep_checkpoint_max", "--metrics_json", "--log_file", "--resume",
                 "--restart"):
        assert flag in text
    assert "--alsologtostderr" not in text  # accepted, but not advertised


def test_script_help_runs_without_install():
    result = subprocess.run([sys.executable, str(MODEL_MAIN), "--help"], capture_output=True,
                            text=True, cwd="/", check=False, timeout=120,
                            env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
    assert result.returncode == 0 and "--pipeline_config_path" in result.stdout


def test_unknown_flag_is_an_error_but_tf1_flags_are_ignored(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(["--pipeline_config_path", "x", "--modle_dir", "y"])
    assert exit_info.value.code == 2
    args = build_parser().parse_args(["--pipeline_config_path", "x", "--alsologtostderr",
                                      "--sample_1_of_n_eval_examples", "1", "--v=1"])
    assert ignored_flags(args) == ["--alsologtostderr", "--sample_1_of_n_eval_examples", "--v"]


def test_missing_train_record_names_field_and_pattern(tmp_path, capsys):
    config = write_config(tmp_path)
    (tmp_path / "train.record").unlink()
    code = main(["--model_dir", str(tmp_path / "ckpt"), "--pipeline_config_path", str(config)])
    err = capsys.readouterr().err
    assert code == 2
    assert "train_input_reader.tf_record_input_reader.input_path" in err
    assert str(tmp_path / "train.record") in err


def test_missing_eval_record_fails_before_training(tmp_path, capsys):
    config = write_config(tmp_path)
    (tmp_path / "val.record").unlink()
    code = main(["--model_dir", str(tmp_path / "ckpt"), "--pipeline_config_path", str(config)])
    err = capsys.readouterr().err
    assert code == 2 and "eval_input_reader" in err and "val.record" in err
    assert not (tmp_path / "ckpt" / "checkpoint").exists()


def test_config_without_eval_input(tmp_path, capsys):
    config = write_config(tmp_path, with_eval=False)
    code = main(["--pipeline_config_path", str(config), "--checkpoint_dir", str(tmp_path),
                 "--run_once"])
    err = capsys.readouterr().err
    assert code == 2 and "eval_input_reader" in err
    code = main(["--model_dir", str(tmp_path / "ckpt"), "--pipeline_config_path", str(config)])
    err = capsys.readouterr().err
    assert code == 2 and "eval_input_reader" in err and "--eval_every -1" in err


def test_checkpoint_prefix_that_does_not_exist(tmp_path, capsys):
    config = write_config(tmp_path)
    missing = tmp_path / "ckpt" / "model.ckpt-123"
    code = main(["--pipeline_config_path", str(config), "--checkpoint_path", str(missing),
                 "--run_once"])
    err = capsys.readouterr().err
    assert code == 2 and str(missing) in err and "does not exist" in err
    code = main(["--pipeline_config_path", str(config), "--checkpoint_dir", str(tmp_path),
                 "--run_once"])
    err = capsys.readouterr().err
    assert code == 2 and "no checkpoint in" in err


def test_zoo_state_file_in_model_dir_is_explained(tmp_path, capsys):
    config = write_config(tmp_path)
    model_dir = tmp_path / "ckpt"
    ck.write_bundle(model_dir / "model.ckpt", {"global_step": __import__("numpy").int64(0)})
    (model_dir / "checkpoint").write_text('model_checkpoint_path: "model.ckpt"\n')
    # Without a fingerprint such a directory is superseded; --resume insists on resuming it.
    code = main(["--model_dir", str(model_dir), "--pipeline_config_path", str(config),
                 "--resume"])
    err = capsys.readouterr().err
    assert code == 2 and "not a training checkpoint" in err


def test_unsupported_train_config_field_is_named(tmp_path, capsys):
    from odflow import config as config_lib

    path = write_config(tmp_path)
    cfg = config_lib.load(path)
    cfg.train_config.bias_grad_multiplier = 2.0
    config_lib.save(cfg, path)
    code = main(["--model_dir", str(tmp_path / "ckpt"), "--pipeline_config_path", str(path)])
    assert code == 2 and "train_config.bias_grad_multiplier" in capsys.readouterr().err


@pytest.mark.slow
def test_sigint_saves_the_current_step_and_a_rerun_continues(tmp_path):
    config = write_config(tmp_path, num_steps=100000, augment=False)
    model_dir = tmp_path / "ckpt"
    log_path = tmp_path / "train.log"
    command = [sys.executable, str(MODEL_MAIN), f"--model_dir={model_dir}",
               f"--pipeline_config_path={config}", "--alsologtostderr", "--log_every=1",
               "--checkpoint_every_steps=0", "--checkpoint_every_minutes=0",
               "--eval_every=-1", f"--log_file={log_path}"]
    process = subprocess.Popen(command, env=subprocess_env(), cwd=str(REPO),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_log(process, log_path, "step 3/100000", timeout=240)
        process.send_signal(signal.SIGINT)
        code = process.wait(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    assert code == 130
    reached = ck.step_of(ck.latest_checkpoint(model_dir))
    assert reached >= 3
    assert f"model.ckpt-{reached}" in log_path.read_text()

    target = reached + 2
    rerun = subprocess.run(command + [f"--num_train_steps={target}"], env=subprocess_env(),
                           cwd=str(REPO), capture_output=True, text=True, timeout=300, check=False)
    assert rerun.returncode == 0, rerun.stderr
    assert f"resumed from {model_dir / f'model.ckpt-{reached}'} at step {reached}" in \
        log_path.read_text()
    assert ck.latest_checkpoint(model_dir) == str(model_dir / f"model.ckpt-{target}")
    # already there: exits 0 at once, without building anything
    again = subprocess.run(command + [f"--num_train_steps={target}"], env=subprocess_env(),
                           cwd=str(REPO), capture_output=True, text=True, timeout=300, check=False)
    assert again.returncode == 0 and "nothing to do" in again.stderr
