"""``ssd_inception_v2``: variables against the zoo checkpoint's index, the zoo's names on
restore, and pieces of slim's InceptionV2 worked out by hand (numpy, not the code under test).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from odflow.export.checkpoint import write_export_checkpoint
from odflow.model import builder
from odflow.model.restore import restore_fine_tune_checkpoint
from odflow.protos import pipeline_pb2
from tests.support import zoo

FOLDER = "ssd_inception_v2_coco_2018_01_28"
ZOO = zoo.ZOO / FOLDER
FE = "FeatureExtractor/InceptionV2"
# Each full-size build makes 25 M parameters (about 3 s on 2 cores): one shared build.
pytestmark = pytest.mark.slow


def zoo_config(*changes: str) -> pipeline_pb2.DetectionModel:
    return zoo.pipeline(FOLDER, *changes).model


def zoo_index() -> dict[str, tuple[list[int], str]]:
    """name -> (shape, dtype) from the zoo's variables.txt (read from its model.ckpt.index)."""
    return zoo.variables(FOLDER)


@pytest.fixture(scope="module")
def zoo_model():
    return builder.build(zoo_config(), is_training=True)


def test_variables_equal_the_zoo_index(zoo_model):
    expected = zoo_index()
    assert expected.pop("global_step")[1] == "int64"
    assert len(expected) == 410
    named = zoo_model.named_variables()
    assert sorted(named) == sorted(expected)
    for name, variable in named.items():
        assert (variable.shape.as_list(), variable.dtype.name) == expected[name], name
    # The index read by TensorFlow says the same as the text listing.
    reader = tf.train.load_checkpoint(str(ZOO / "model.ckpt"))
    shapes = reader.get_variable_to_shape_map()
    assert all(shapes[name] == v.shape.as_list() for name, v in named.items())
    non_trainable = {n for n, v in named.items() if not v.trainable}
    assert non_trainable == {n for n in named if n.endswith(("moving_mean", "moving_variance"))}


def test_one_class_changes_only_the_class_predictors(zoo_model):
    named90 = zoo_model.named_variables()
    named1 = builder.build(zoo_config("ssd { num_classes: 1 }"), False).named_variables()
    assert sorted(named1) == sorted(named90)
    changed = {n for n in named1 if named1[n].shape != named90[n].shape}
    assert changed == {f"BoxPredictor_{k}/ClassPredictor/{v}" for k in range(6)
                       for v in ("weights", "biases")}
    # 3 anchors on the lowest map (reduce_boxes_in_lowest_layer), 6 elsewhere; 2 classes.
    assert named1["BoxPredictor_0/ClassPredictor/weights"].shape == [3, 3, 576, 6]
    assert named1["BoxPredictor_5/ClassPredictor/weights"].shape == [3, 3, 128, 12]


def test_feature_maps_at_the_zoo_size(zoo_model):
    maps = zoo_model.predict(tf.zeros([1, 300, 300, 3]), training=False)["feature_maps"]
    # Mixed_4c at 1/16, Mixed_5c at 1/32 (SAME: rounding up), then four stride-2 layers.
    assert [tuple(m.shape[1:]) for m in maps] == [
        (19, 19, 576), (10, 10, 1024), (5, 5, 512), (3, 3, 256), (2, 2, 256), (1, 1, 128)]


def test_depth_multiplier_sets_the_stem_depthwise_multiplier():
    # slim: depthwise multiplier min(int(depth(64) / 3), 8); depth(64) = max(int(64*0.25), 16).
    model = builder.build(zoo_config("ssd { feature_extractor { depth_multiplier: 0.25 } }"),
                          False)
    named = model.named_variables()
    assert named[f"{FE}/Conv2d_1a_7x7/depthwise_weights"].shape == [7, 7, 3, 5]
    assert named[f"{FE}/Conv2d_1a_7x7/pointwise_weights"].shape == [1, 1, 15, 16]
    assert named[f"{FE}/Mixed_5c/Branch_0/Conv2d_0a_1x1/weights"].shape == [1, 1, 256, 88]
    assert named[f"{FE}/Mixed_5c_2_Conv2d_2_3x3_s2_128/weights"].shape == [3, 3, 64, 128]


def _set_identity_batch_norm(named: dict[str, tf.Variable], scope: str) -> None:
    for suffix, value in (("gamma", 1.0), ("beta", 0.0), ("moving_mean", 0.0),
                          ("moving_variance", 1.0)):
        var = named[f"{scope}/BatchNorm/{suffix}"]
        var.assign(tf.fill(var.shape, value))


def test_stem_is_a_strided_separable_conv_by_hand(zoo_model):
    """Conv2d_1a_7x7 on a 4x4 image: depthwise 7x7 stride 2 SAME (TF pads 2 before and 3
    after a 4-pixel side for 7 taps at stride 2), then 1x1 pointwise, batch norm, ReLU6."""
    model = zoo_model
    stem = model.feature_extractor.stem[0]
    named = model.named_variables()
    rng = np.random.default_rng(0)
    dw = rng.normal(0, 0.1, (7, 7, 3, 8)).astype(np.float32)
    pw = rng.normal(0, 0.1, (1, 1, 24, 64)).astype(np.float32)
    named[f"{FE}/Conv2d_1a_7x7/depthwise_weights"].assign(dw)
    named[f"{FE}/Conv2d_1a_7x7/pointwise_weights"].assign(pw)
    _set_identity_batch_norm(named, f"{FE}/Conv2d_1a_7x7")
    image = rng.uniform(-1, 1, (1, 4, 4, 3)).astype(np.float32)
    got = stem(tf.constant(image), training=False).numpy()

    padded = np.pad(image[0], ((2, 3), (2, 3), (0, 0)))
    depthwise = np.zeros((2, 2, 24), np.float32)
    for oy in range(2):
        for ox in range(2):
            patch = padded[2 * oy:2 * oy + 7, 2 * ox:2 * ox + 7, :]
            for c in range(3):
                for m in range(8):  # output channel c * multiplier + m
                    depthwise[oy, ox, c * 8 + m] = np.sum(patch[:, :, c] * dw[:, :, c, m])
    want = np.clip(depthwise @ pw[0, 0] / np.sqrt(1.0 + 0.001), 0.0, 6.0)
    assert got.shape == (1, 2, 2, 64)
    np.testing.assert_allclose(got[0], want, atol=1e-5)


def test_mixed_5c_concatenates_branches_in_order_with_a_max_pool_branch(zoo_model):
    """Only Branch_3 of Mixed_5c passes anything (its 1x1 picks input channels 0..127); slim
    pools that branch with a 3x3 max pool (stride 1, SAME), and it comes last (352+320+224)."""
    model = zoo_model
    block = next(b for b in model.feature_extractor.mixed if b.block == "Mixed_5c")
    named = model.named_variables()
    for unit in block.units():
        unit.weights.assign(tf.zeros(unit.weights.shape))
        _set_identity_batch_norm(named, unit.scope)
    pick = np.zeros((1, 1, 1024, 128), np.float32)
    pick[0, 0, np.arange(128), np.arange(128)] = 1.0
    named[f"{FE}/Mixed_5c/Branch_3/Conv2d_0b_1x1/weights"].assign(pick)
    rng = np.random.default_rng(1)
    x = rng.uniform(0, 5, (1, 3, 4, 1024)).astype(np.float32)
    got = block(tf.constant(x), training=False).numpy()
    assert got.shape == (1, 3, 4, 1024)
    np.testing.assert_array_equal(got[..., :896], 0.0)
    want = np.zeros((3, 4, 128), np.float32)
    for y in range(3):
        for xx in range(4):
            window = x[0, max(y - 1, 0):y + 2, max(xx - 1, 0):xx + 2, :128]
            want[y, xx] = window.max(axis=(0, 1))
    np.testing.assert_allclose(got[0, ..., 896:], np.clip(want / np.sqrt(1.001), 0, 6),
                               rtol=1e-5)


def _zoo_named_values(rng: np.random.Generator) -> dict[str, np.ndarray]:
    values = {}
    for name, (shape, dtype) in zoo_index().items():
        if name != "global_step":
            values[name] = rng.normal(size=shape).astype(dtype)
    return values


def test_detection_checkpoint_with_zoo_names_restores_cleanly(zoo_model, tmp_path, caplog):
    values = _zoo_named_values(np.random.default_rng(2))
    prefix = write_export_checkpoint(tmp_path, values, global_step=5)
    model = zoo_model
    with caplog.at_level(logging.WARNING):
        report = restore_fine_tune_checkpoint(model, prefix, "detection")
    features = sorted(n for n in values if n.startswith("FeatureExtractor/"))
    assert report.restored == features and len(features) == 386
    assert not report.skipped_missing and not report.skipped_shape
    assert not caplog.records
    name = f"{FE}/Conv2d_1a_7x7/depthwise_weights"
    np.testing.assert_array_equal(model.named_variables()[name].numpy(), values[name])


def test_classification_checkpoint_restores_the_imagenet_names(zoo_model, tmp_path):
    """An ImageNet InceptionV2 checkpoint names the base ``InceptionV2/...``; the SSD extra
    layers are not in it and are reported missing."""
    values = _zoo_named_values(np.random.default_rng(3))
    imagenet = {n[len("FeatureExtractor/"):]: v for n, v in values.items()
                if n.startswith(f"{FE}/Mixed_") and "_Conv2d_" not in n
                or n.startswith(f"{FE}/Conv2d_")}
    prefix = write_export_checkpoint(tmp_path, imagenet, global_step=0)
    model = zoo_model
    report = restore_fine_tune_checkpoint(model, prefix, "classification")
    assert len(report.restored) == len(imagenet) == 386 - 8 * 5
    assert sorted(report.skipped_missing) == sorted(
        n for n in values if n.startswith(f"{FE}/Mixed_5c_"))
    name = f"{FE}/Mixed_4c/Branch_2/Conv2d_0c_3x3/weights"
    np.testing.assert_array_equal(model.named_variables()[name].numpy(),
                                  imagenet[name[len("FeatureExtractor/"):]])


def test_base_network_equals_tf_slims_inception_v2_base():
    """TF-slim's own inception_v2_base, run once on the same named weights and images
    (tests/fixtures/slim_inception_v2/, written by tools/slim_inception_v2_reference.py)."""
    from tests.support import slim_reference as ref

    saved = np.load(Path(__file__).parent / "fixtures/slim_inception_v2/reference.npz")
    model = builder.build(zoo_config(
        "ssd { feature_extractor { depth_multiplier: 0.25 min_depth: 16 } }"), False)
    named = model.named_variables()
    base = sorted(n for n in named if n.startswith(f"{FE}/") and "_Conv2d_" not in n)
    assert base == sorted(saved["variable_names"].tolist())  # slim's 346 names
    for name in base:
        named[name].assign(ref.weight_value(name, named[name].shape.as_list()))
    maps = model.feature_extractor(tf.constant(ref.image()), training=False)
    for got, key in zip(maps[:2], ("Mixed_4c", "Mixed_5c"), strict=True):
        want = saved[key]
        assert got.shape == want.shape, key
        assert np.abs(want).mean() > 0.5 and (want < 6.0).mean() > 0.5  # not degenerate
        np.testing.assert_allclose(got.numpy(), want, atol=1e-4, err_msg=key)
