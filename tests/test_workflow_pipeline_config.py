"""The pipeline_config stage (scripts/patch_pipeline_config.py): the run's length goes into
the config, and an empty validation set stops it naming the file and the count."""

from __future__ import annotations

import re
import struct
from pathlib import Path

import pytest

from odflow import config
from odflow.config.cli import run_patch_pipeline_config as main
from odflow.errors import OdflowError

SAMPLE = (Path(__file__).parent / "fixtures/reference/sample_configs/"
          "ssd_mobilenet_v1_coco.config")


def framed_records(path: Path, count: int) -> Path:
    """``count`` records in TFRecord framing (length, crc, data, crc): only counted here."""
    with open(path, "wb") as handle:
        for _ in range(count):
            data = b"x"
            handle.write(struct.pack("<Q", len(data)) + b"\0" * 4 + data + b"\0" * 4)
    return path


def run_stage(tmp_path: Path, val_records: int, *extra: str) -> Path:
    (tmp_path / "label_map.pbtxt").write_text("item { id: 1 name: 'face' }\n")
    val = framed_records(tmp_path / "val.record", val_records)
    output = tmp_path / "out.config"
    main(["--template", str(SAMPLE), "--output", str(output),
          "--label-map", str(tmp_path / "label_map.pbtxt"), "--train-input", "train.record",
          "--eval-input", str(val), "--fine-tune-checkpoint", "ckpt/model.ckpt", *extra])
    return output


def test_num_steps_is_written_into_the_config(tmp_path: Path) -> None:
    output = run_stage(tmp_path, 3, "--num-steps", "7")
    patched = config.load(output)
    assert patched.train_config.num_steps == 7  # the sample says 200000
    assert patched.eval_config.num_examples == 3  # counted


def test_an_empty_validation_set_names_the_file_and_the_count(tmp_path: Path) -> None:
    with pytest.raises(OdflowError, match=r"val\.record: 0 records"):  # odflow.data.records
        run_stage(tmp_path, 0, "--num-steps", "7")
    assert not (tmp_path / "out.config").exists()


def test_a_schedule_that_stops_early_stops_the_stage_naming_the_field(tmp_path: Path) -> None:
    field = ("train_config.optimizer.rms_prop_optimizer.learning_rate."
             "cosine_decay_learning_rate.total_steps")
    with pytest.raises(OdflowError, match=rf"{re.escape(field)} is 5 .* at least 7"):
        run_stage(tmp_path, 3, "--num-steps", "7", "--set", f"{field}=5",
                  "train_config.optimizer.rms_prop_optimizer.learning_rate."
                  "cosine_decay_learning_rate.warmup_steps=0")
    assert not (tmp_path / "out.config").exists()
