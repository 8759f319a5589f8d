"""``python -m odflow.config {patch,check,show}``: outputs and exit codes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from odflow import config, label_map
from odflow.config.cli import main

FIXTURES = Path(__file__).parent / "fixtures"
SAMPLE = FIXTURES / "reference/sample_configs/ssd_mobilenet_v1_coco.config"
SEED_PATCHED = FIXTURES / "seed/ssd_mobilenet_v1_coco_patched.config"


def test_patch_reproduces_the_seed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    label_map.write("datasets/label_map.pbtxt", ["face"])
    output = tmp_path / "ckpt/ssd_mobilenet_v1_coco.config"
    code = main(["patch", str(SAMPLE), "-o", str(output), "--num-classes", "1",
                 "--fine-tune-checkpoint", "ckpt/model.ckpt",
                 "--train-input", "datasets/train.record", "--eval-input", "datasets/val.record",
                 "--label-map", "datasets/label_map.pbtxt", "--num-examples", "3226"])
    assert code == 0
    assert config.load(output) == config.load(SEED_PATCHED)


def test_patch_with_overrides_and_label_map_classes(tmp_path: Path) -> None:
    lm = tmp_path / "label_map.pbtxt"
    label_map.write(lm, ["a", "b", "c"])
    output = tmp_path / "out.config"
    assert main(["patch", str(SAMPLE), "-o", str(output), "--num-classes-from-label-map",
                 "--label-map", str(lm), "--fine-tune-checkpoint-type", "detection",
                 "--train-input", "t-?????-of-00002", "t2.record",
                 "--set", "train_config.batch_size=4",
                 "--set", "model.ssd.post_processing.score_converter=SOFTMAX"]) == 0
    patched = config.load(output)
    assert patched.model.ssd.num_classes == 3
    assert patched.train_config.batch_size == 4
    assert patched.train_config.fine_tune_checkpoint_type == "detection"
    assert list(patched.train_input_reader.tf_record_input_reader.input_path) == [
        "t-?????-of-00002", "t2.record"]


def test_patch_errors_exit_2_and_write_nothing(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    output = tmp_path / "out.config"
    assert main(["patch", str(SAMPLE), "-o", str(output), "--set", "model.ssd.num_clases=1"]) == 2
    assert "did you mean: num_classes?" in capsys.readouterr().err
    assert main(["patch", str(tmp_path / "nope.config"), "-o", str(output)]) == 2
    assert "pipeline config not found" in capsys.readouterr().err
    assert not output.exists()


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as error:
        main(["patch", str(SAMPLE)])  # no -o
    assert error.value.code == 2
    with pytest.raises(SystemExit) as error:
        main(["patch", str(SAMPLE), "-o", "x", "--num-classes", "1",
              "--num-classes-from-label-map"])
    assert error.value.code == 2
    with pytest.raises(SystemExit) as error:
        main(["patch", str(SAMPLE), "-o", "x", "--fine-tune-checkpoint-type", "weird"])
    assert error.value.code == 2


def test_check_prints_summary_and_warns_about_placeholders(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", str(SAMPLE)]) == 0
    captured = capsys.readouterr()
    assert "num_classes: 90" in captured.out
    assert "optimizer: rms_prop_optimizer" in captured.out
    assert "fine_tune_checkpoint_type: detection (from_detection_checkpoint: true)" in captured.out
    assert "OK (1 warning(s))" in captured.out
    assert "PATH_TO_BE_CONFIGURED" in captured.err
    assert main(["check", "--strict", str(SAMPLE)]) == 2


def test_check_fails_on_label_map_mismatch(tmp_path: Path) -> None:
    lm = tmp_path / "lm.pbtxt"
    label_map.write(lm, ["a", "b"])
    cfg = tmp_path / "c.config"
    config.save(config.apply_overrides(config.load(SAMPLE), [
        f"train_input_reader.label_map_path={lm}"]), cfg)
    assert main(["check", str(cfg)]) == 2
    cfg_ok = tmp_path / "ok.config"
    config.save(config.patch_config(config.load(cfg), num_classes=2), cfg_ok)
    assert main(["check", str(cfg_ok)]) == 0


def test_check_reports_non_ssd(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "frcnn.config"
    cfg.write_text("model { faster_rcnn { number_of_stages: 2 } }\n")
    assert main(["check", str(cfg)]) == 2
    assert "the model is `faster_rcnn`, but odflow trains SSD models" in capsys.readouterr().err


def test_show_prints_canonical_text(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["show", str(SEED_PATCHED)]) == 0
    assert capsys.readouterr().out == config.dumps(config.load(SEED_PATCHED))


def test_module_entry_point(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "odflow.config", "check", str(tmp_path)],
                            check=False, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert "is a directory" in result.stderr
    result = subprocess.run([sys.executable, "-m", "odflow.config", "--help"],
                            check=False, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and "patch" in result.stdout
