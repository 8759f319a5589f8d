"""The data preview and the anchor fit in the workflow: the tiny run's plots/data/, the
README's "Look at the data" commands exactly as written (in a copy of the finished tiny run),
and `anchors.fit: true` building a pipeline config with fitted anchors."""

from __future__ import annotations

import json
import re
import shlex
import shutil
from pathlib import Path

import pytest

from tests.support.workflow import REPO, SnakemakeResult, run_snakemake, tiny_config, write_config

pytestmark = [pytest.mark.workflow, pytest.mark.slow]

CONFIG = "ckpt/ssd_mobilenet_v1_coco.config"
GENERATOR = "model.ssd.anchor_generator.ssd_anchor_generator"


def readme_commands() -> list[str]:
    """The indented `odflow data preview` / `odflow anchors` lines of the README."""
    text = (REPO / "README.md").read_text()
    return re.findall(r"^    (odflow (?:data preview|anchors) .+)$", text, flags=re.MULTILINE)


@pytest.fixture()
def work(finished_tiny_run: SnakemakeResult, tmp_path: Path) -> Path:
    if finished_tiny_run.returncode != 0:
        pytest.fail(f"the tiny full run failed:\n{finished_tiny_run.describe()}")
    copy = tmp_path / "work"
    shutil.copytree(finished_tiny_run.workdir, copy, symlinks=True)
    return copy


def test_the_tiny_run_has_its_data_preview(finished_tiny_run: SnakemakeResult) -> None:
    data = finished_tiny_run.workdir / "plots" / "data"
    numbers = json.loads((data / "anchor_coverage.json").read_text())
    # 24 synthetic training images at the starter's 64x64 input.
    assert numbers["images"] == 24 and numbers["image_size"] == [64, 64]
    assert numbers["boxes"] > 0
    for name in ("train_augmented", "train", "val", "box_stats", "anchor_coverage"):
        assert (data / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
    assert "anchor coverage: " in finished_tiny_run.log("train")


def test_readme_commands_work_as_written(work: Path, monkeypatch, capsys) -> None:
    from odflow.cli import main

    commands = readme_commands()
    assert len(commands) == 3, commands
    monkeypatch.chdir(work)
    shutil.rmtree(work / "plots" / "data")
    for command in commands:
        assert main(shlex.split(command)[1:]) == 0, command
    out = capsys.readouterr().out
    assert "anchor coverage: " in out and "before: anchor coverage: " in out, out
    assert (work / "plots" / "data" / "anchor_coverage.json").is_file()


def test_anchors_fit_setting_writes_fitted_anchors(work: Path) -> None:
    """The rule's output is the unfitted config with exactly the logged lines applied."""
    from odflow import config as config_lib
    from odflow.config.overrides import apply_overrides

    unfitted = config_lib.load(work / CONFIG)
    configfile = write_config(work.parent, tiny_config(anchors={"fit": True}), name="fit.yaml")
    result = run_snakemake(work, configfile, "-c1", CONFIG)
    assert result.returncode == 0, result.describe()
    log = result.log("pipeline_config")
    assert "anchors fit: before, anchor coverage: " in log, log
    applied = re.findall(r"anchors fit: (model\.ssd\.anchor_generator\..+)$", log,
                         flags=re.MULTILINE)
    assert applied or "the config's anchors stay" in log, log
    fitted = config_lib.load(work / CONFIG)
    assert fitted.model == apply_overrides(unfitted, applied).model
