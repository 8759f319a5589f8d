"""``odflow <command>``: every subcommand is wired, and user errors come out once, as a line."""

from __future__ import annotations

import importlib

import pytest

from odflow import cli


def test_every_command_has_its_function_and_help(capsys):
    for name, (module, function, _) in cli.COMMANDS.items():
        assert callable(getattr(importlib.import_module(module), function)), name
        with pytest.raises(SystemExit) as exit_info:  # argparse's --help
            cli.main([name, "--help"])
        assert exit_info.value.code == 0, name
        assert "usage:" in capsys.readouterr().out, name
    cli.main(["--help"])
    listed = capsys.readouterr().out
    for name in ("data", "config", "train", "eval", "export", "detect", "zoo"):
        assert f"\n  {name} " in listed


def test_a_user_error_is_one_line_without_traceback(tmp_path, capsys):
    code = cli.main(["config", "show", str(tmp_path / "missing.config")])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert err.startswith("error: ") and err.count("error: ") == 1 and "missing.config" in err


def test_config_patch_counts_examples_and_sets_num_steps(tmp_path):
    """``odflow config patch`` does what the workflow's alias asks of it (one patch tool)."""
    from pathlib import Path

    from odflow.config.cli import patch_pipeline_config_args

    template = (Path(__file__).parent / "fixtures/reference/sample_configs/"
                "ssd_mobilenet_v1_coco.config")
    argv = patch_pipeline_config_args([
        "--template", str(template), "--output", "out.config", "--label-map", "lm.pbtxt",
        "--train-input", "t.record", "--eval-input", "v.record", "--fine-tune-checkpoint",
        "ckpt/model.ckpt", "--num-steps", "7", "--set", "a.b=1", "c.d=2"])
    assert argv == ["patch", str(template), "--output", "out.config",
                    "--num-classes-from-label-map", "--label-map", "lm.pbtxt",
                    "--train-input", "t.record", "--eval-input", "v.record",
                    "--fine-tune-checkpoint", "ckpt/model.ckpt",
                    "--fine-tune-checkpoint-type", "detection", "--count-examples",
                    "--num-steps", "7", "--set", "a.b=1", "--set", "c.d=2"]
