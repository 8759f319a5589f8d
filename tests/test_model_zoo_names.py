"""MobileNet v2, SSDLite and MobileNet v3 detectors built from the zoo's own pipeline.config
have exactly the zoo checkpoint's variables (names, shapes, dtypes from variables.txt, which
the reference read from each tarball's model.ckpt.index); patched to one class, only the
class predictors change, by the expected number of channels."""

from __future__ import annotations

import pytest

from odflow.model import builder
from tests.support import zoo

V2 = "ssd_mobilenet_v2_coco_2018_03_29"
LITE = "ssdlite_mobilenet_v2_coco_2018_05_09"
V3 = "ssd_mobilenet_v3_large_coco_2020_01_14"
# SSDLite's shipped config had num_classes edited to 11; the index is the 90-class model.
ZOO_CLASSES = "ssd { num_classes: 90 }"


def _named(folder: str, *overrides: str) -> dict[str, tuple[list[int], str]]:
    model = builder.build(zoo.pipeline(folder, *overrides).model, is_training=True)
    return {n: (v.shape.as_list(), v.dtype.name) for n, v in model.named_variables().items()}


@pytest.mark.slow
@pytest.mark.parametrize("folder,count", [(V2, 344), (LITE, 404), (V3, 406)])
def test_variables_equal_the_zoo_index(folder: str, count: int) -> None:
    expected = zoo.variables(folder)
    assert expected.pop("global_step") == ([], "int64")
    assert len(expected) == count
    named = _named(folder, ZOO_CLASSES)
    assert sorted(set(named) - set(expected)) == [] and sorted(set(expected) - set(named)) == []
    wrong = {n: (named[n], expected[n]) for n in named if named[n] != expected[n]}
    assert wrong == {}


@pytest.mark.slow
@pytest.mark.parametrize("folder,anchors", [(V2, (3, 6, 6, 6, 6, 6)), (LITE, (3, 6, 6, 6, 6, 6)),
                                            (V3, (3, 6, 6, 6, 6, 6))])
def test_one_class_changes_only_the_class_predictors(folder: str,
                                                     anchors: tuple[int, ...]) -> None:
    expected = zoo.variables(folder)
    named = _named(folder, "ssd { num_classes: 1 }")
    assert set(named) == set(expected) - {"global_step"}
    changed = {n for n in named if named[n] != expected[n]}
    assert changed == {f"BoxPredictor_{k}/ClassPredictor/{v}" for k in range(6)
                       for v in ("weights", "biases")}
    for k, a in enumerate(anchors):
        weights = named[f"BoxPredictor_{k}/ClassPredictor/weights"][0]
        zoo_weights = expected[f"BoxPredictor_{k}/ClassPredictor/weights"][0]
        assert weights == zoo_weights[:3] + [a * 2]  # (1 class + background) per anchor
        assert zoo_weights[3] == a * 91
        assert named[f"BoxPredictor_{k}/ClassPredictor/biases"][0] == [a * 2]


@pytest.mark.slow
def test_v3_small_follows_the_large_naming_and_the_slim_small_spec() -> None:
    """No zoo index exists for small: names as large, depths from slim's V3_SMALL_DETECTION
    (layer_10 expansion 288 and layer_13 288 feed the predictor; 5x5 depthwise; SE = /4)."""
    named = _named(V3, "ssd { feature_extractor { type: 'ssd_mobilenet_v3_small' } }")
    fe = "FeatureExtractor/MobilenetV3"
    large = _named(V3)
    assert {n.split("/")[2] for n in named if n.startswith(fe)} >= {
        "Conv", "Conv_1", "expanded_conv", "expanded_conv_10", "layer_13_1_Conv2d_2_1x1_256",
        "layer_13_2_Conv2d_5_3x3_s2_128_depthwise"}
    assert not any(n.startswith(f"{fe}/expanded_conv_11/") for n in named)  # 11 blocks
    assert named[f"{fe}/Conv/weights"][0] == [3, 3, 3, 16]
    assert named[f"{fe}/expanded_conv/squeeze_excite/Conv/weights"][0] == [1, 1, 16, 8]
    assert f"{fe}/expanded_conv/expand/weights" not in named  # expansion 1: none
    assert named[f"{fe}/expanded_conv_1/expand/weights"][0] == [1, 1, 16, 72]
    assert named[f"{fe}/expanded_conv_2/expand/weights"][0] == [1, 1, 24, 88]
    assert named[f"{fe}/expanded_conv_3/depthwise/depthwise_weights"][0] == [5, 5, 96, 1]
    assert named[f"{fe}/expanded_conv_3/squeeze_excite/Conv/weights"][0] == [1, 1, 96, 24]
    assert named[f"{fe}/expanded_conv_8/expand/weights"][0] == [1, 1, 48, 288]
    assert named[f"{fe}/expanded_conv_8/project/weights"][0] == [1, 1, 288, 48]
    assert named[f"{fe}/Conv_1/weights"][0] == [1, 1, 48, 288]
    assert named["BoxPredictor_0/BoxEncodingPredictor_depthwise/depthwise_weights"][0] == [
        3, 3, 288, 1]
    assert named["BoxPredictor_1/BoxEncodingPredictor_depthwise/depthwise_weights"][0] == [
        3, 3, 288, 1]
    assert named[f"{fe}/layer_13_1_Conv2d_2_1x1_256/weights"][0] == [1, 1, 288, 256]
    # Only the feature extractor differs from large.
    assert {n for n in named if not n.startswith(fe)} == {n for n in large
                                                          if not n.startswith(fe)}


@pytest.mark.slow
@pytest.mark.parametrize("folder", ["ssd_mobilenet_v1_quantized_300x300_coco14_sync_2018_07_18",
                                    "ssd_mobilenet_v2_quantized_300x300_coco_2019_01_03"])
def test_quantized_configs_without_graph_rewriter_have_the_float_variables(folder: str) -> None:
    """odflow refuses graph_rewriter (see test_model_mobilenet_blocks); without it the float
    model has exactly the index's variables minus the fake-quant min/max state (188 for v1,
    637 for v2), so the quantized checkpoints still fine-tune a float model.  (The v2 copy's
    config had num_classes edited to 6; the index is the 90-class model.)"""
    config = zoo.pipeline(folder, ZOO_CLASSES)
    config.ClearField("graph_rewriter")
    named = {n: (v.shape.as_list(), v.dtype.name)
             for n, v in builder.build(config.model, is_training=True).named_variables().items()}
    listed = zoo.variables(folder)
    quant = {n for n in listed if "quant" in n}
    assert len(quant) == (188 if "v1" in folder else 637)
    expected = {n: s for n, s in listed.items() if n not in quant and n != "global_step"}
    assert named == expected
