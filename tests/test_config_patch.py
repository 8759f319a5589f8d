"""The tutorial's seven edits as ``patch_config``: the seed's config, label-map agreement, files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from odflow import config, label_map
from odflow.errors import OdflowError

FIXTURES = Path(__file__).parent / "fixtures"
SAMPLE = FIXTURES / "reference/sample_configs/ssd_mobilenet_v1_coco.config"
SEED_PATCHED = FIXTURES / "seed/ssd_mobilenet_v1_coco_patched.config"

SEED_EDITS = {"num_classes": 1, "fine_tune_checkpoint": "ckpt/model.ckpt",
              "train_input_paths": ["datasets/train.record"],
              "eval_input_paths": ["datasets/val.record"],
              "label_map_path": "datasets/label_map.pbtxt", "num_examples": 3226}


@pytest.fixture()
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run in an empty directory, so relative label-map paths resolve (or not) predictably."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_seven_edits_give_the_seeds_patched_config(in_tmp: Path) -> None:
    patched = config.patch_config(config.load(SAMPLE), **SEED_EDITS)
    expected = config.load(SEED_PATCHED)
    assert patched == expected
    assert config.dumps(patched) == config.dumps(expected)


def test_seven_edits_with_the_label_map_present(in_tmp: Path) -> None:
    label_map.write(in_tmp / "datasets/label_map.pbtxt", ["face"])
    patched = config.patch_config(config.load(SAMPLE), **SEED_EDITS)
    assert patched == config.load(SEED_PATCHED)


def test_template_is_not_modified() -> None:
    template = config.load(SAMPLE)
    before = config.dumps(template)
    config.patch_config(template, num_classes=3, overrides=["train_config.batch_size=1"])
    assert config.dumps(template) == before


def test_fine_tune_checkpoint_type_replaces_deprecated_flag() -> None:
    patched = config.patch_config(config.load(SAMPLE), fine_tune_checkpoint="ckpt/model.ckpt",
                                  fine_tune_checkpoint_type="detection")
    train = patched.train_config
    assert train.fine_tune_checkpoint_type == "detection"
    assert not train.HasField("from_detection_checkpoint")
    with pytest.raises(OdflowError, match="'detect' is not one of detection, classification"):
        config.patch_config(config.load(SAMPLE), fine_tune_checkpoint_type="detect")


def test_input_paths_are_lists_of_patterns() -> None:
    patched = config.patch_config(
        config.load(SAMPLE),
        train_input_paths=["data/train.record-?????-of-00010", "extra/*.record"],
        eval_input_paths="data/val.record")
    assert list(patched.train_input_reader.tf_record_input_reader.input_path) == [
        "data/train.record-?????-of-00010", "extra/*.record"]
    assert list(patched.eval_input_reader[0].tf_record_input_reader.input_path) == [
        "data/val.record"]
    with pytest.raises(OdflowError, match="at least one non-empty record path"):
        config.patch_config(config.load(SAMPLE), train_input_paths=[])


def test_label_map_goes_to_train_and_every_eval_reader(in_tmp: Path) -> None:
    template = config.apply_overrides(config.load(SAMPLE),
                                      ["eval_input_reader[+].label_map_path=old.pbtxt"])
    patched = config.patch_config(template, label_map_path="lm.pbtxt")
    assert patched.train_input_reader.label_map_path == "lm.pbtxt"
    assert [reader.label_map_path for reader in patched.eval_input_reader] == ["lm.pbtxt"] * 2


def test_missing_eval_reader_is_an_error() -> None:
    template = config.apply_overrides(config.load(SAMPLE), ["eval_input_reader=[]"])
    with pytest.raises(OdflowError, match="has no eval_input_reader block to receive eval input"):
        config.patch_config(template, eval_input_paths=["val.record"], source="t.config")


def test_num_examples_and_num_classes_must_be_positive() -> None:
    with pytest.raises(OdflowError, match="num_examples must be a positive integer, got 0"):
        config.patch_config(config.load(SAMPLE), num_examples=0)
    with pytest.raises(OdflowError, match="num_classes must be a positive integer"):
        config.patch_config(config.load(SAMPLE), num_classes=-1)


def test_label_map_mismatch_names_both_numbers_and_the_flag(in_tmp: Path) -> None:
    label_map.write(in_tmp / "lm.pbtxt", ["face", "hand"])
    with pytest.raises(OdflowError) as error:
        config.patch_config(config.load(SAMPLE), label_map_path="lm.pbtxt")
    message = str(error.value)
    assert "num_classes is 90" in message
    assert "largest id 2" in message
    assert "--num-classes-from-label-map" in message
    with pytest.raises(OdflowError, match="num_classes is 1 but the label map lm.pbtxt has "
                                          "largest id 2"):
        config.patch_config(config.load(SAMPLE), num_classes=1, label_map_path="lm.pbtxt")


def test_override_of_num_classes_is_checked_too(in_tmp: Path) -> None:
    label_map.write(in_tmp / "lm.pbtxt", ["face"])
    with pytest.raises(OdflowError, match="num_classes is 5"):
        config.patch_config(config.load(SAMPLE), num_classes=1, label_map_path="lm.pbtxt",
                            overrides=["model.ssd.num_classes=5"])


def test_num_classes_from_label_map(in_tmp: Path) -> None:
    path = in_tmp / "lm.pbtxt"
    path.write_text("item { id: 1 name: 'a' }\nitem { id: 7 name: 'b' }\n")
    patched = config.patch_config(config.load(SAMPLE), num_classes_from_label_map=True,
                                  label_map_path=str(path))
    assert patched.model.ssd.num_classes == 7
    with pytest.raises(OdflowError, match="either num_classes or num_classes_from_label_map"):
        config.patch_config(config.load(SAMPLE), num_classes=1, num_classes_from_label_map=True,
                            label_map_path=str(path))
    with pytest.raises(OdflowError, match="label map not found"):
        config.patch_config(config.load(SAMPLE), num_classes_from_label_map=True,
                            label_map_path=str(in_tmp / "missing.pbtxt"))


def test_invalid_label_map_is_reported(in_tmp: Path) -> None:
    (in_tmp / "lm.pbtxt").write_text("item { id: 1 name: 'a' }\nitem { id: 1 name: 'b' }\n")
    with pytest.raises(OdflowError, match=r"lm.pbtxt:2: item 2 \('b'\) repeats id 1"):
        config.patch_config(config.load(SAMPLE), num_classes=1, label_map_path="lm.pbtxt")


def test_patch_file_is_deterministic_and_atomic(tmp_path: Path) -> None:
    first, second = tmp_path / "a/pipeline.config", tmp_path / "b/pipeline.config"
    for output in (first, second):
        config.patch_file(SAMPLE, output, **SEED_EDITS,
                          overrides=["train_config.batch_size=8"])
    assert first.read_bytes() == second.read_bytes()
    assert config.load(first).train_config.batch_size == 8
    # Rewriting the same content leaves the same bytes (Snakemake sees no change).
    before = first.read_bytes()
    config.patch_file(SAMPLE, first, **SEED_EDITS, overrides=["train_config.batch_size=8"])
    assert first.read_bytes() == before
    assert sorted(os.listdir(first.parent)) == ["pipeline.config"]


def test_patch_file_error_keeps_previous_output(tmp_path: Path) -> None:
    output = tmp_path / "pipeline.config"
    output.write_text("previous")
    with pytest.raises(OdflowError):
        config.patch_file(SAMPLE, output, overrides=["model.ssd.nope=1"])
    assert output.read_text() == "previous"
    assert sorted(os.listdir(tmp_path)) == ["pipeline.config"]


def test_patch_file_refuses_to_overwrite_template(tmp_path: Path) -> None:
    template = tmp_path / "template.config"
    template.write_bytes(SAMPLE.read_bytes())
    with pytest.raises(OdflowError, match="would overwrite the template"):
        config.patch_file(template, template, num_classes=1)
    assert template.read_bytes() == SAMPLE.read_bytes()
