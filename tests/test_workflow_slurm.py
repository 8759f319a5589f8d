"""The tiny workflow on a real single-node SLURM cluster, through `--profile profiles/slurm`.

The cluster (tests/support/slurm_cluster.py) needs root and Debian's slurm-wlm and munge; where
it cannot start the test is skipped with the reason, except on CI (ODFLOW_CI=1), which installs
SLURM and so must run it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.slurm_cluster import SlurmCluster, cannot_run_reason
from tests.support.workflow import REPO, planned_jobs, run_snakemake, tiny_config, write_config

pytestmark = [pytest.mark.workflow, pytest.mark.slurm, pytest.mark.slow]

# The plugin waits 40 s before its first status check and adds 10 s per check that sees no
# job finish; on a tiny workflow the first wait alone would dominate.
FAST_POLLING = ("--slurm-init-seconds-before-status-checks", "1")
EXPORTED = ["frozen_inference_graph.pb", "saved_model/saved_model.pb", "model.ckpt.index",
            "model.ckpt.data-00000-of-00001", "checkpoint", "pipeline.config",
            "label_map.pbtxt"]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SlurmCluster]:
    reason = cannot_run_reason()
    if reason is not None:
        if os.environ.get("ODFLOW_CI") == "1":
            pytest.fail(f"CI installs SLURM, yet the test cluster cannot run: {reason}")
        pytest.skip(reason)
    cluster = SlurmCluster(tmp_path_factory.mktemp("slurm"))
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


def test_tiny_workflow_runs_through_the_slurm_profile(cluster: SlurmCluster,
                                                      tmp_path: Path) -> None:
    configfile = write_config(tmp_path, tiny_config())
    result = run_snakemake(tmp_path, configfile, "--profile", str(REPO / "profiles/slurm"),
                           *FAST_POLLING, *os.environ.get("PROBE_EXTRA", "").split(), "exported_model/frozen_inference_graph.pb",
                           timeout=900)
    assert result.returncode == 0, f"{result.describe()}\n{cluster.logs()}"
    missing = [name for name in EXPORTED if not (tmp_path / "exported_model" / name).is_file()]
    assert not missing, missing
    assert (tmp_path / "ckpt/model.ckpt-6.index").is_file()

    # Every job went through sbatch (none ran locally), each with its own SLURM log.
    planned = planned_jobs(result.output)
    submitted = re.findall(r"submitted with SLURM jobid (\d+)", result.output, re.I)
    assert len(submitted) == sum(planned.values()) - planned.get("all", 0), result.output[-4000:]
    slurm_logs = {path.parent.name for path in (tmp_path / ".snakemake/slurm_logs").rglob("*.log")}
    assert {"rule_train", "rule_export", "rule_records"} <= slurm_logs, sorted(slurm_logs)
    train_log = (tmp_path / "logs/train.log").read_text()
    assert "done at step 6" in train_log, train_log[-3000:]
