"""The pure parts of ``benchmarks/zoo_tf2.py``: which configs, at which size, and its report.

Nothing is timed here (the benchmark itself takes an hour); the expected values are the zoo
page's figures and the configs' resizer sizes, read by hand from
``tests/fixtures/tf2_zoo/zoo_table.md`` and ``tests/fixtures/tf2_zoo/configs/``.
"""

from __future__ import annotations

import json
from pathlib import Path

from odflow import config as config_lib
from tests.support.scripts import load_script

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "tests/fixtures/tf2_zoo/configs"

zoo_tf2 = load_script("benchmarks/zoo_tf2.py")


def test_it_measures_every_shipped_config_once():
    shipped = sorted(path.stem for path in CONFIGS.glob("*.config"))
    assert len(shipped) == 18
    assert sorted(zoo_tf2.ORDER) == shipped


def test_zoo_ms_is_the_zoo_pages_speed_column():
    speeds = zoo_tf2.zoo_ms()
    assert len(speeds) == 18
    assert speeds["ssd_efficientdet_d0_512x512_coco17_tpu-8"] == 39
    assert speeds["ssd_mobilenet_v2_320x320_coco17_tpu-8"] == 19
    assert speeds["ssd_resnet152_v1_fpn_1024x1024_coco17_tpu-8"] == 111


def test_input_size_of_both_resizers():
    def size(name):
        return zoo_tf2.input_size(config_lib.load(CONFIGS / f"{name}.config").model)

    assert size("ssd_mobilenet_v2_320x320_coco17_tpu-8") == (300, 300)  # fixed 300x300
    assert size("ssd_efficientdet_d6_1408x1408_coco17_tpu-32") == (1408, 1408)  # padded square


def test_report_rows(tmp_path):
    results = tmp_path / "results.jsonl"
    measured = {"config": "ssd_mobilenet_v2_320x320_coco17_tpu-8", "height": 300,
                "width": 300, "batch": 1, "forward_gflop": 1.28, "train_s": [0.5, 0.25, 1.0],
                "infer_s": [0.05, 0.04, 0.2], "matmul_gflops": [40.0, 60.0, 50.0],
                "matmul_median": 50.0, "tf": "x"}
    zoo_tf2.append_result(results, {"config": measured["config"], "error": "failed (exit 1)"})
    zoo_tf2.append_result(results, measured)  # a later run replaces the failed one
    zoo_tf2.append_result(results, {"config": "ssd_efficientdet_d7_1536x1536_coco17_tpu-32",
                                    "error": "over the 1500 s limit"})
    loaded = zoo_tf2.load_results(results)
    assert loaded[measured["config"]] == json.loads(json.dumps(measured))
    rows = {line.split("|")[1].strip(): [cell.strip() for cell in line.split("|")[1:-1]]
            for line in zoo_tf2.render(loaded).splitlines()[2:]}
    assert len(rows) == 18
    mobilenet = rows["`ssd_mobilenet_v2_320x320_coco17_tpu-8`"]
    # input, batch, GFLOP, train img/s (1/0.25, 1/0.5), frozen img/s (1/0.04, 1/0.05),
    # frozen ms (fastest), zoo ms, matmul, train img/s (fastest) per 100 matmul GFLOP/s
    assert mobilenet[1:10] == ["300x300", "1", "1.3", "4 / 2", "25 / 20", "40", "19", "50",
                               "8"]
    assert mobilenet[10] == "50"  # frozen graph: 25 img/s x 100 / 50 GFLOP/s
    assert mobilenet[11] == "31%"  # 3 x 1.28 GFLOP x 4 img/s / 50 GFLOP/s
    assert rows["`ssd_efficientdet_d7_1536x1536_coco17_tpu-32`"][4] == "over the 1500 s limit"
    assert rows["`ssd_resnet50_v1_fpn_640x640_coco17_tpu-8`"][4] == "not measured"


def test_report_row_of_an_infer_only_run(tmp_path):
    """A config whose train step does not fit in memory is timed with --infer-only: its
    train columns say why, its frozen-graph columns are filled (hand-worked: 1/0.5 = 2 img/s,
    2 x 100 / 40 = 5 per 100 matmul GFLOP/s)."""
    results = tmp_path / "results.jsonl"
    zoo_tf2.append_result(results, {
        "config": "ssd_efficientdet_d7_1536x1536_coco17_tpu-32", "height": 1536, "width": 1536,
        "batch": 1, "forward_gflop": 300.0, "train_s": [], "infer_s": [0.5, 1.0, 0.75],
        "matmul_gflops": [40.0, 40.0], "matmul_median": 40.0, "tf": "x",
        "train_note": "over 23 GB at batch 1"})
    line = next(line for line in zoo_tf2.render(zoo_tf2.load_results(results)).splitlines()
                if "d7_1536" in line)
    cells = [cell.strip() for cell in line.split("|")[1:-1]]
    assert cells[4] == "over 23 GB at batch 1"
    assert cells[5:8] == ["2 / 1.33", "500", "325"]
    assert cells[9] == "" and cells[11] == ""
    assert cells[10] == "5"
    assert cells[12] == "-; 0.50, 1.00, 0.75"
