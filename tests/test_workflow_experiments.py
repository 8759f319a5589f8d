"""Experiments through the real workflow: two variants of the shared tiny run built with
`snakemake runs/all`, sharing what their settings allow, compared in runs/summary.*, and
replanned one at a time.

lr_high changes only the learning rate (records and starter tarball shared with the base);
small changes the starter's depth multiplier (records shared, its own tarball).
"""

from __future__ import annotations

import csv
import shutil
from collections import Counter
from pathlib import Path

import pytest

from tests.support.workflow import (
    SnakemakeResult,
    nothing_to_do,
    planned_jobs,
    run_snakemake,
    tiny_config,
    write_config,
)

pytestmark = [pytest.mark.workflow, pytest.mark.slow]

LR = ("train_config.optimizer.adam_optimizer.learning_rate.cosine_decay_learning_rate."
      "learning_rate_base={}")
EXPERIMENTS = {
    "lr_high": {"pipeline": {"overrides": ["train_config.batch_size=4", LR.format(0.02)]}},
    "small": {"model": {"starter": {"depth_multiplier": 0.5}}},
}
PER_RUN = {"fine_tune_checkpoint", "export", "metrics", "metrics_table", "plots", "data_preview"}


@pytest.fixture(scope="module")
def experiments_run(finished_tiny_run: SnakemakeResult,
                    tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, SnakemakeResult]:
    """The shared tiny run copied, with two experiments added: the plan, then the build."""
    if finished_tiny_run.returncode != 0:
        pytest.fail(f"the tiny full run failed:\n{finished_tiny_run.describe()}")
    work = tmp_path_factory.mktemp("experiments") / "work"
    shutil.copytree(finished_tiny_run.workdir, work, symlinks=True)
    configfile = write_config(work.parent, tiny_config(experiments=EXPERIMENTS))
    plan = run_snakemake(work, configfile, "-n", "runs/all")
    assert plan.returncode == 0, plan.describe()
    build = run_snakemake(work, configfile, "-c2", "runs/all")
    assert build.returncode == 0, build.describe()
    return work, plan


def test_variants_share_the_records_and_the_equal_model(experiments_run) -> None:
    work, plan = experiments_run
    # The base is built already; the records and the base's tarball serve both variants.
    assert planned_jobs(plan.output) == Counter({
        "build_starter_model__small": 1, "extract_model__small": 1,
        "pipeline_config__lr_high": 1, "pipeline_config__small": 1,
        "train__lr_high": 1, "train__small": 1,
        **{rule: 2 for rule in PER_RUN},
        "experiments_summary": 1, "all_runs": 1})
    assert not (work / "runs/lr_high/downloads").exists()
    assert not (work / "runs/lr_high/datasets").exists()
    assert not (work / "runs/small/datasets").exists()
    assert (work / "runs/small/downloads/ssd_mobilenet_v1_starter.tar.gz").is_file()
    for run in ("runs/lr_high", "runs/small"):
        for path in ("ckpt/model.ckpt-6.index", "eval/metrics.json", "ckpt/history.json",
                     "exported_model/frozen_inference_graph.pb", "plots/mAP.png",
                     "logs/train.log"):
            assert (work / run / path).is_file(), f"{run}/{path}"
    config = (work / "runs/lr_high/ckpt/ssd_mobilenet_v1_coco.config").read_text()
    assert "learning_rate_base: 0.02" in config
    assert 'input_path: "datasets/train.record"' in config  # the base's records


def test_summary_has_one_row_per_run(experiments_run) -> None:
    work, _ = experiments_run
    with open(work / "runs/summary.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert sorted(row["run"] for row in rows) == ["base", "lr_high", "small"]
    maps = [float(row["DetectionBoxes_Precision/mAP"]) for row in rows]
    assert maps == sorted(maps, reverse=True)
    by_run = {row["run"]: row for row in rows}
    assert by_run["base"]["differences"] == ""
    assert by_run["small"]["differences"] == "model.starter.depth_multiplier=0.5"
    assert "learning_rate_base=0.02" in by_run["lr_high"]["differences"]
    for row in rows:
        assert row["steps"] == "6"
        assert float(row["train_seconds"]) > 0 and float(row["images_per_second"]) > 0
    graph = work / "runs/small/exported_model/frozen_inference_graph.pb"
    assert int(by_run["small"]["model_bytes"]) == graph.stat().st_size
    # a wider network is a bigger graph
    assert int(by_run["small"]["model_bytes"]) > int(by_run["base"]["model_bytes"])
    markdown = (work / "runs/summary.md").read_text().splitlines()
    assert len(markdown) == 2 + 3 and markdown[0].startswith("| run | mAP |")
    assert (work / "plots/runs_mAP.png").stat().st_size > 1000
    assert 'id="runs"' in (work / "runs/summary.html").read_text()


def test_changing_one_variant_replans_that_variant_only(experiments_run) -> None:
    work, _ = experiments_run
    same = write_config(work.parent, tiny_config(experiments=EXPERIMENTS), "same.yaml")
    result = run_snakemake(work, same, "-n", "runs/all")
    assert result.returncode == 0 and nothing_to_do(result.output), result.describe()
    changed = {**EXPERIMENTS, "lr_high": {"pipeline": {
        "overrides": ["train_config.batch_size=4", LR.format(0.03)]}}}
    configfile = write_config(work.parent, tiny_config(experiments=changed), "changed.yaml")
    result = run_snakemake(work, configfile, "-n", "runs/all")
    assert result.returncode == 0, result.describe()
    assert planned_jobs(result.output) == Counter({
        "pipeline_config__lr_high": 1, "train__lr_high": 1,
        **{rule: 1 for rule in PER_RUN - {"fine_tune_checkpoint"}},
        "experiments_summary": 1, "all_runs": 1})
    outputs = [line for line in result.output.splitlines() if line.strip().startswith("output:")]
    assert outputs and not any("runs/small/" in line for line in outputs), outputs


@pytest.mark.parametrize(("experiments", "message"), [
    ({"bad name": {}}, "bad name"),
    ({"small": {"model": {"starter": {"depth": 0.5}}}}, "experiments.small"),
])
def test_bad_experiments_are_clear_errors(tmp_path: Path, experiments, message: str) -> None:
    configfile = write_config(tmp_path, tiny_config(experiments=experiments))
    result = run_snakemake(tmp_path, configfile, "-n", "runs/all")
    assert result.returncode != 0
    assert message in result.output, result.output
    assert "Traceback" not in result.output, result.output
