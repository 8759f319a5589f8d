"""The README's first command: the offline demo, as shipped, to an exported detector that
finds the synthetic faces (issue 6: AP50 of at least 0.8 on the synthetic val set; since issue
20, 0.87: the shipped settings (flips only, no ssd_random_crop) reached 0.916, 0.905 and 0.890
(train seed 1, three runs: not bit-reproducible) and 0.912 (seed 2), so a change that costs a
few points of AP50 fails here; with the tutorial's crop they reached 0.873-0.892: benchmarks/demo.md).

This is the one test that trains for real (2,000 steps, 4.5-5 minutes on two idle cores);
it guards the demo's learnability against changes anywhere in the model, the losses, the
input pipeline or the synthetic data.  Its duration is printed, not asserted: speed is
measured in the README and benchmarks/.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.support.workflow import run_snakemake

pytestmark = [pytest.mark.slow, pytest.mark.workflow]

MIN_AP50 = 0.87


def test_shipped_demo_exports_a_detector_that_finds_faces(tmp_path: Path) -> None:
    started = time.monotonic()
    result = run_snakemake(tmp_path, None, "-c2", "exported_model/frozen_inference_graph.pb",
                           "eval/metrics.json", "eval/metrics_frozen_graph.json", timeout=1500)
    assert result.returncode == 0, result.describe()
    print(f"demo: export and evaluation in {time.monotonic() - started:.0f} s")

    for name in ("frozen_inference_graph.pb", "saved_model/saved_model.pb", "model.ckpt.index",
                 "checkpoint", "pipeline.config", "label_map.pbtxt"):
        assert (tmp_path / "exported_model" / name).is_file(), name
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())["metrics"]
    ap50 = metrics["DetectionBoxes_Precision/mAP@.50IOU"]
    assert ap50 >= MIN_AP50, f"demo AP50 {ap50:.3f} < {MIN_AP50}\n{result.log('train')}"
    # What the user ships: the exported frozen graph itself, run through its own runtime on
    # the val records (the evaluate_deployed rule), not only the training-time checkpoint.
    exported = json.loads((tmp_path / "eval" / "metrics_frozen_graph.json").read_text())
    exported_ap50 = exported["metrics"]["DetectionBoxes_Precision/mAP@.50IOU"]
    assert exported_ap50 >= MIN_AP50, f"exported frozen graph AP50 {exported_ap50:.3f}"
    assert abs(exported_ap50 - ap50) < 0.01, (exported_ap50, ap50)
