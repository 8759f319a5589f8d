"""Generic ``dotted.path=value`` overrides: each kind of edit, and each kind of mistake."""

from __future__ import annotations

from pathlib import Path

import pytest

from odflow import config
from odflow.errors import OdflowError
from odflow.protos import pipeline_pb2

SAMPLE = Path(__file__).parent / "fixtures/reference/sample_configs/ssd_mobilenet_v1_coco.config"


@pytest.fixture(scope="module")
def base() -> pipeline_pb2.TrainEvalPipelineConfig:
    return config.load(SAMPLE)


def apply(base, *overrides: str) -> pipeline_pb2.TrainEvalPipelineConfig:
    return config.apply_overrides(base, overrides)


def test_input_is_not_modified(base) -> None:
    before = config.dumps(base)
    apply(base, "model.ssd.num_classes=1", "train_config.data_augmentation_options=[]")
    assert config.dumps(base) == before


def test_typed_scalars(base) -> None:
    out = apply(base, "model.ssd.num_classes=1", "train_config.batch_size=8",
                "model.ssd.post_processing.batch_non_max_suppression.iou_threshold=0.5",
                "train_config.gradient_clipping_by_norm=10",
                "model.ssd.normalize_loss_by_num_matches=false",
                "train_config.fine_tune_checkpoint=ckpt/model.ckpt",
                "train_input_reader.label_map_path='quoted/label map.pbtxt'")
    assert out.model.ssd.num_classes == 1
    assert out.train_config.batch_size == 8
    assert out.model.ssd.post_processing.batch_non_max_suppression.iou_threshold == 0.5
    assert out.train_config.gradient_clipping_by_norm == 10.0
    assert out.model.ssd.normalize_loss_by_num_matches is False
    assert out.model.ssd.HasField("normalize_loss_by_num_matches")
    assert out.train_config.fine_tune_checkpoint == "ckpt/model.ckpt"
    assert out.train_input_reader.label_map_path == "quoted/label map.pbtxt"


def test_enum_by_name(base) -> None:
    out = apply(base, "model.ssd.post_processing.score_converter=SOFTMAX")
    assert out.model.ssd.post_processing.score_converter == pipeline_pb2.PostProcessing.SOFTMAX


def test_repeated_message_by_index(base) -> None:
    out = apply(base, "train_config.data_augmentation_options[1].ssd_random_crop."
                      "operations[+]={ min_object_covered: 0.5 }",
                "train_config.data_augmentation_options[-1].ssd_random_crop.operations[0]."
                "random_coef=0.25")
    crop = out.train_config.data_augmentation_options[1].ssd_random_crop
    assert len(crop.operations) == 1
    assert crop.operations[0].min_object_covered == 0.5
    assert crop.operations[0].random_coef == 0.25


def test_append_to_repeated_message(base) -> None:
    out = apply(base, "train_config.data_augmentation_options[+]={ random_vertical_flip {} }",
                "train_config.data_augmentation_options[+].random_adjust_brightness."
                "max_delta=0.1")
    steps = [step.WhichOneof("preprocessing_step")
             for step in out.train_config.data_augmentation_options]
    assert steps == ["random_horizontal_flip", "ssd_random_crop", "random_vertical_flip",
                     "random_adjust_brightness"]
    assert out.train_config.data_augmentation_options[3].random_adjust_brightness.max_delta == (
        pytest.approx(0.1))


def test_replace_whole_element_and_empty_list(base) -> None:
    out = apply(base, "train_config.data_augmentation_options[0]={ random_vertical_flip {} }")
    assert out.train_config.data_augmentation_options[0].WhichOneof(
        "preprocessing_step") == "random_vertical_flip"
    out = apply(base, "train_config.data_augmentation_options=[]")
    assert len(out.train_config.data_augmentation_options) == 0


def test_oneof_branch_clears_sibling(base) -> None:
    out = apply(base, "train_config.optimizer.adam_optimizer.learning_rate."
                      "constant_learning_rate.learning_rate=0.001")
    optimizer = out.train_config.optimizer
    assert optimizer.WhichOneof("optimizer") == "adam_optimizer"
    assert not optimizer.HasField("rms_prop_optimizer")
    rate = optimizer.adam_optimizer.learning_rate
    assert rate.WhichOneof("learning_rate") == "constant_learning_rate"
    assert rate.constant_learning_rate.learning_rate == pytest.approx(0.001)
    # Keeps the optimizer's other settings (not part of the oneof).
    assert optimizer.use_moving_average == base.train_config.optimizer.use_moving_average


def test_empty_message_selects_oneof_branch(base) -> None:
    out = apply(base, "model.ssd.loss.classification_loss.weighted_softmax={}")
    assert out.model.ssd.loss.classification_loss.WhichOneof(
        "classification_loss") == "weighted_softmax"


def test_message_text_value_replaces_it(base) -> None:
    out = apply(base, "model.ssd.image_resizer={ keep_aspect_ratio_resizer "
                      "{ min_dimension: 320 max_dimension: 640 } }")
    resizer = out.model.ssd.image_resizer
    assert resizer.WhichOneof("image_resizer_oneof") == "keep_aspect_ratio_resizer"
    assert resizer.keep_aspect_ratio_resizer.max_dimension == 640


def test_repeated_scalars(base) -> None:
    path = "model.ssd.anchor_generator.ssd_anchor_generator.aspect_ratios"
    assert list(apply(base, f"{path}=[1, 2.0]").model.ssd.anchor_generator
                .ssd_anchor_generator.aspect_ratios) == [1.0, 2.0]
    assert apply(base, f"{path}[0]=4").model.ssd.anchor_generator \
        .ssd_anchor_generator.aspect_ratios[0] == 4.0
    assert list(apply(base, f"{path}[+]=5").model.ssd.anchor_generator
                .ssd_anchor_generator.aspect_ratios)[-1] == 5.0
    assert not apply(base, f"{path}=[]").model.ssd.anchor_generator \
        .ssd_anchor_generator.aspect_ratios
    inputs = "train_input_reader.tf_record_input_reader.input_path"
    out = apply(base, f"{inputs}=['a.record-?????-of-00010', \"b,c.record\"]")
    assert list(out.train_input_reader.tf_record_input_reader.input_path) == [
        "a.record-?????-of-00010", "b,c.record"]
    out = apply(base, f"{inputs}=datasets/train.record")
    assert list(out.train_input_reader.tf_record_input_reader.input_path) == [
        "datasets/train.record"]


def test_eval_reader_by_index(base) -> None:
    out = apply(base, "eval_input_reader[0].shuffle=true",
                "eval_input_reader[+].label_map_path=b.pbtxt")
    assert out.eval_input_reader[0].shuffle is True
    assert out.eval_input_reader[1].label_map_path == "b.pbtxt"


# ----------------------------------------------------------------------------- errors


@pytest.mark.parametrize("override,expected", [
    ("model.ssd.num_clases=1",
     "override model.ssd.num_clases: Ssd has no field `num_clases`; did you mean: num_classes?"),
    ("modle.ssd.num_classes=1",
     "override modle: TrainEvalPipelineConfig has no field `modle`; did you mean: model?"),
    ("model.ssd.num_classes=one",
     "override model.ssd.num_classes: field `num_classes` expects an integer (int32), got 'one'"),
    ("train_config.batch_size=-1",
     ("override train_config.batch_size: field `batch_size` expects an integer in "
      "[0, 4294967295] (uint32), got '-1'")),
    ("model.ssd.post_processing.batch_non_max_suppression.iou_threshold=high",
     "field `iou_threshold` expects a number (float), got 'high'"),
    ("train_config.sync_replicas=maybe",
     "field `sync_replicas` expects a bool (true or false), got 'maybe'"),
    ("model.ssd.post_processing.score_converter=SIGMOD",
     "expects a value of enum ScoreConverter, got 'SIGMOD'; did you mean: SIGMOID?"),
    ("eval_input_reader.shuffle=false",
     "`eval_input_reader` is repeated; say which element, e.g. eval_input_reader[0]"),
    ("eval_input_reader[3].shuffle=false",
     "index 3 is out of range; the field has 1 element(s)"),
    ("eval_input_reader[x].shuffle=false", "index [x] is not an integer"),
    ("train_config.batch_size[0]=1", "`batch_size` is not repeated; drop the [0]"),
    ("model.ssd.num_classes.value=1", "`num_classes` is of type int32, not a message"),
    ("train_config=3", "is a message (TrainConfig); give {} or a text-format body"),
    ("train_config.data_augmentation_options={ random_vertical_flip {} }",
     "`data_augmentation_options` is a repeated message"),
    ("model.ssd.feature_extractor={ typ: 'x' }",
     "unknown field `typ` in SsdFeatureExtractor; did you mean: type?"),
    ("model.ssd.num_classes", "expected PATH=VALUE"),
    ("=1", "expected PATH=VALUE"),
    ("model..num_classes=1", "is not a field name"),
    ("model.ssd.anchor_generator.ssd_anchor_generator.aspect_ratios=[1, 'x]",
     "unterminated quote"),
])
def test_override_errors(base, override: str, expected: str) -> None:
    with pytest.raises(OdflowError) as error:
        apply(base, override)
    assert expected in str(error.value)
