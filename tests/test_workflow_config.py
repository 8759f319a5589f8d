"""The workflow's configuration and plan, without running jobs: schema validation of
config.yaml, `snakemake --lint`, the dry run's reasons, and the rule graph."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from tests.support.workflow import (
    SHIPPED_CONFIG,
    merge,
    planned_jobs,
    run_snakemake,
    tiny_config,
    write_config,
)

pytestmark = [pytest.mark.workflow, pytest.mark.slow]

EXPORT_JOBS = {"build_starter_model", "extract_model", "fine_tune_checkpoint", "label_map",
               "records", "pipeline_config", "train", "export"}
JOB_BLOCK = re.compile(r"^(?:local)?rule (\w+):\n((?:[ \t]+\S.*\n?)*)", re.MULTILINE)


@pytest.mark.parametrize(("changes", "names"), [
    ({"train": {"num_steps": -1}}, ["num_steps", "minimum"]),
    ({"train": {"num_step": 9}}, ["num_step", "unexpected"]),
    ({"model": {"sha256": "not-a-digest"}}, ["sha256", "not-a-digest"]),
    ({"dataset": {"source": "imagenet"}}, ["source", "imagenet"]),
    ({"classes": []}, ["classes"]),
], ids=["negative-steps", "unknown-key", "bad-sha256", "unknown-source", "no-classes"])
def test_invalid_config_is_rejected_naming_the_key(tmp_path: Path, changes: dict,
                                                   names: list[str]) -> None:
    configfile = write_config(tmp_path, merge(tiny_config(), changes))
    result = run_snakemake(tmp_path, configfile, "-n", "all")
    assert result.returncode != 0, result.describe()
    assert "validat" in result.output.lower(), result.describe()
    for name in names:
        assert name in result.output, (name, result.describe())
    assert not (tmp_path / "logs").exists()  # nothing ran


def test_shipped_config_is_valid_and_complete(tmp_path: Path) -> None:
    """Every key the schema knows is set (and so commented) in the shipped config.yaml."""
    schema = yaml.safe_load((SHIPPED_CONFIG.parent / "schemas/config.schema.yaml").read_text())
    shipped = yaml.safe_load(SHIPPED_CONFIG.read_text())

    def missing(schema_node: dict, config_node: dict, where: str) -> list[str]:
        gaps = []
        for key, sub in schema_node.get("properties", {}).items():
            if key not in config_node:
                gaps.append(f"{where}{key}")
            elif sub.get("type") == "object":
                gaps += missing(sub, config_node[key], f"{where}{key}.")
        return gaps

    assert missing(schema, shipped, "") == []


def test_lint_is_clean(tmp_path: Path) -> None:
    result = run_snakemake(tmp_path, None, "--lint")
    assert result.returncode == 0, result.describe()
    assert "Lints for" not in result.output, result.describe()


def test_dry_run_lists_every_job_with_a_reason(tmp_path: Path) -> None:
    result = run_snakemake(tmp_path, None, "-n", "exported_model/frozen_inference_graph.pb")
    assert result.returncode == 0, result.describe()
    planned = planned_jobs(result.output)
    assert set(planned) == EXPORT_JOBS and planned["records"] == 2, result.describe()
    blocks = JOB_BLOCK.findall(result.output)
    assert sorted(name for name, _ in blocks) == sorted(planned.elements()), result.describe()
    for name, body in blocks:
        for field in (r"reason: \S", r"log: logs/\S+\.log", r"benchmark: logs/benchmarks/\S+\.tsv"):
            assert re.search(rf"^\s+{field}", body, re.MULTILINE), (name, field, body)
    train = dict(blocks)["train"]
    assert re.search(r"resources:.*\bgpu=1\b", train), train
    assert {path.name for path in tmp_path.iterdir()} <= {".snakemake"}  # a plan only


@pytest.mark.parametrize("option", ["--rulegraph", "--dag"])
def test_graphs_render_as_dot(tmp_path: Path, option: str) -> None:
    # The format must follow the option: `--dag all` reads "all" as the format.
    result = run_snakemake(tmp_path, None, option, "dot", "all")
    assert result.returncode == 0, result.describe()
    dot = result.stdout
    assert dot.lstrip().startswith("digraph"), dot[:500]
    assert dot.rstrip().endswith("}"), dot[-500:]
    for rule in EXPORT_JOBS | {"evaluate", "plots", "all"}:
        assert f'label = "{rule}' in dot or f"label=\"{rule}" in dot, (rule, dot[:2000])


def test_overrides_can_come_from_the_command_line(tmp_path: Path) -> None:
    """`--config` replaces a setting of config.yaml; the plan's parameters follow it."""
    result = run_snakemake(tmp_path, None, "-n", "-p", "ckpt/ssd_mobilenet_v1_coco.config",
                           "--config", "pipeline={overrides: [train_config.batch_size=8]}")
    assert result.returncode == 0, result.describe()
    assert "train_config.batch_size=8" in result.output, result.describe()
