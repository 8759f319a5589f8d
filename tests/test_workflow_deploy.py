"""`snakemake deploy` and `snakemake detections/done` on tiny data: the README's deploy
commands, their outputs, logs and benchmarks, and which settings rerun what."""

from __future__ import annotations

import json
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

DEPLOYED = ["model.tflite", "model_int8.tflite", "model.onnx"]
FORMATS = ["frozen_graph", "tflite", "tflite_int8", "onnx"]
TARGETS = ("deploy", "detections/done")


def settings(**changes) -> dict:
    """Tiny settings; detection runs the int8 TFLite file (the frozen graph is the default)."""
    detect = {"model": "exported_model/model_int8.tflite", **changes.pop("detect", {})}
    return tiny_config(deploy={"calibration_images": 8}, detect=detect, **changes)


@pytest.fixture(scope="module")
def run(finished_tiny_run: SnakemakeResult,
        tmp_path_factory: pytest.TempPathFactory) -> SnakemakeResult:
    """The session's finished tiny run (tests/conftest.py) copied, then deployed: the deploy
    and detect settings change nothing upstream, so only their rules run."""
    import shutil

    assert finished_tiny_run.returncode == 0, finished_tiny_run.describe()
    workdir = tmp_path_factory.mktemp("deploy_run") / "work"
    shutil.copytree(finished_tiny_run.workdir, workdir, symlinks=True)
    return run_snakemake(workdir, write_config(workdir, settings(), name="deploy.yaml"), "-c2",
                         *TARGETS)


def dry_run(workdir: Path, config: dict, name: str) -> SnakemakeResult:
    result = run_snakemake(workdir, write_config(workdir, config, name=f"{name}.yaml"), "-n",
                           *TARGETS)
    assert result.returncode == 0, result.describe()
    return result


def test_deploy_and_detect_build_every_file(run: SnakemakeResult) -> None:
    assert run.returncode == 0, run.describe()
    workdir = run.workdir
    for name in DEPLOYED:
        assert (workdir / "exported_model" / name).stat().st_size > 0
        meta = json.loads((workdir / "exported_model" / f"{name}.json").read_text())
        assert meta["label_map"][0]["name"] == "face"
    for fmt in FORMATS:
        payload = json.loads((workdir / "eval" / f"metrics_{fmt}.json").read_text())
        assert payload["format"] == fmt and payload["num_images"] == 8
    rules = ["export_tflite", "export_tflite_int8", "export_onnx", "detect"] + [
        f"evaluate_{fmt}" for fmt in FORMATS]
    for rule in rules:
        assert (workdir / "logs" / f"{rule}.log").exists(), rule
        assert (workdir / "logs" / "benchmarks" / f"{rule}.tsv").exists(), rule
    done = json.loads((workdir / "detections" / "done").read_text())
    assert done["num_images"] == 8 and done["format"] == "tflite_int8"
    assert len(list((workdir / "detections" / "images").glob("*.jpg"))) == 8


def test_second_run_has_nothing_to_do(run: SnakemakeResult) -> None:
    result = dry_run(run.workdir, settings(), "same")
    assert nothing_to_do(result.output), result.describe()


def test_min_score_reruns_detection_only(run: SnakemakeResult) -> None:
    planned = planned_jobs(dry_run(run.workdir, settings(detect={"min_score": 0.1}),
                                   "score").output)
    assert set(planned) == {"detect"}, planned


def test_calibration_setting_reruns_the_int8_model_and_its_metrics_only(
        run: SnakemakeResult) -> None:
    config = settings()
    config["deploy"]["calibration_images"] = 4
    planned = planned_jobs(dry_run(run.workdir, config, "calibration").output)
    # detect too: it runs the int8 file here
    assert planned == {"export_tflite_int8": 1, "evaluate_deployed": 1, "deploy": 1,
                       "detect": 1}, planned
