"""The TF2 zoo's SSD MobileNet / ResNet configs build into models whose TF2 key mapping
covers exactly the checkpoint key list the TF2 API writes for them (tests/fixtures/tf2_zoo,
from ../shared/reference/tf2_zoo/variables): every key mapped (or deliberately skipped), same
shapes; patched to one class only the class head's last dimension changes.  Groups (what
each fine_tune_checkpoint_type restores) are checked against the key paths."""

from __future__ import annotations

import pytest
import tensorflow as tf

from odflow.errors import OdflowError
from odflow.model import builder
from odflow.model import hyperparams as hp
from odflow.model.tf2_checkpoint import key_mapping
from tests.support import tf2_zoo

# ResNet-101/152 take a few seconds each to build even so.  The one-class check (which covers
# the keys too) runs once per key list (the 1024x1024 and FPNLite 640 configs share theirs).
_SLOW = {name for name in tf2_zoo.CONFIGS if "resnet101" in name or "resnet152" in name
         or "1024x1024" in name}


def _params(names):
    return [pytest.param(name, marks=pytest.mark.slow) if name in _SLOW else name
            for name in names]


ONE_PER_KEY_LIST = _params(name for name, listed in tf2_zoo.CONFIGS.items() if name == listed)
CLASS_HEAD = "model/_box_predictor/_prediction_heads/class_predictions_with_background/"


def _group_of(key: str) -> str:
    """Independent of the mapping: the TF2 API's restore_from_objects by key path."""
    if key.startswith("model/_feature_extractor/classification_backbone/"):
        return "backbone"
    if key.startswith("model/_feature_extractor/"):
        return "feature_extractor"
    assert key.startswith("model/_box_predictor/"), key
    return "box_predictor"


@pytest.fixture(autouse=True)
def zero_initial_weights(monkeypatch):
    """Only names and shapes matter here: fill new weights with zeros instead of drawing
    ResNet-152's 67 M truncated-normal numbers (most of a build's time)."""
    monkeypatch.setattr(hp.InitializerParams, "make",
                        lambda self: lambda shape: tf.zeros(shape, tf.float32))


def _build(name: str, *overrides: str):
    return builder.build(tf2_zoo.pipeline(name, *overrides).model, is_training=False)


@pytest.mark.slow  # 1-6 s each
@pytest.mark.parametrize("name", list(tf2_zoo.CONFIGS))
def test_key_mapping_covers_the_key_list(name):
    expected = tf2_zoo.keys(name)
    for key in tf2_zoo.BOOKKEEPING:
        expected.pop(key)
    model = _build(name)
    mapping = key_mapping(model)
    assert mapping.skipped == {}
    assert sorted(mapping.variables) == sorted(expected)
    for key, variable in mapping.variables.items():
        assert (variable.shape.as_list(), variable.dtype.name) == expected[key], key
    assert mapping.groups == {key: _group_of(key) for key in expected}
    # Every variable of the model is in the checkpoint, once.
    mapped = [id(v) for v in mapping.variables.values()]
    assert len(set(mapped)) == len(mapped)
    assert set(mapped) == {id(v) for v in model.variables}


@pytest.mark.parametrize("name", ONE_PER_KEY_LIST)
def test_one_class_changes_only_the_class_head(name):
    expected = tf2_zoo.keys(name)
    for key in tf2_zoo.BOOKKEEPING:
        expected.pop(key)
    model = _build(name, "ssd { num_classes: 1 }")
    mapping = key_mapping(model)
    assert sorted(mapping.variables) == sorted(expected)
    # odflow's own name-based checkpoints agree on what "detection" restores: the variables
    # under model/_feature_extractor/ are those named FeatureExtractor/... (TF1 semantics).
    names = {id(v): n for n, v in model.named_variables().items()}
    assert len(names) == len(mapping.variables)
    for key, variable in mapping.variables.items():
        assert names[id(variable)].startswith("FeatureExtractor/") == key.startswith(
            "model/_feature_extractor/"), (key, names[id(variable)])
    changed = []
    for key, variable in mapping.variables.items():
        shape = expected[key][0]
        if key.startswith(CLASS_HEAD) and not key.endswith("depthwise_kernel"):
            # anchors x (90 + 1) outputs -> anchors x (1 + 1)
            assert shape[-1] % 91 == 0, key
            shape = shape[:-1] + [shape[-1] // 91 * 2]
            changed.append(key)
        assert variable.shape.as_list() == shape, key
    levels = 6 if "ssd_mobilenet_v2_320x320" in name else 1  # one head per level, or shared
    assert len(changed) == 2 * levels  # kernel (or pointwise kernel) and bias


@pytest.mark.parametrize("name, change, message", [
    ("ssd_resnet50_v1_fpn_640x640_coco17_tpu-8",
     "ssd { feature_extractor { depth_multiplier: 0.5 } }",
     "feature_extractor.depth_multiplier: ssd_resnet50_v1_fpn_keras supports only 1.0"),
    ("ssd_mobilenet_v2_fpnlite_320x320_coco17_tpu-8",
     "ssd { feature_extractor { use_explicit_padding: true } }",
     "feature_extractor.use_explicit_padding is not supported for ssd_mobilenet_v2_fpn_keras"),
    ("ssd_mobilenet_v1_fpn_640x640_coco17_tpu-8",
     "ssd { feature_extractor { use_depthwise: true } }",
     "feature_extractor.use_depthwise is not supported for ssd_mobilenet_v1_fpn_keras"),
])
def test_unsupported_options_name_the_field(name, change, message):
    with pytest.raises(OdflowError, match=message):
        _build(name, change)
