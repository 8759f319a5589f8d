"""The workflow's configuration and plan, without running jobs: schema validation of
config.yaml, `snakemake --lint`, the dry run's reasons, and the rule graph."""

from __future__ import annotations

import os
import re
import signal
from pathlib import Path

import pytest
import yaml

from tests.support.workflow import (
    SHIPPED_CONFIG,
    merge,
    planned_jobs,
    run_snakemake,
    start_snakemake,
    tiny_config,
    wait_for,
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
    for rule in EXPORT_JOBS | {"train", "plots", "all"}:
        assert f'label = "{rule}' in dot or f"label=\"{rule}" in dot, (rule, dot[:2000])


def test_overrides_can_come_from_the_command_line(tmp_path: Path) -> None:
    """`--config` replaces a setting of config.yaml; the plan's parameters follow it."""
    result = run_snakemake(tmp_path, None, "-n", "-p", "ckpt/ssd_mobilenet_v1_coco.config",
                           "--config", "pipeline={overrides: [train_config.batch_size=8]}")
    assert result.returncode == 0, result.describe()
    assert "train_config.batch_size=8" in result.output, result.describe()


def test_readme_config_override_with_a_nested_integer(tmp_path: Path) -> None:
    """README, Configuration: `snakemake -n exported_model/frozen_inference_graph.pb --config
    train='{num_steps: 3000}'` (Snakemake hands the Snakefile the string '3000')."""
    result = run_snakemake(tmp_path, None, "-n", "-p", "exported_model/frozen_inference_graph.pb",
                           "--config", "train={num_steps: 3000}")
    assert result.returncode == 0, result.describe()
    assert "ckpt/model.ckpt-3000.index" in result.output, result.describe()
    assert "--num-steps 3000" in result.output, result.describe()  # into the pipeline config


def test_readme_cpu_replicas_override(tmp_path: Path) -> None:
    """README, On a cluster: `snakemake -n exported_model/frozen_inference_graph.pb
    --config train='{cpu_replicas: 2}'` trains two replicas and keeps the demo's other train
    settings (that a change reruns train is test_workflow_tracking's)."""
    result = run_snakemake(tmp_path, None, "-n", "-p", "exported_model/frozen_inference_graph.pb",
                           "--config", "train={cpu_replicas: 2}")
    assert result.returncode == 0, result.describe()
    assert "--cpu_replicas 2" in result.output, result.describe()
    assert "ckpt/model.ckpt-2000.index" in result.output, result.describe()  # config.yaml's
    shipped = run_snakemake(tmp_path, None, "-n", "-p", "exported_model/frozen_inference_graph.pb")
    assert "--cpu_replicas 1" in shipped.output, shipped.describe()


def test_uncoercible_config_value_names_the_key(tmp_path: Path) -> None:
    result = run_snakemake(tmp_path, None, "-n", "all", "--config",
                           "train={num_steps: 3000, seed: x}", "dataset={skip_bad: perhaps}")
    assert result.returncode != 0, result.describe()
    assert re.search(r"config (train\.seed: 'x' is not an integer|dataset\.skip_bad: "
                     r"'perhaps' is not true or false)", result.output), result.describe()
    assert "Traceback" not in result.output, result.describe()


def test_default_profile_is_loaded_beside_the_other_profiles(tmp_path: Path) -> None:
    profile = yaml.safe_load((SHIPPED_CONFIG.parent / "profiles/default/config.yaml").read_text())
    assert profile == {"rerun-incomplete": True, "show-failed-logs": True}
    for name in ("local", "slurm"):  # loaded together: they must not disagree
        other = yaml.safe_load((SHIPPED_CONFIG.parent / f"profiles/{name}/config.yaml").read_text())
        assert all(other.get(key, value) == value for key, value in profile.items()), name
        result = run_snakemake(tmp_path, None, "--profile",
                               str(SHIPPED_CONFIG.parent / f"profiles/{name}"), "-n", "all")
        assert result.returncode == 0, result.describe()
        assert "workflow specific profile" in result.output, result.describe()


def test_a_failed_job_shows_its_log(tmp_path: Path) -> None:
    """show-failed-logs (profiles/default): the log's lines in the console."""
    tarball = tmp_path / "downloads/ssd_mobilenet_v1_starter.tar.gz"
    tarball.parent.mkdir(parents=True)
    tarball.write_bytes(b"this is not a tarball\n")
    result = run_snakemake(tmp_path, None, "-c1", "ssd_mobilenet_v1_starter/pipeline.config")
    assert result.returncode != 0, result.describe()
    log = result.log("extract_model").strip()
    assert log and log.splitlines()[-1] in result.stdout + result.stderr, result.describe()
    assert "Logfile logs/extract_model.log:" in result.output, result.describe()


def test_a_killed_run_resumes_with_the_same_command(tmp_path: Path) -> None:
    """rerun-incomplete (profiles/default): Snakemake killed (-9) while a job ran, the job
    finishing on its own, leaves outputs marked incomplete; after the `--unlock` Snakemake
    asks for (its lock outlives a kill -9), the same command plans that job again instead of
    stopping with IncompleteFilesException."""
    configfile = write_config(tmp_path, tiny_config())
    target = "datasets/val.record"
    process, _ = start_snakemake(tmp_path, configfile, "-c1", target)
    try:
        wait_for(lambda: (tmp_path / "logs/records_val.log").exists() or process.poll() is not None,
                 timeout=300, interval=0.05, what="the records job to start")
    finally:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)  # snakemake only, not the job
        process.wait()
    wait_for(lambda: (tmp_path / "datasets/val.record.summary.json").exists(), timeout=300,
             what="the orphaned records job to finish")
    unlocked = run_snakemake(tmp_path, configfile, "--unlock")
    assert unlocked.returncode == 0, unlocked.describe()
    without = run_snakemake(tmp_path, configfile, "-n", target, "--workflow-profile", "none")
    assert without.returncode != 0, without.describe()
    assert "IncompleteFilesException" in without.output, without.describe()
    result = run_snakemake(tmp_path, configfile, "-n", target)
    assert result.returncode == 0, result.describe()
    assert "IncompleteFilesException" not in result.output, result.describe()
    assert planned_jobs(result.output) == {"records": 1}, result.describe()
