"""The zoo's own pipeline configs load as shipped, retired fields with a warning saying what
they meant (ssd_mobilenet_v2_coco_2018_03_29 has `batch_norm_trainable: true` at 35:7)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from odflow import config
from odflow.errors import OdflowError

ZOO = Path(__file__).parent / "fixtures" / "reference" / "model_zoo"


@pytest.mark.parametrize("folder", sorted(p.name for p in ZOO.iterdir() if p.is_dir()))
def test_every_zoo_config_in_the_fixtures_loads_as_shipped(folder: str) -> None:
    loaded = config.load(ZOO / folder / "pipeline.config")
    assert loaded.model.WhichOneof("model") == "ssd"


def test_batch_norm_trainable_true_is_accepted_with_a_warning_naming_it(
        caplog: pytest.LogCaptureFixture) -> None:
    path = ZOO / "ssd_mobilenet_v2_coco_2018_03_29" / "pipeline.config"
    assert "      batch_norm_trainable: true" in path.read_text().splitlines()[34]
    with caplog.at_level(logging.WARNING):
        loaded = config.load(path)
    messages = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(f"{path}:35: `batch_norm_trainable: true` is a retired field" in m
               and "freeze_batchnorm" in m for m in messages), messages
    fe = loaded.model.ssd.feature_extractor
    assert fe.type == "ssd_mobilenet_v2" and fe.use_depthwise  # the lines after it still parse
    assert loaded.model.ssd.freeze_batchnorm is False


def test_batch_norm_trainable_false_means_freeze_batchnorm(
        caplog: pytest.LogCaptureFixture) -> None:
    text = ("model { ssd { num_classes: 2\n feature_extractor {\n type: 'ssd_mobilenet_v2'\n"
            "  batch_norm_trainable: false\n min_depth: 16 } } }\n")
    with caplog.at_level(logging.WARNING):
        loaded = config.loads(text, "old.config")
    assert loaded.model.ssd.freeze_batchnorm is True
    assert loaded.model.ssd.feature_extractor.min_depth == 16
    assert "old.config:4: `batch_norm_trainable: false`" in caplog.text
    assert "set model.ssd.freeze_batchnorm: true" in caplog.text


def test_a_retired_field_in_another_message_is_still_an_error() -> None:
    with pytest.raises(OdflowError, match="unknown field `batch_norm_trainable`"):
        config.loads("train_config { batch_norm_trainable: true }", "x.config")
