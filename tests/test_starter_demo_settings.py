"""The demo's starter model as built: the settings issue 20 chose for it (benchmarks/demo.md).

The focal loss only learns quickly from random weights when the class logits start at the
RetinaNet prior (sigmoid(-4.6) = 1 % face score on every anchor).  With fine-tune type
``detection`` (and ``load_all_detection_checkpoint_vars`` unset, the API's default) training
restores only the feature extractor, so the demo's box predictor starts from the pipeline
config's ``class_prediction_bias_init`` (benchmarks/demo.md: a zeroed checkpoint bias gives the
same step-1 loss).  The starter checkpoint holds the prior too, so that a ``full`` restore or
``load_all_detection_checkpoint_vars: true`` start from it as well.
"""

from __future__ import annotations

import math
import tarfile
from pathlib import Path

import numpy as np
import pytest

from odflow.config import loads
from odflow.workflow.starter import build_starter_tarball, starter_pipeline_text

pytestmark = pytest.mark.slow  # builds and saves a model (TensorFlow import: ~5 s)

PRIOR = 0.01  # RetinaNet's prior probability of a positive at initialisation


def test_the_starter_uses_focal_loss_without_hard_example_mining() -> None:
    text = starter_pipeline_text(depth_multiplier=0.25, image_size=64, num_classes=1)
    ssd = loads(text, source="starter").model.ssd
    assert ssd.loss.classification_loss.WhichOneof("classification_loss") == \
        "weighted_sigmoid_focal"
    assert not ssd.loss.HasField("hard_example_miner")
    bias = ssd.box_predictor.convolutional_box_predictor.class_prediction_bias_init
    # -log((1 - pi) / pi) for pi = 0.01, to the config's one decimal.
    assert bias == pytest.approx(-math.log((1 - PRIOR) / PRIOR), abs=0.01)


def test_the_starter_augments_by_flips_only() -> None:
    """No ssd_random_crop: with it the demo reached AP50 0.873-0.892, without 0.890-0.916
    (four runs each, benchmarks/demo.md)."""
    text = starter_pipeline_text(depth_multiplier=0.25, image_size=64, num_classes=1)
    steps = loads(text, source="starter").train_config.data_augmentation_options
    assert [step.WhichOneof("preprocessing_step") for step in steps] == [
        "random_horizontal_flip"]


def test_the_starter_checkpoint_holds_the_prior_class_bias(tmp_path: Path) -> None:
    import tensorflow as tf

    tarball = build_starter_tarball(tmp_path / "starter.tar.gz", name="m",
                                    depth_multiplier=0.25, image_size=64, num_classes=1)
    with tarfile.open(tarball) as archive:
        archive.extractall(tmp_path, filter="data")
    reader = tf.train.load_checkpoint(str(tmp_path / "m" / "model.ckpt"))
    names = sorted(name for name in reader.get_variable_to_shape_map()
                   if name.endswith("ClassPredictor/biases"))
    assert len(names) == 6, names  # one per SSD feature map
    for name in names:
        bias = reader.get_tensor(name)
        # Face scores start at the prior on every anchor (the background logit too, as the
        # API's class_prediction_bias_init sets every class bias).
        np.testing.assert_allclose(1 / (1 + np.exp(-bias)), PRIOR, rtol=0.01, err_msg=name)
