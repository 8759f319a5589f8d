"""The tiny workflow on a real single-node SLURM cluster, through `--profile profiles/slurm`,
with the training job preempted (requeued) half-way.

The cluster (tests/support/slurm_cluster.py) needs root and Debian's slurm-wlm and munge; where
it cannot start, the test is skipped with the reason, except on CI (ODFLOW_CI=1), which
installs SLURM and so must run it.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.slurm_cluster import SlurmCluster, cannot_run_reason
from tests.support.workflow import (
    REPO,
    SnakemakeResult,
    interrupt,
    latest_checkpoint_step,
    planned_jobs,
    start_snakemake,
    tiny_config,
    wait_for,
    write_config,
)

pytestmark = [pytest.mark.workflow, pytest.mark.slurm, pytest.mark.slow]

# The plugin waits 40 s before its first status check (and 10 s more per check that sees no
# job finish); on a tiny workflow that first wait alone would dominate.
FAST_POLLING = ("--slurm-init-seconds-before-status-checks", "1", "--slurm-keep-successful-logs")
EXPORTED = ["frozen_inference_graph.pb", "saved_model/saved_model.pb", "model.ckpt.index",
            "model.ckpt.data-00000-of-00001", "checkpoint", "pipeline.config",
            "label_map.pbtxt"]
NUM_STEPS = 200
SUBMITTED = re.compile(
    r"submitted with SLURM jobid (\d+) \(log: \S*/rule_(\w+?)(?:_wildcards\S*)?/")


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


def scontrol(cluster: SlurmCluster, *args: str) -> str:
    done = subprocess.run(["scontrol", *args], check=False, env=cluster.env,
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, f"scontrol {' '.join(args)}: {done.stderr}"
    return done.stdout


def job_field(cluster: SlurmCluster, jobid: str, name: str) -> str:
    record = scontrol(cluster, "show", "job", "-o", jobid)
    match = re.search(rf"\b{name}=(\S*)", record)
    return match.group(1) if match else ""


def preempt(cluster: SlurmCluster, jobid: str) -> None:
    """Requeue a running job as preemption does (SIGTERM, then back to the queue), and let
    it start again at once (SLURM holds requeued jobs back for a while by default)."""
    scontrol(cluster, "requeue", jobid)
    wait_for(lambda: job_field(cluster, jobid, "JobState") == "PENDING", timeout=120,
             interval=0.2, what=f"job {jobid} to be pending again after the requeue")
    scontrol(cluster, "update", f"JobId={jobid}", "StartTime=now")


def test_tiny_workflow_runs_through_the_slurm_profile(cluster: SlurmCluster,
                                                      tmp_path: Path) -> None:
    work = tmp_path
    configfile = write_config(work, tiny_config(train={"num_steps": NUM_STEPS,
                                                       "checkpoint_every_steps": 5}))
    target = "exported_model/frozen_inference_graph.pb"
    process, output = start_snakemake(work, configfile, "--profile",
                                      str(REPO / "profiles/slurm"), *FAST_POLLING, target)

    def submitted() -> dict[str, list[str]]:
        jobs: dict[str, list[str]] = {}
        for jobid, rule in SUBMITTED.findall(output.read_text(errors="replace")):
            jobs.setdefault(rule, []).append(jobid)
        return jobs

    try:
        wait_for(lambda: process.poll() is not None
                 or (latest_checkpoint_step(work / "ckpt") or 0) >= 11,
                 timeout=600, interval=0.2, what="the training job to save a checkpoint")
        assert process.poll() is None, output.read_text(errors="replace")[-5000:]
        train_job = submitted()["train"][0]
        preempt(cluster, train_job)
        process.wait(timeout=600)
    finally:
        if process.poll() is None:
            interrupt(process)
    text = output.read_text(errors="replace")
    assert process.returncode == 0, f"{text[-6000:]}\n{cluster.logs()}"

    missing = [name for name in EXPORTED if not (work / "exported_model" / name).is_file()]
    assert not missing, missing
    assert (work / f"ckpt/model.ckpt-{NUM_STEPS}.index").is_file()

    # Every job went through sbatch (none ran on the submit host), once each.
    planned = planned_jobs(text)
    jobs = submitted()
    assert {rule: len(ids) for rule, ids in jobs.items()} == {
        rule: count for rule, count in planned.items() if rule != "all"}, text[-5000:]
    # The profile's per-rule resources reached SLURM: the training job asked for a GPU.
    assert "gpu" in job_field(cluster, train_job, "TresPerJob"), scontrol(
        cluster, "show", "job", train_job)
    assert job_field(cluster, train_job, "Restarts") == "1"

    # SIGTERM from the requeue saved a checkpoint, and the requeued job resumed from it.
    train_log = (work / "logs/train.log").read_text(errors="replace")
    resumed = re.search(r"resumed from \S*model\.ckpt-(\d+) at step (\d+)", train_log)
    assert resumed and int(resumed.group(1)) >= 11, train_log[-3000:]
    assert f"done at step {NUM_STEPS}" in train_log, train_log[-3000:]


def test_two_slurm_tasks_train_like_one_worker_with_two_replicas(cluster: SlurmCluster,
                                                                  tmp_path: Path) -> None:
    """`srun -n 2` starts two workers; train.strategy auto finds them (SlurmClusterResolver)
    and they train as one process with two replicas on the same global batch."""
    import sys

    from tests.support.multi_worker import (
        PROGRAM,
        assert_same_training,
        make_inputs,
        read_results,
    )
    from tests.support.training import subprocess_env

    inputs = [str(path) for path in make_inputs(tmp_path)]
    (tmp_path / "reference").mkdir()
    (tmp_path / "workers").mkdir()
    env = {**subprocess_env(), "SLURM_CONF": str(cluster.conf)}
    reference = subprocess.run([sys.executable, "-c", PROGRAM, "mirrored", *inputs,
                                str(tmp_path / "reference")], env=env,
                               cwd=str(REPO), capture_output=True, text=True, timeout=300,
                               check=False)
    assert reference.returncode == 0, reference.stderr[-3000:]
    [expected] = read_results(tmp_path / "reference")
    workers = subprocess.run(["srun", "-n", "2", "-N", "1", "--cpus-per-task", "1",
                              sys.executable, "-c", PROGRAM, "auto", *inputs,
                              str(tmp_path / "workers")], env=env,
                             cwd=str(REPO), capture_output=True, text=True, timeout=400,
                             check=False)
    assert workers.returncode == 0, workers.stdout[-2000:] + workers.stderr[-3000:]
    results = read_results(tmp_path / "workers")
    assert sorted(r["chief"] for r in results) == [False, True], workers.stdout[-2000:]
    assert_same_training(results, expected)


def test_profile_with_train_tasks_trains_with_two_slurm_workers(
        cluster: SlurmCluster, finished_tiny_run: SnakemakeResult, tmp_path: Path) -> None:
    """README, On a cluster: `tasks: 2` and `mpi: "srun"` added to the SLURM profile's train
    resources make the train job one allocation of two tasks, each a worker of
    MultiWorkerMirroredStrategy (strategy auto); only the chief writes the checkpoints.

    It starts from a copy of the session's finished tiny run (tests/conftest.py) with another
    number of steps, so that only the rules that depend on it (the pipeline config and the
    training) go through SLURM: the data and model stages were tested through the profile
    above."""
    import shutil

    import yaml

    assert finished_tiny_run.returncode == 0, finished_tiny_run.describe()
    work = tmp_path / "work"
    shutil.copytree(finished_tiny_run.workdir, work, symlinks=True)
    profile = yaml.safe_load((REPO / "profiles/slurm/config.yaml").read_text())
    profile["set-resources"]["train"].update({"tasks": 2, "mpi": "srun"})
    (tmp_path / "profile").mkdir()
    (tmp_path / "profile/config.yaml").write_text(yaml.safe_dump(profile))
    steps = 8  # the tiny run trained 6
    configfile = write_config(work, tiny_config(train={"num_steps": steps,
                                                       "checkpoint_every_steps": 4}),
                              name="tasks.yaml")
    target = f"ckpt/model.ckpt-{steps}.index"
    process, output = start_snakemake(work, configfile, "--profile", str(tmp_path / "profile"),
                                      *FAST_POLLING, target)
    try:
        process.wait(timeout=900)
    finally:
        if process.poll() is None:
            interrupt(process)
    text = output.read_text(errors="replace")
    assert process.returncode == 0, f"{text[-6000:]}\n{cluster.logs()}"
    submitted = [rule for _, rule in SUBMITTED.findall(text)]
    # Only what the changed setting made stale ran again (and through SLURM).
    assert "train" in submitted and not {"records", "build_starter_model"} & set(submitted), text
    [train_job] = [jobid for jobid, rule in SUBMITTED.findall(text) if rule == "train"]
    # One allocation of two tasks, the GPU of the profile shared by them.
    assert job_field(cluster, train_job, "NumTasks") == "2", scontrol(
        cluster, "show", "job", train_job)
    train_log = (work / "logs/train.log").read_text(errors="replace")
    # srun --label: each line names its task; each worker saw the other.
    assert re.search(r"^0: .*worker 0 of 2 workers", train_log, re.MULTILINE), train_log[-3000:]
    assert re.search(r"^1: .*worker 1 of 2 workers", train_log, re.MULTILINE), train_log[-3000:]
    assert (work / f"ckpt/model.ckpt-{steps}.index").is_file()
    assert (work / "eval/metrics_last.json").is_file()  # the train rule's final evaluation
