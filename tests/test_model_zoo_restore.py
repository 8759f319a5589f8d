"""Fine-tuning from the zoo's MobileNet v2 / v3 checkpoints: a checkpoint written
with the zoo's names, shapes and dtypes (variables.txt, plus the v3 index's Momentum slots)
restores into a 1-class model with a clean report."""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from odflow.model import builder
from odflow.model.restore import restore_fine_tune_checkpoint
from tests.support import zoo

# SSDLite shares v2's feature extractor; v3's box predictor has SSDLite's depthwise heads.
FOLDERS = ("ssd_mobilenet_v2_coco_2018_03_29", "ssd_mobilenet_v3_large_coco_2020_01_14")


def _value(name: str, shape: list[int], dtype: str) -> np.ndarray:
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    return rng.normal(size=shape).astype(dtype)


def _write(prefix: Path, listed: dict[str, tuple[list[int], str]]) -> dict[str, np.ndarray]:
    """A name-based checkpoint as TF1's Saver wrote it (SaveV2, no object graph)."""
    tensors = {name: _value(name, shape, dtype) for name, (shape, dtype) in listed.items()}
    names = sorted(tensors)
    tf.raw_ops.SaveV2(prefix=str(prefix), tensor_names=names, shape_and_slices=[""] * len(names),
                      tensors=[tf.constant(tensors[n]) for n in names])
    return tensors


@pytest.mark.slow
@pytest.mark.parametrize("folder", FOLDERS)
def test_detection_and_classification_checkpoints_restore_with_zoo_names(
        folder: str, tmp_path: Path) -> None:
    listed = zoo.variables(folder)
    tensors = _write(tmp_path / "model.ckpt", {**listed, **zoo.excluded(folder)})
    model = builder.build(zoo.pipeline(folder, "ssd { num_classes: 1 }").model, True)
    named = model.named_variables()
    features = sorted(n for n in named if n.startswith("FeatureExtractor/"))

    report = restore_fine_tune_checkpoint(model, tmp_path / "model.ckpt", "detection")
    assert sorted(report.restored) == features
    assert report.skipped_missing == [] and report.skipped_shape == []
    for name in features:
        np.testing.assert_array_equal(named[name].numpy(), tensors[name])

    report = restore_fine_tune_checkpoint(model, tmp_path / "model.ckpt", "detection",
                                          load_all_detection_checkpoint_vars=True)
    assert report.skipped_missing == []
    assert sorted(report.skipped_shape) == sorted(
        f"BoxPredictor_{k}/ClassPredictor/{v}" for k in range(6) for v in ("weights", "biases"))
    assert len(report.restored) == len(named) - 12

    # An ImageNet classification checkpoint names the backbone without FeatureExtractor/.
    backbone = {n[len("FeatureExtractor/"):]: listed[n] for n in features
                if "/layer_" not in n}
    classification = _write(tmp_path / "imagenet.ckpt", backbone)
    report = restore_fine_tune_checkpoint(model, tmp_path / "imagenet.ckpt", "classification")
    assert len(report.restored) == len(backbone) and report.skipped_shape == []
    assert all("/layer_" in n for n in report.skipped_missing)  # the SSD extra layers
    first = features[0]
    np.testing.assert_array_equal(named[first].numpy(),
                                  classification[first[len("FeatureExtractor/"):]])
