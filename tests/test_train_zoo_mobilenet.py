"""A MobileNet v3 detector through training (2 steps, moving averages, checkpoint) and export
on tiny generated data: the model section is the zoo's own v3 one (focal loss, depthwise box
predictor with BN, squeeze-excite, hard-swish), small variant at depth 0.35 and 96 px.  (The v2
and SSDLite train steps run in benchmarks/zoo_mobilenet_step.py; one model here keeps the
suite's time down.)"""

from __future__ import annotations

import numpy as np
import pytest

from odflow import config as config_lib
from odflow.export.exporter import export_model
from odflow.train.loop import TrainOptions, train
from tests.support import tf1_meta, zoo
from tests.support.training import make_config

pytestmark = pytest.mark.slow


def test_two_steps_then_export(tmp_path) -> None:
    folder, extractor = "ssd_mobilenet_v3_large_coco_2020_01_14", "ssd_mobilenet_v3_small"
    cfg = make_config(tmp_path, num_steps=2, use_moving_average=True, size=96)
    zoo_model = zoo.pipeline(folder, f"ssd {{ num_classes: 1 feature_extractor {{ type: "
                             f"'{extractor}' depth_multiplier: 0.35 }} image_resizer "
                             "{ fixed_shape_resizer { height: 96 width: 96 } } }")
    cfg.model.CopyFrom(zoo_model.model)
    path = tmp_path / "pipeline.config"
    config_lib.save(cfg, path)
    result = train(TrainOptions(model_dir=str(tmp_path / "ckpt"), pipeline_config_path=str(path),
                                log_every=1, checkpoint_every_steps=2,
                                checkpoint_every_minutes=0, eval_every=-1, seed=3,
                                show_progress_bar=False))
    assert result.step == 2
    export_model(cfg, result.checkpoint, tmp_path / "exported")
    images = np.random.default_rng(0).integers(0, 256, (1, 120, 90, 3)).astype(np.uint8)
    got = tf1_meta.run_frozen_graph(tmp_path / "exported" / "frozen_inference_graph.pb", images)
    assert got["detection_boxes"].shape == (1, 100, 4)
    assert np.isfinite(got["detection_scores"]).all()
