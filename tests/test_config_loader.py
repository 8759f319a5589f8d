"""Loading pipeline configs: every fixture parses, errors point at the spot, output is stable."""

from __future__ import annotations

from pathlib import Path

import pytest

from odflow import config
from odflow.errors import OdflowError

ROOT = Path(__file__).parent / "fixtures"
CONFIGS = sorted([*ROOT.glob("reference/sample_configs/*.config"),
                  ROOT / "reference/model_zoo/ssd_mobilenet_v1_coco_2018_01_28/pipeline.config",
                  ROOT / "seed/ssd_mobilenet_v1_coco_patched.config"])
SAMPLE = ROOT / "reference/sample_configs/ssd_mobilenet_v1_coco.config"


@pytest.mark.parametrize("path", CONFIGS, ids=lambda path: path.name)
def test_fixture_configs_parse(path: Path) -> None:
    loaded = config.load(path)
    assert config.meta_architecture(loaded) == "ssd"
    assert loaded.model.ssd.num_classes > 0
    assert loaded.train_input_reader.tf_record_input_reader.input_path
    assert len(loaded.eval_input_reader) == 1


def test_sample_config_values() -> None:
    loaded = config.load(SAMPLE)
    ssd = loaded.model.ssd
    assert ssd.num_classes == 90
    assert ssd.feature_extractor.type == "ssd_mobilenet_v1"
    assert list(ssd.anchor_generator.ssd_anchor_generator.aspect_ratios) == pytest.approx(
        [1.0, 2.0, 0.5, 3.0, 0.3333])
    assert loaded.train_config.from_detection_checkpoint is True
    assert loaded.train_config.optimizer.WhichOneof("optimizer") == "rms_prop_optimizer"
    # A default from the schema (not in the file): staircase decay.
    rate = loaded.train_config.optimizer.rms_prop_optimizer.learning_rate
    assert rate.exponential_decay_learning_rate.staircase is True


def test_dumps_round_trips_and_is_deterministic(tmp_path: Path) -> None:
    loaded = config.load(SAMPLE)
    text = config.dumps(loaded)
    assert config.loads(text) == loaded
    assert config.dumps(config.loads(text)) == text
    config.save(loaded, tmp_path / "a.config")
    config.save(config.load(SAMPLE), tmp_path / "b.config")
    assert (tmp_path / "a.config").read_bytes() == (tmp_path / "b.config").read_bytes()
    assert (tmp_path / "a.config").read_text() == text


def test_api_syntax_variants_parse() -> None:
    """What the API's own configs use: colons before braces, commas, semicolons, list values."""
    loaded = config.loads("""
        model: { ssd: { num_classes: 3,
          anchor_generator { multiscale_anchor_generator { aspect_ratios: [1.0, 2.0, 0.5] } }
          feature_extractor { type: 'ssd_mobilenet_v1' } } }
        eval_config: { batch_size: 1; }
        train_config < batch_size: 2 >
    """)
    assert loaded.model.ssd.num_classes == 3
    assert list(loaded.model.ssd.anchor_generator.multiscale_anchor_generator.aspect_ratios) == [
        1.0, 2.0, 0.5]
    assert loaded.train_config.batch_size == 2


def test_repeated_singular_field_keeps_last_value_like_the_api() -> None:
    assert config.loads("model { ssd { num_classes: 1 num_classes: 2 } }").model.ssd.num_classes == 2


def test_fields_the_schema_never_had_but_shipped_configs_use_are_dropped(
        caplog: pytest.LogCaptureFixture) -> None:
    text = ("train_config: {\n  batch_size: 24\n  load_all_detection_checkpoint_vars: True\n"
            "  load_all_optimizer_checkpoint_vars: False\n"
            "  load_all_moving_average_checkpoint_vars: False\n"
            "  include_global_step: False\n  num_steps: 600\n}\n")
    loaded = config.loads(text, "quantize.config")
    assert loaded.train_config.num_steps == 600
    assert loaded.train_config.load_all_detection_checkpoint_vars is True
    assert "quantize.config:4: ignoring `load_all_optimizer_checkpoint_vars`" in caplog.text


# ----------------------------------------------------------------------------- errors


def test_unknown_field_gives_position_and_nearest_names() -> None:
    text = "model {\n  ssd {\n    num_clases: 1\n  }\n}\n"
    with pytest.raises(OdflowError) as error:
        config.loads(text, "my.config")
    assert str(error.value) == ("my.config:3:5: unknown field `num_clases` in Ssd; "
                                "did you mean: num_classes?")


def test_unknown_field_without_near_names_lists_valid_ones() -> None:
    with pytest.raises(OdflowError, match=r"^c:1:1: unknown field `zzz` in TrainEvalPipelineConfig; "
                                          r"valid names: eval_config, eval_input_reader, "):
        config.loads("zzz: 1", "c")


def test_unknown_enum_value_suggests_names() -> None:
    text = "model { ssd { post_processing { score_converter: SIGMOD } } }"
    with pytest.raises(OdflowError, match=r"^c:1:\d+: unknown value `SIGMOD` for enum "
                                          r"ScoreConverter; did you mean: SIGMOID"):
        config.loads(text, "c")


@pytest.mark.parametrize("text,expected", [
    ("model { ssd { num_classes: 1 }", r"^c:1:\d+: Expected \"}\""),
    ("model { ssd { num_classes: one } }", r"^c:1:\d+: .*Couldn't parse integer"),
    ("train_config { batch_size: 2.5 }", r"^c:1:\d+: .*Couldn't parse integer"),
    ("model { ssd { num_classes: 1 } } }", r"^c:1:\d+: "),
])
def test_syntax_errors_name_line_and_column(text: str, expected: str) -> None:
    with pytest.raises(OdflowError, match=expected):
        config.loads(text, "c")


@pytest.mark.parametrize("meta", ["faster_rcnn", "center_net", "experimental_model"])
def test_other_meta_architectures_are_refused_by_name(meta: str) -> None:
    # Real bodies (unknown to our placeholder protos) and empty ones alike.
    for body in ("number_of_stages: 2 first_stage_features_stride: 16", ""):
        text = f"# comment\nmodel {{\n  {meta} {{ {body} }}\n}}\ntrain_config {{ batch_size: 1 }}"
        with pytest.raises(OdflowError) as error:
            config.loads(text, "frcnn.config")
        message = str(error.value)
        assert message.startswith("frcnn.config: the model is `" + meta + "`")
        assert "odflow trains SSD models only" in message


def test_meta_architecture_check_can_be_skipped() -> None:
    loaded = config.loads("model { center_net { } }", require_ssd=False)
    assert config.meta_architecture(loaded) == "center_net"


def test_missing_unreadable_and_directory_paths(tmp_path: Path) -> None:
    with pytest.raises(OdflowError, match=r"missing.config: pipeline config not found"):
        config.load(tmp_path / "missing.config")
    with pytest.raises(OdflowError, match="is a directory"):
        config.load(tmp_path)
    binary = tmp_path / "binary.config"
    binary.write_bytes(b"\xff\xfe\x00model")
    with pytest.raises(OdflowError, match="not a text pipeline config"):
        config.load(binary)


def test_save_failure_leaves_no_partial_file(tmp_path: Path, monkeypatch) -> None:
    target = tmp_path / "out.config"
    loaded = config.load(SAMPLE)

    def explode(_config):
        raise RuntimeError("disk full")

    monkeypatch.setattr("odflow.config.loader.dumps", explode)
    with pytest.raises(RuntimeError):
        config.save(loaded, target)
    assert list(tmp_path.iterdir()) == []


def test_ssd_family_features_parse() -> None:
    """Fields the API's other SSD configs (FPN, EfficientDet, MobileDet, quantized) rely on."""
    loaded = config.loads("""
    model { ssd {
      num_classes: 90 add_background_class: false encode_background_as_zeros: true
      inplace_batchnorm_update: true freeze_batchnorm: false
      anchor_generator { multiscale_anchor_generator {
        min_level: 3 max_level: 7 anchor_scale: 4.0 aspect_ratios: [1.0, 2.0, 0.5]
        scales_per_octave: 3 } }
      image_resizer { keep_aspect_ratio_resizer {
        min_dimension: 512 max_dimension: 512 pad_to_max_dimension: true } }
      box_predictor { weight_shared_convolutional_box_predictor {
        depth: 64 class_prediction_bias_init: -4.6 num_layers_before_predictor: 3
        kernel_size: 3 use_depthwise: true share_prediction_tower: true
        conv_hyperparams { force_use_bias: true activation: SWISH
          regularizer { l2_regularizer { weight: 0.00004 } }
          initializer { random_normal_initializer { stddev: 0.01 mean: 0.0 } }
          batch_norm { scale: true, decay: 0.99, epsilon: 0.001, } } } }
      feature_extractor { type: 'ssd_efficientnet-b0_bifpn_keras'
        bifpn { min_level: 3 max_level: 7 num_iterations: 3 num_filters: 64 combine_method: 'sum' }
        use_depthwise: true use_explicit_padding: true pad_to_multiple: 32
        override_base_feature_extractor_hyperparams: true }
      matcher { argmax_matcher { use_matmul_gather: true } }
      loss { classification_loss { weighted_sigmoid_focal { alpha: 0.25 gamma: 1.5 } }
             localization_loss { weighted_smooth_l1 { delta: 1.0 } } }
      normalize_loc_loss_by_codesize: true
      post_processing { batch_non_max_suppression { use_static_shapes: true }
                        score_converter: SIGMOID } } }
    train_config {
      fine_tune_checkpoint_version: V2 fine_tune_checkpoint_type: "classification"
      sync_replicas: true replicas_to_aggregate: 8 use_bfloat16: true
      max_number_of_boxes: 100 unpad_groundtruth_tensors: false
      data_augmentation_options { random_horizontal_flip { keypoint_flip_permutation: 1 } }
      data_augmentation_options { random_scale_crop_and_pad_to_square {
        output_size: 512 scale_min: 0.1 scale_max: 2.0 } }
      data_augmentation_options { ssd_random_crop_fixed_aspect_ratio { } }
      data_augmentation_options { random_crop_image { min_aspect_ratio: 0.75 } }
      optimizer { momentum_optimizer: { learning_rate: { cosine_decay_learning_rate {
        learning_rate_base: 8e-2 total_steps: 300000 warmup_learning_rate: .001
        warmup_steps: 2500 } } momentum_optimizer_value: 0.9 } use_moving_average: false } }
    eval_config { metrics_set: "coco_detection_metrics" include_metrics_per_category: true }
    eval_input_reader { sample_1_of_n_examples: 10 num_epochs: 1 }
    graph_rewriter { quantization { delay: 48000 activation_bits: 8 weight_bits: 8 } }
    """)
    assert loaded.graph_rewriter.quantization.delay == 48000
    assert loaded.model.ssd.feature_extractor.bifpn.num_filters == 64
