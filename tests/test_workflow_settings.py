"""Typing --config values by the schema (odflow.workflow.settings): what Snakemake hands the
Snakefile for `--config train='{num_steps: 3000}'` is {'train': {'num_steps': '3000'}}."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from odflow.workflow.settings import ConfigTypeError, coerce_to_schema

SCHEMA = yaml.safe_load((Path(__file__).resolve().parents[1] /
                         "schemas/config.schema.yaml").read_text())


def test_nested_strings_become_the_schema_types() -> None:
    config = {"train": {"num_steps": "3000", "seed": "-2"},
              "dataset": {"skip_bad": "true", "wider_face": {"keep_empty": "No"}},
              "model": {"starter": {"depth_multiplier": "0.5", "image_size": "64"}}}
    coerce_to_schema(config, SCHEMA)
    assert config == {"train": {"num_steps": 3000, "seed": -2},
                      "dataset": {"skip_bad": True, "wider_face": {"keep_empty": False}},
                      "model": {"starter": {"depth_multiplier": 0.5, "image_size": 64}}}
    assert type(config["train"]["num_steps"]) is int


def test_strings_where_strings_belong_are_kept() -> None:
    config = {"model": {"name": "123", "sha256": ""}, "classes": ["1", "face"],
              "pipeline": {"overrides": ["train_config.batch_size=8"]},
              "dataset": {"tfrecord": {"train": ["007.record"]}}}
    expected = yaml.safe_load(yaml.safe_dump(config))
    coerce_to_schema(config, SCHEMA)
    assert config == expected


def test_the_same_object_is_updated() -> None:
    """Snakemake's rules read the very dict the Snakefile got: no rebinding."""
    config = {"train": {"num_steps": "9"}}
    inner = config
    coerce_to_schema(config, SCHEMA)
    assert inner is config and config["train"]["num_steps"] == 9


@pytest.mark.parametrize(("config", "key", "wanted"), [
    ({"train": {"num_steps": "lots"}}, "train.num_steps", "an integer"),
    ({"train": {"num_steps": "3.5"}}, "train.num_steps", "an integer"),
    ({"dataset": {"skip_bad": "maybe"}}, "dataset.skip_bad", "true or false"),
    ({"model": {"starter": {"depth_multiplier": "half"}}}, "model.starter.depth_multiplier",
     "a number"),
])
def test_an_uncoercible_value_names_the_key(config: dict, key: str, wanted: str) -> None:
    with pytest.raises(ConfigTypeError) as error:
        coerce_to_schema(config, SCHEMA)
    assert f"config {key}:" in str(error.value) and wanted in str(error.value)


def test_unknown_keys_are_left_for_validation() -> None:
    config = {"train": {"num_step": "9"}, "extra": "1"}
    coerce_to_schema(config, SCHEMA)
    assert config == {"train": {"num_step": "9"}, "extra": "1"}
