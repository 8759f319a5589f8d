"""Run the real Snakemake workflow on tiny settings, in a subprocess, for the workflow tests.

The workflow is what users run, so the tests drive it the way users do: ``snakemake -s
<repo>/Snakefile -d <work dir> --configfile tiny.yaml`` in a separate process, then look at
the files, the logs and Snakemake's own plan.  The settings here keep a whole run to a minute
or so on two CPU cores: a few dozen synthetic images, a quarter-width starter model at 64 px
and a handful of training steps.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from odflow.experiments import merge  # the workflow's own deep merge (experiments)

REPO = Path(__file__).resolve().parents[2]
SNAKEFILE = REPO / "Snakefile"
SHIPPED_CONFIG = REPO / "config.yaml"

TINY_CONFIG: dict[str, Any] = {
    "model": {
        "name": "ssd_mobilenet_v1_starter",
        "url": "starter:",
        "sha256": "",
        "starter": {"depth_multiplier": 0.25, "image_size": 64, "seed": 7},
    },
    "pipeline": {"overrides": ["train_config.batch_size=4"]},
    "classes": ["face"],
    "dataset": {
        "source": "synthetic",
        "num_shards": 1,
        "synthetic": {"train_images": 24, "val_images": 8, "seed": 1},
    },
    "train": {
        "num_steps": 6,
        "eval_every": 0,
        "checkpoint_every_steps": 3,
        "keep_checkpoint_max": 5,
        "seed": 1,
        "log_every": 1,
    },
    "export": {"input_type": "image_tensor"},
}

# Every job the default target runs once, and what each produces.
ALL_RULES = {"build_starter_model", "extract_model", "fine_tune_checkpoint", "label_map",
            "records", "pipeline_config", "data_preview", "train", "export", "metrics", "plots",
             "metrics_table", "all"}


def tiny_config(**changes: Any) -> dict[str, Any]:
    """The tiny settings, with top-level sections deep-merged from ``changes``."""
    return merge(TINY_CONFIG, changes)


def write_config(workdir: Path, config: dict[str, Any], name: str = "tiny.yaml") -> Path:
    """Write a config file beside (not inside) the work dir's outputs; returns its path."""
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / name
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def environment() -> dict[str, str]:
    """The jobs' environment: quiet TensorFlow, this checkout importable, no GPUs probed."""
    env = dict(os.environ)
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    env.setdefault("CUDA_VISIBLE_DEVICES", "")
    return env


def snakemake_command(workdir: Path, configfile: Path | None, *args: str) -> list[str]:
    command = [sys.executable, "-m", "snakemake", "-s", str(SNAKEFILE), "-d", str(workdir)]
    if configfile is not None:
        command += ["--configfile", str(configfile)]
    return command + list(args)


@dataclass
class SnakemakeResult:
    command: list[str]
    returncode: int
    stdout: str
    stderr: str
    workdir: Path

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    def log(self, name: str) -> str:
        """logs/<name>.log of the work dir ('' if the job never wrote it)."""
        path = self.workdir / "logs" / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def logs(self) -> str:
        """Every job log, each headed by its name, for assertion messages."""
        parts = []
        for path in sorted((self.workdir / "logs").glob("*.log")):
            parts.append(f"--- {path.name}\n{path.read_text(errors='replace')[-4000:]}")
        return "\n".join(parts)

    def describe(self) -> str:
        """Everything one needs to see why a run failed."""
        return (f"$ {' '.join(self.command)}\nexit {self.returncode}\n"
                f"--- snakemake output (last 6000 chars)\n{self.output[-6000:]}\n{self.logs()}")


def run_snakemake(workdir: Path, configfile: Path | None, *args: str,
                  timeout: float = 600) -> SnakemakeResult:
    """Run snakemake to the end and capture everything."""
    command = snakemake_command(workdir, configfile, *args)
    done = subprocess.run(command, check=False, capture_output=True, text=True,
                          timeout=timeout, env=environment(), cwd=workdir)
    return SnakemakeResult(command, done.returncode, done.stdout, done.stderr, workdir)


def start_snakemake(workdir: Path, configfile: Path | None, *args: str
                    ) -> tuple[subprocess.Popen, Path]:
    """Start snakemake in its own session (so a signal reaches it as Ctrl+C would reach a
    terminal's foreground job) with its output in a file; returns the process and file."""
    command = snakemake_command(workdir, configfile, *args)
    output = workdir / "snakemake.out"
    with open(output, "wb") as handle:
        process = subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT,
                                   env=environment(), cwd=workdir, start_new_session=True)
    return process, output


def interrupt(process: subprocess.Popen, sig: int = signal.SIGINT, timeout: float = 120) -> int:
    """Send ``sig`` to the process group, as a terminal's Ctrl+C does; wait for the end."""
    os.killpg(process.pid, sig)
    try:
        return process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        raise


def wait_for(condition, timeout: float, interval: float = 0.5, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")


_JOB_STATS = re.compile(r"Job stats:\s*\n\s*job\s+count\s*\n\s*-+\s+-+\s*\n(.*?)(?:\n\s*\n|\Z)",
                        re.DOTALL)


def planned_jobs(output: str) -> Counter[str]:
    """Jobs per rule from Snakemake's "Job stats" table (the first one, i.e. the plan);
    empty when the output says there is nothing to be done."""
    match = _JOB_STATS.search(output)
    if not match:
        return Counter()
    jobs: Counter[str] = Counter()
    for line in match.group(1).splitlines():
        fields = line.split()
        if len(fields) == 2 and fields[1].isdigit() and fields[0] != "total":
            jobs[fields[0]] = int(fields[1])
    return jobs


def nothing_to_do(output: str) -> bool:
    return "Nothing to be done" in output


def latest_checkpoint_step(ckpt_dir: Path) -> int | None:
    """Highest N among ckpt/model.ckpt-N.index (the resumable checkpoints)."""
    steps = [int(m.group(1)) for path in ckpt_dir.glob("model.ckpt-*.index")
             if (m := re.fullmatch(r"model\.ckpt-(\d+)\.index", path.name))]
    return max(steps, default=None)


WORKFLOW_FILES = ["Snakefile", "config.yaml", "rules", "schemas", "scripts", "odflow",
                  "profiles", "report", "envs"]


def copy_workflow(destination: Path) -> Path:
    """A copy of this checkout's workflow (Snakefile, rules, scripts, the odflow package, ...)
    under ``destination``, as a user's clone moved elsewhere; returns its Snakefile."""
    import shutil

    destination.mkdir(parents=True, exist_ok=True)
    for name in WORKFLOW_FILES:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, destination / name,
                            ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, destination / name)
    return destination / "Snakefile"
