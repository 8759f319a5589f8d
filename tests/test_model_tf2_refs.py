"""odflow's ssd_mobilenet_v2_keras and FPNLite models are numerically the TF2 API's: restored
(``full``) from the checkpoints the TF2 API wrote in ../shared/reference/tf2_zoo/refs, they
reproduce that API's preprocessed inputs, anchors, raw predictions and top-10 detections on
the two test images within the reference's tolerances (raw predictions 2e-3, the rest 1e-4,
classes equal; see its README for why).  The references are read in place: skipped when
missing, failed when ODFLOW_CI is set."""

from __future__ import annotations

import numpy as np
import pytest

from odflow import config as odflow_config
from odflow.model import builder
from odflow.model.tf2_checkpoint import restore_v2
from tests.support import tf2_zoo

MODELS = ("ssd_mobilenet_v2_320x320_coco17_tpu-8", "ssd_mobilenet_v2_fpnlite_320x320_coco17_tpu-8")


@pytest.mark.slow
@pytest.mark.parametrize("name", MODELS)
def test_matches_the_tf2_api(name):
    folder = tf2_zoo.refs(name)
    reference = np.load(folder / "refs.npz")
    model = builder.build(odflow_config.load(folder / "pipeline.config").model,
                          is_training=False)
    report = restore_v2(model, folder / "checkpoint" / "ckpt-0", "full")
    assert len(report.restored) == len(model.variables)
    assert report.unused == {"save_counter": "checkpoint bookkeeping"}
    tf2_zoo.assert_matches_refs(reference, tf2_zoo.port_outputs(model, reference["image_names"]))
