"""`odflow anchors fit` and `anchors.fit`: the generator's fields searched for a higher
coverage of small boxes, the printed override lines reproducing it, `config patch
--fit-anchors` applying the same lines, and the fitted config training."""

from __future__ import annotations

import io
import logging
import shlex
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from odflow.anchors.coverage import compute_coverage
from odflow.anchors.fit import fit_anchors
from odflow.anchors.model import model_anchors
from odflow.config.overrides import apply_overrides
from tests.support.training import REPO, SAMPLE_CONFIG, make_config

GENERATOR = "model.ssd.anchor_generator.ssd_anchor_generator"


def small_boxes(count: int, pixels: tuple[float, float], image: int, seed: int) -> np.ndarray:
    """Normalised square-ish boxes of ``pixels`` side (at an ``image``-pixel input)."""
    rng = np.random.default_rng(seed)
    side = rng.uniform(*pixels, size=(count, 1)) / image
    aspect = rng.uniform(0.8, 1.25, size=(count, 1))
    height, width = side / np.sqrt(aspect), side * np.sqrt(aspect)
    y, x = rng.uniform(0.05, 0.95 - height), rng.uniform(0.05, 0.95 - width)
    return np.concatenate([y, x, y + height, x + width], axis=1)


def sample_config():
    from odflow import config as config_lib

    config = config_lib.load(SAMPLE_CONFIG)
    config.model.ssd.num_classes = 1
    return config


@pytest.mark.slow
def test_fit_raises_the_coverage_of_small_boxes() -> None:
    config = sample_config()  # ssd_mobilenet_v1_coco at 300x300: smallest anchor 30 px
    boxes = small_boxes(400, (16, 30), 300, seed=1)
    result = fit_anchors(config, boxes)
    assert result.after.overall.covered > result.before.overall.covered
    assert result.after.by_size["small"].covered > result.before.by_size["small"].covered
    assert result.overrides and all(line.startswith(GENERATOR + ".")
                                    for line in result.overrides), result.overrides
    # The printed lines give exactly the "after" coverage on the user's config.
    fitted = apply_overrides(config, result.overrides)
    anchors = model_anchors(fitted)
    again = compute_coverage(boxes, anchors.anchors, anchors.matched_threshold, (300, 300))
    assert again.overall == result.after.overall
    assert anchors.anchors_per_location == result.anchors_per_location_after
    # Deterministic: the same data gives the same lines.
    assert fit_anchors(config, boxes).overrides == result.overrides
    text = "\n".join(result.report_lines())
    assert f"before: {result.before.line()}" in text and f"after:  {result.after.line()}" in text
    if result.head_shapes_change:
        assert "weights in the fine-tune checkpoint are dropped" in text


def test_fit_keeps_anchors_that_cannot_be_beaten() -> None:
    """Boxes equal to the config's own anchors are all covered: nothing to change."""
    config = sample_config()
    anchors = model_anchors(config).anchors
    result = fit_anchors(config, anchors[::7])
    assert result.before.fraction == 1.0 and result.overrides == []
    assert "nothing to change" in "\n".join(result.report_lines())


def test_fit_refuses_a_generator_with_explicit_sizes() -> None:
    from odflow.errors import OdflowError

    config = sample_config()
    config.model.ssd.anchor_generator.flexible_grid_anchor_generator.SetInParent()
    with pytest.raises(OdflowError, match="flexible_grid_anchor_generator"):
        fit_anchors(config, small_boxes(10, (10, 20), 300, seed=2))


def write_small_box_records(path: Path, count: int, size: int = 96) -> None:
    """Images of ``size`` pixels, each with two bright boxes of 10 to 20 pixels."""
    from odflow.data.example import ImageAnnotation
    from odflow.data.records import RecordWriter

    rng = np.random.default_rng(5)
    with RecordWriter(path) as writer:
        for index in range(count):
            pixels = rng.integers(0, 60, size=(size, size, 3), dtype=np.uint8)
            boxes = small_boxes(2, (10, 20), size, seed=index)
            for ymin, xmin, ymax, xmax in (boxes * size).astype(int):
                pixels[ymin:ymax, xmin:xmax] = 230
            buffer = io.BytesIO()
            Image.fromarray(pixels).save(buffer, format="JPEG", quality=90)
            writer.write(ImageAnnotation(
                encoded=buffer.getvalue(), image_format="jpeg", filename=f"s{index}.jpg",
                source_id=f"s{index}", height=size, width=size, boxes=boxes,
                class_texts=["thing"] * 2, class_ids=[1] * 2))


@pytest.mark.slow
def test_cli_fit_then_the_fitted_config_trains(tmp_path: Path, capsys) -> None:
    """The README's `odflow anchors fit --pipeline_config ...` as written, `config patch
    --fit-anchors` giving the same config as the printed lines, and two training steps on it
    (logging the higher coverage at the start)."""
    from odflow import config as config_lib
    from odflow.cli import main
    from odflow.train.loop import TrainOptions, train

    write_small_box_records(tmp_path / "train.record", 12)
    write_small_box_records(tmp_path / "val.record", 2)
    config_path = tmp_path / "pipeline.config"
    config_lib.save(make_config(tmp_path, num_steps=2, augment=False), config_path)

    command = f"odflow anchors fit --pipeline_config {config_path}"
    assert main(shlex.split(command)[1:]) == 0
    out = capsys.readouterr().out
    lines = [line.strip().strip('"- ') for line in out.splitlines()
             if line.strip().startswith(f'- "{GENERATOR}')]
    before = next(line for line in out.splitlines() if line.startswith("before: "))
    after = next(line for line in out.splitlines() if line.startswith("after:  "))
    percent = [float(text.split("coverage: ")[1].split(" %")[0]) for text in (before, after)]
    assert percent[1] > percent[0] and lines, out

    fitted = tmp_path / "fitted.config"
    assert main(["config", "patch", str(config_path), "-o", str(fitted), "--fit-anchors",
                 "--train-input", str(tmp_path / "train.record")]) == 0
    expected = apply_overrides(config_lib.load(config_path), lines)
    assert config_lib.load(fitted).model == expected.model

    messages: list[str] = []
    handler = logging.Handler(logging.INFO)
    handler.emit = lambda record: messages.append(record.getMessage())
    logger = logging.getLogger("odflow.train")
    logger.addHandler(handler)
    try:
        result = train(TrainOptions(model_dir=str(tmp_path / "ckpt"),
                                    pipeline_config_path=str(fitted), eval_every=-1, seed=3,
                                    checkpoint_every_minutes=0, show_progress_bar=False))
    finally:
        logger.removeHandler(handler)
    assert result.step == 2
    logged = [message for message in messages if "anchor coverage: " in message]
    assert logged and after.split("after:  ")[1] in logged[0], messages


@pytest.mark.slow
def test_fit_searches_a_multiscale_generator() -> None:
    """RetinaNet-style anchors (the FPN zoo model, at 128x128 to keep the grid small): the
    fit changes anchor_scale, scales_per_octave or aspect_ratios and covers more small boxes."""
    from odflow import config as config_lib

    config = config_lib.load(
        REPO / "tests/fixtures/reference/model_zoo/ssd_mobilenet_v1_fpn_shared_box_predictor_640x640"
        "_coco14_sync_2018_07_03/pipeline.config")
    config.model.ssd.num_classes = 1
    config.model.ssd.image_resizer.fixed_shape_resizer.height = 128
    config.model.ssd.image_resizer.fixed_shape_resizer.width = 128
    # anchor_scale 4 at level 3 is 32 px: boxes of 8 to 14 px are below it.
    boxes = small_boxes(200, (8, 14), 128, seed=3)
    result = fit_anchors(config, boxes)
    prefix = "model.ssd.anchor_generator.multiscale_anchor_generator."
    assert result.after.overall.covered > result.before.overall.covered
    assert [line.split("=")[0] for line in result.overrides] == [
        prefix + "anchor_scale", prefix + "scales_per_octave", prefix + "aspect_ratios"]
    anchors = model_anchors(apply_overrides(config, result.overrides))
    assert compute_coverage(boxes, anchors.anchors, 0.5, (128, 128)).overall == \
        result.after.overall


def test_the_workflow_flag_becomes_config_patch_fit_anchors() -> None:
    from odflow.config.cli import patch_pipeline_config_args

    common = ["--template", "t.config", "--output", "o.config", "--label-map", "l.pbtxt",
              "--train-input", "t.record", "--eval-input", "v.record",
              "--fine-tune-checkpoint", "ckpt/model.ckpt", "--set", "a.b=1"]
    assert patch_pipeline_config_args([*common, "--fit-anchors", "true"])[-1] == "--fit-anchors"
    assert "--fit-anchors" not in patch_pipeline_config_args([*common, "--fit-anchors", "false"])
    assert "--fit-anchors" not in patch_pipeline_config_args(common)


def test_records_without_boxes_are_a_clear_error(tmp_path: Path, capsys) -> None:
    from odflow.cli import main
    from odflow.data.example import ImageAnnotation
    from odflow.data.records import RecordWriter

    buffer = io.BytesIO()
    Image.new("RGB", (32, 32)).save(buffer, format="JPEG")
    with RecordWriter(tmp_path / "empty.record") as writer:
        writer.write(ImageAnnotation(
            encoded=buffer.getvalue(), image_format="jpeg", filename="e.jpg", source_id="e",
            height=32, width=32, boxes=np.zeros((0, 4)), class_texts=[], class_ids=[]))
    config = tmp_path / "pipeline.config"
    from odflow import config as config_lib

    config_lib.save(sample_config(), config)
    code = main(["anchors", "fit", "--pipeline_config", str(config), "--records",
                 str(tmp_path / "empty.record")])
    error = capsys.readouterr().err
    assert code == 2 and "empty.record: no boxes" in error and "build the training records" \
        in error, error
