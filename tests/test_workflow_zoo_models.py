"""The zoo-model plumbing of the workflow: presets for the TF1 zoo's SSD models, the starter
model for any registered architecture, and the digest log of an unpinned download."""

from __future__ import annotations

import logging
import tarfile
from pathlib import Path

import pytest
import tensorflow as tf
import yaml
from snakemake.utils import validate

from odflow.config import loads
from odflow.errors import OdflowError
from odflow.model import builder
from odflow.workflow import starter
from odflow.workflow.download import download, sha256_of
from odflow.workflow.tarball import extract_model

REPO = Path(__file__).resolve().parents[1]
ZOO_URL = "http://download.tensorflow.org/models/object_detection/{}.tar.gz"
# Preset -> (zoo folder, config name): the zoo's models of issue 10, as the zoo's own table
# names and links them (tf1_detection_zoo.md), and the API's sample config of each.
PRESETS = {
    "ssd_mobilenet_v2_coco": ("ssd_mobilenet_v2_coco_2018_03_29", "ssd_mobilenet_v2_coco"),
    "ssdlite_mobilenet_v2_coco": ("ssdlite_mobilenet_v2_coco_2018_05_09",
                                  "ssdlite_mobilenet_v2_coco"),
    "ssd_mobilenet_v1_fpn_coco": (
        "ssd_mobilenet_v1_fpn_shared_box_predictor_640x640_coco14_sync_2018_07_03",
        "ssd_mobilenet_v1_fpn_shared_box_predictor_640x640_coco14_sync"),
    "ssd_inception_v2_coco": ("ssd_inception_v2_coco_2018_01_28", "ssd_inception_v2_coco"),
    "ssd_mobilenet_v3_large_coco": ("ssd_mobilenet_v3_large_coco_2020_01_14",
                                    "ssd_mobilenet_v3_large_coco"),
    "ssd_mobilenet_v3_small_coco": ("ssd_mobilenet_v3_small_coco_2020_01_14",
                                    "ssd_mobilenet_v3_small_coco"),
    "ssd_resnet50_v1_fpn_coco": (
        "ssd_resnet50_v1_fpn_shared_box_predictor_640x640_coco14_sync_2018_07_03",
        "ssd_resnet50_v1_fpn_shared_box_predictor_640x640_coco14_sync"),
    "ssd_mobilenet_v1_ppn_coco": (
        "ssd_mobilenet_v1_ppn_shared_box_predictor_300x300_coco14_sync_2018_07_03",
        "ssd_mobilenet_v1_ppn_shared_box_predictor_300x300_coco14_sync"),
}


@pytest.mark.parametrize("preset_name", sorted(PRESETS))
def test_preset_names_the_zoo_tarball_and_validates(preset_name: str) -> None:
    folder, config_name = PRESETS[preset_name]
    preset = yaml.safe_load((REPO / "presets" / f"{preset_name}.yaml").read_text())
    tutorial = yaml.safe_load((REPO / "presets" / "wider_face.yaml").read_text())
    # A model preset sets only the model and its config name, so it combines with a dataset
    # preset (Snakemake merges --configfile files key by key).
    assert set(preset) == {"model", "pipeline"}
    assert preset["model"] == {"name": folder, "url": ZOO_URL.format(folder), "sha256": ""}
    assert preset["pipeline"]["config_name"] == config_name
    schema = REPO / "schemas" / "config.schema.yaml"
    combined = {**tutorial, "model": preset["model"],
                "pipeline": {**tutorial["pipeline"], **preset["pipeline"]}}
    validate(combined, str(schema))


def test_unpinned_download_logs_the_digest_and_how_to_pin_it(tmp_path: Path, caplog) -> None:
    member = tmp_path / "pipeline.config"
    member.write_text("model {}\n")
    source = tmp_path / "model.tar.gz"
    with tarfile.open(source, "w:gz") as archive:
        archive.add(member, arcname="model/pipeline.config")
    with caplog.at_level(logging.WARNING, logger="odflow.workflow.download"):
        download(source.as_uri(), tmp_path / "out.tar.gz")
    warning = "\n".join(r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    assert sha256_of(source) in warning and "model.sha256" in warning


def test_pinned_download_does_not_warn(tmp_path: Path, caplog) -> None:
    source = tmp_path / "model.tar.gz"
    source.write_bytes(b"bytes")
    with caplog.at_level(logging.WARNING, logger="odflow.workflow.download"):
        download(source.as_uri(), tmp_path / "out.tar.gz", sha256_of(source))
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_starter_architectures_follow_the_builder_registry(monkeypatch) -> None:
    names = starter.starter_architectures()
    assert {"ssd_mobilenet_v1", "ssd_inception_v2"} <= set(names)
    # Every builder once: an alias of one (ssd_mobilenet_v1_keras) is not offered again.
    assert {builder.FEATURE_EXTRACTORS[n] for n in names if n in builder.FEATURE_EXTRACTORS} \
        == set(builder.FEATURE_EXTRACTORS.values())
    assert "ssd_mobilenet_v1_keras" not in names
    # A variant fragment is offered once the type it builds is registered.
    registry = dict(builder.FEATURE_EXTRACTORS)
    registry.pop("ssd_mobilenet_v2", None)
    monkeypatch.setattr(builder, "FEATURE_EXTRACTORS", registry)
    assert "ssdlite_mobilenet_v2" not in starter.starter_architectures()
    registry["ssd_mobilenet_v2"] = registry["ssd_mobilenet_v1"]
    assert "ssdlite_mobilenet_v2" in starter.starter_architectures()


def test_unknown_starter_architecture_names_the_field_and_lists_the_supported() -> None:
    with pytest.raises(OdflowError) as info:
        starter.starter_pipeline_text(depth_multiplier=0.25, image_size=64, num_classes=1,
                                      architecture="ssd_vgg16")
    message = str(info.value)
    assert "model.starter.architecture" in message and "'ssd_vgg16'" in message
    assert "ssd_mobilenet_v1" in message and "ssd_inception_v2" in message


def test_variant_overrides_are_applied_to_the_template(monkeypatch) -> None:
    """SSDLite's overrides turn on the depthwise extra layers and predictor (checked with the
    MobileNet v1 builder standing in for v2, whose layers take the same options)."""
    registry = dict(builder.FEATURE_EXTRACTORS)
    registry.setdefault("ssd_mobilenet_v2", registry["ssd_mobilenet_v1"])
    monkeypatch.setattr(builder, "FEATURE_EXTRACTORS", registry)
    text = starter.starter_pipeline_text(depth_multiplier=0.25, image_size=64, num_classes=3,
                                         architecture="ssdlite_mobilenet_v2")
    ssd = loads(text).model.ssd
    assert ssd.feature_extractor.type == "ssd_mobilenet_v2"
    assert ssd.feature_extractor.use_depthwise
    assert ssd.box_predictor.convolutional_box_predictor.use_depthwise
    assert ssd.box_predictor.convolutional_box_predictor.kernel_size == 3
    # The rest of the template stays: sizes and classes filled in.
    assert ssd.num_classes == 3 and ssd.image_resizer.fixed_shape_resizer.height == 64
    assert ssd.feature_extractor.depth_multiplier == 0.25


@pytest.mark.slow
@pytest.mark.parametrize("architecture, scope", [
    ("ssd_mobilenet_v1", "FeatureExtractor/MobilenetV1/"),
    ("ssd_inception_v2", "FeatureExtractor/InceptionV2/"),
])
def test_starter_tarball_holds_the_architecture_with_the_zoo_names(
        tmp_path: Path, architecture: str, scope: str) -> None:
    tarball = starter.build_starter_tarball(tmp_path / "m.tar.gz", name="starter",
                                            depth_multiplier=0.25, image_size=64,
                                            architecture=architecture)
    with tarfile.open(tarball) as archive:
        assert sorted(archive.getnames()) == [
            "starter/checkpoint", "starter/model.ckpt.data-00000-of-00001",
            "starter/model.ckpt.index", "starter/pipeline.config"]
    extract_model(tarball, tmp_path / "model")
    config = loads((tmp_path / "model/pipeline.config").read_text())
    assert config.model.ssd.feature_extractor.type == architecture
    model = builder.build(config.model, is_training=False)
    reader = tf.train.load_checkpoint(str(tmp_path / "model/model.ckpt"))
    shapes = reader.get_variable_to_shape_map()
    assert shapes.pop("global_step") == []
    assert shapes == {n: v.shape.as_list() for n, v in model.named_variables().items()}
    assert any(name.startswith(scope) for name in shapes)


@pytest.mark.slow
@pytest.mark.workflow
def test_model_preset_combines_with_a_dataset_preset(tmp_path: Path) -> None:
    """The README's zoo-model command, as a dry run (no network) with synthetic data."""
    from tests.support.workflow import planned_jobs, run_snakemake

    folder, config_name = PRESETS["ssd_inception_v2_coco"]
    result = run_snakemake(
        tmp_path, None, "--configfile", str(REPO / "presets/wider_face.yaml"),
        str(REPO / "presets/ssd_inception_v2_coco.yaml"), "--config", "dataset={source: synthetic}",
        "-n", "-p", "exported_model/frozen_inference_graph.pb")
    assert result.returncode == 0, result.describe()
    assert planned_jobs(result.output)["download_model"] == 1, result.describe()
    assert f"--url={ZOO_URL.format(folder)}" in result.output
    assert f"ckpt/{config_name}.config" in result.output


@pytest.mark.parametrize("architecture", ["ssd_mobilenet_v1_fpn", "ssd_mobilenet_v1_ppn"])
def test_retinanet_variants_replace_anchors_predictor_and_loss(architecture: str) -> None:
    """A ``PATH={...}`` override replaces the whole message: no hard example miner is left
    over from the template beside the focal loss."""
    ssd = loads(starter.starter_pipeline_text(depth_multiplier=0.25, image_size=64,
                                              num_classes=1, architecture=architecture)
                ).model.ssd
    assert ssd.feature_extractor.type == architecture
    assert ssd.box_predictor.WhichOneof("box_predictor_oneof") == \
        "weight_shared_convolutional_box_predictor"
    assert ssd.loss.classification_loss.WhichOneof("classification_loss") == \
        "weighted_sigmoid_focal"
    assert not ssd.loss.HasField("hard_example_miner")
