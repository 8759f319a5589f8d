"""EfficientDet D0-D7: every zoo config builds (90 classes and patched to 1), and its TF2
checkpoint layout covers the TF2 API's key list exactly.

The expected keys, shapes and Keras variable names are the TF2 Object Detection API's own
(``tests/fixtures/tf2_zoo/variables/*.txt.gz``, see ``SOURCE_efficientdet.md``): every key is
mapped to an odflow variable of the same shape and the same Keras name, or deliberately skipped
(EfficientNet's classification top and, from D1 on, the blocks after the last level endpoint).
"""

from __future__ import annotations

import gzip
import re
import types
from pathlib import Path

import pytest

from odflow import config as config_io
from odflow.model import builder, efficientdet_builder
from odflow.model.tf2_checkpoint import KEY_SUFFIX, key_mapping

FIXTURES = Path(__file__).parent / "fixtures" / "tf2_zoo"
CONFIGS = sorted(p.stem for p in (FIXTURES / "configs").glob("ssd_efficientdet_d*.config"))
BOOKKEEPING = {"_CHECKPOINTABLE_OBJECT_GRAPH", "save_counter"}
# The key counts and parameter totals of the shared reference README's table.
KEY_COUNTS = {"d0": 685, "d1": 877, "d2": 941, "d3": 1108, "d4": 1286, "d5": 1414, "d6": 1574,
              "d7": 1574}


def expected_keys(name: str) -> dict[str, tuple[list[int], str]]:
    """key (without the suffix) -> (shape, Keras variable name without ':0')."""
    keys = {}
    with gzip.open(FIXTURES / "variables" / f"{name}.txt.gz", "rt") as f:
        for line in f:
            match = re.fullmatch(r"(\S+) \[([^\]]*)\] (\S+) (\S+)\n?", line)
            assert match, line
            key, shape, _, keras = match.groups()
            key = key.removesuffix(KEY_SUFFIX)
            keys[key] = ([int(d) for d in shape.split(",")] if shape else [],
                         keras.removesuffix(":0"))
    return keys


def check_coverage(mapping, expected: dict, num_classes: int) -> None:
    wanted = {k: v for k, v in expected.items() if k not in BOOKKEEPING}
    assert set(mapping.variables).isdisjoint(mapping.skipped)
    assert sorted(set(mapping.variables) | set(mapping.skipped)) == sorted(wanted)
    for key in mapping.skipped:
        assert re.search(r"/(top_conv2d|top_bn|logits)$", "/" + wanted[key][1].rsplit("/", 1)[0]) \
            or wanted[key][1].startswith("stack_"), key
        assert "classification_backbone" in key, key
    class_head = "_class_predictor_layers/0/"
    for key, variable in mapping.variables.items():
        shape, keras = wanted[key]
        if class_head in key and not key.endswith("depthwise_kernel"):
            # anchors x classes (9 x 90 in the list) in the pointwise kernel and bias
            shape = shape[:-1] + [shape[-1] // 90 * num_classes]
        assert variable.shape.as_list() == shape, key
        assert variable.name.removesuffix(":0") == keras, key
    groups = set(mapping.groups.values())
    assert groups == {"backbone", "feature_extractor", "box_predictor"}
    for key, group in mapping.groups.items():
        part = {"backbone": "/_efficientnet/", "feature_extractor": "/_bifpn_stage/",
                "box_predictor": "model/_box_predictor/"}[group]
        assert part in key, (key, group)


@pytest.mark.slow
@pytest.mark.parametrize("name", CONFIGS)
def test_config_builds_with_exact_key_coverage(name: str) -> None:
    expected = expected_keys(name)
    assert len(expected) == KEY_COUNTS[name.split("_")[2]]
    pipeline = config_io.load(FIXTURES / "configs" / f"{name}.config")
    model = builder.build(pipeline.model, is_training=True)
    check_coverage(key_mapping(model), expected, 90)
    # Patched to 1 class only the class head changes: build that predictor from the patched
    # config and map it with the same feature extractor (a whole second build of the big
    # variants would double this test's time without testing anything more).
    pipeline.model.ssd.num_classes = 1
    ssd = pipeline.model.ssd
    one_class = types.SimpleNamespace(
        feature_extractor=model.feature_extractor,
        box_predictor=efficientdet_builder.box_predictor(
            ssd, model.feature_extractor.feature_depths,
            [9] * len(model.feature_extractor.feature_depths)),
        feature_extractor_type=ssd.feature_extractor.type)
    check_coverage(key_mapping(one_class), expected, 1)


@pytest.mark.slow
def test_d0_patched_to_one_class_builds_whole() -> None:
    pipeline = config_io.load(FIXTURES / "configs" / f"{CONFIGS[0]}.config")
    pipeline.model.ssd.num_classes = 1
    model = builder.build(pipeline.model, is_training=True)
    mapping = key_mapping(model)
    check_coverage(mapping, expected_keys(CONFIGS[0]), 1)
    head = "model/_box_predictor/_prediction_heads/class_predictions_with_background/" \
        "_class_predictor_layers/0/bias"
    assert mapping.variables[head].shape.as_list() == [9]
    # class_prediction_bias_init: -4.6 (the config's), so sigmoid starts near 0.01
    assert float(mapping.variables[head][0]) == pytest.approx(-4.6)
