"""``builder.build`` refuses what odflow does not implement, naming the config field."""

from __future__ import annotations

from pathlib import Path

import pytest
from google.protobuf import text_format

from odflow.errors import OdflowError
from odflow.model import builder
from odflow.model.ssd import SSDMetaArch
from odflow.protos import pipeline_pb2

ZOO = Path(__file__).parent / "fixtures/reference/model_zoo/ssd_mobilenet_v1_coco_2018_01_28"
SAMPLES = Path(__file__).parent / "fixtures/reference/sample_configs"


def model_config(extra: str = "", path: Path = ZOO / "pipeline.config"
                 ) -> pipeline_pb2.DetectionModel:
    config = pipeline_pb2.TrainEvalPipelineConfig()
    text_format.Parse(path.read_text(), config)
    text_format.Merge("ssd { feature_extractor { depth_multiplier: 0.25 } }", config.model)
    text_format.Merge(extra, config.model)
    return config.model


def test_builds_the_zoo_and_sample_configs():
    model = builder.build(model_config(), is_training=True)
    assert isinstance(model, SSDMetaArch)
    assert model.num_classes == 90 and model.image_size == (300, 300)
    sample = builder.build(model_config(path=SAMPLES / "ssd_mobilenet_v1_coco.config"), False)
    assert sample.is_training is False


def test_keras_type_is_an_alias():
    model = builder.build(model_config('ssd { feature_extractor { type: '
                                       '"ssd_mobilenet_v1_keras" } }'), False)
    assert "FeatureExtractor/MobilenetV1/Conv2d_0/weights" in model.named_variables()


@pytest.mark.parametrize("extra, field", [
    ('ssd { feature_extractor { type: "ssd_mobilenet_edgetpu" } }',
     "model.ssd.feature_extractor.type"),
    ("ssd { feature_extractor { fpn { min_level: 3 } } }", "model.ssd.feature_extractor.fpn"),
    ("ssd { mask_head_config { mask_height: 15 } }", "model.ssd.mask_head_config"),
    ("ssd { image_resizer { keep_aspect_ratio_resizer { min_dimension: 300 } } }",
     "model.ssd.image_resizer.keep_aspect_ratio_resizer"),
    ("ssd { image_resizer { fixed_shape_resizer { convert_to_grayscale: true } } }",
     "convert_to_grayscale"),
    ("ssd { box_predictor { weight_shared_convolutional_box_predictor { depth: 64 } } }",
     "model.ssd.box_predictor.weight_shared_convolutional_box_predictor"),
    ("ssd { feature_extractor { conv_hyperparams { group_norm {} } } }",
     "model.ssd.feature_extractor.conv_hyperparams.group_norm"),
    (("ssd { feature_extractor { conv_hyperparams { initializer "
     '{ keras_initializer_by_name: "glorot_uniform" } } } }'),
     "model.ssd.feature_extractor.conv_hyperparams.initializer.keras_initializer_by_name"),
    ("ssd { add_background_class: false }", "model.ssd.add_background_class"),
    ("ssd { loss { random_example_sampler {} } }", "model.ssd.loss.random_example_sampler"),
    ("ssd { feature_extractor { num_layers: 5 } }", "model.ssd.anchor_generator"),
    ("ssd { num_classes: 0 }", "model.ssd.num_classes"),
])
def test_unsupported_options_name_the_field(extra, field):
    with pytest.raises(OdflowError, match=field.replace(".", r"\.")):
        builder.build(model_config(extra), is_training=True)


def test_unsupported_type_lists_the_supported_ones():
    with pytest.raises(OdflowError) as info:
        builder.build(model_config('ssd { feature_extractor { type: "ssd_resnet101_v1_fpn" } }'),
                      True)
    assert "'ssd_mobilenet_v1'" in str(info.value)
    assert "'ssd_inception_v2'" in str(info.value)
    assert "'ssd_resnet50_v1_fpn'" in str(info.value)  # a supported one, listed
    assert "ssd_resnet101_v1_fpn" in str(info.value)


def test_non_ssd_meta_architecture_is_refused():
    config = pipeline_pb2.DetectionModel()
    config.faster_rcnn.SetInParent()
    with pytest.raises(OdflowError, match="faster_rcnn.*model.ssd"):
        builder.build(config, is_training=True)
    with pytest.raises(OdflowError, match="model.ssd"):
        builder.build(pipeline_pb2.DetectionModel(), is_training=True)


def test_missing_sections_are_named():
    config = model_config()
    config.ssd.ClearField("box_predictor")
    with pytest.raises(OdflowError, match=r"model\.ssd\.box_predictor is required"):
        builder.build(config, is_training=True)
