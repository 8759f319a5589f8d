"""Experiments' cost: the dry run of 20 variants, and four variants built together vs apart.

    python benchmarks/experiments.py [--repeats 3] [--workdir /tmp/odflow-experiments]
        [--skip-builds]

1. ``snakemake -n all`` with the shipped config (the demo's dry run) against
   ``snakemake -n runs/all`` with the same config plus 20 experiments (8 learning rates,
   sharing the base's records and tarball; 6 depth multipliers, each its own starter tarball;
   6 step counts), each in a fresh work dir, interleaved; median wall time. Goal (issue 12):
   at most +3 s.
2. Four runs of a small config (tiny synthetic data, a 64 px starter, 30 steps; the base and
   three learning rates): one ``snakemake -c2 runs/all`` against four ``snakemake -c2 all``
   one after the other, each run's settings as its own config (the same work, nothing
   shared but what the experiments share). Goal: ratio at most 1 (no lost parallelism).
"""

from __future__ import annotations

import argparse
import copy
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
LR = ("train_config.optimizer.adam_optimizer.learning_rate.cosine_decay_learning_rate."
      "learning_rate_base={}")
SMALL = {
    "model": {"starter": {"depth_multiplier": 0.25, "image_size": 64}},
    "pipeline": {"overrides": ["train_config.batch_size=4"]},
    "dataset": {"synthetic": {"train_images": 48, "val_images": 16}},
    "train": {"num_steps": 30, "eval_every": 0, "checkpoint_every_steps": 30, "log_every": 5},
}


def twenty_variants() -> dict:
    variants = {f"lr_{i}": {"pipeline": {"overrides": [LR.format(0.001 * (i + 1))]}}
                for i in range(8)}
    variants.update({f"depth_{i}": {"model": {"starter": {"depth_multiplier": 0.3 + 0.05 * i}}}
                     for i in range(6)})
    variants.update({f"steps_{i}": {"train": {"num_steps": 1000 * (i + 1)}} for i in range(6)})
    return variants


def run(command: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"$ {' '.join(command)}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return time.perf_counter() - start


def snakemake(*args: str) -> list[str]:
    return [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), *args]


def write(path: Path, config: dict) -> Path:
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def dry_runs(workdir: Path, repeats: int) -> None:
    shipped = yaml.safe_load((REPO / "config.yaml").read_text())
    config = write(workdir / "twenty.yaml", {**shipped, "experiments": twenty_variants()})
    cases = {"demo: snakemake -n all": snakemake("-n", "all"),
             "20 variants: snakemake -n runs/all": snakemake("--configfile", str(config),
                                                             "-n", "runs/all")}
    times: dict[str, list[float]] = {name: [] for name in cases}
    for repeat in range(repeats):
        for index, (name, command) in enumerate(cases.items()):
            cwd = workdir / f"dry-{repeat}-{index}"
            cwd.mkdir()
            times[name].append(run(command, cwd))
    base = statistics.median(times["demo: snakemake -n all"])
    print("| dry run | wall s (median) | vs demo |\n|---|---|---|")
    for name, samples in times.items():
        wall = statistics.median(samples)
        print(f"| {name} | {wall:.2f} | {wall - base:+.2f} s (x{wall / base:.2f}) |")


def builds(workdir: Path) -> None:
    shipped = yaml.safe_load((REPO / "config.yaml").read_text())
    small = copy.deepcopy(shipped)
    for section, values in SMALL.items():
        for key, value in values.items():
            if isinstance(value, dict):
                small[section][key].update(value)
            else:
                small[section][key] = value
    rates = [0.004, 0.002, 0.008, 0.016]
    variants = {f"lr_{i}": {"pipeline": {"overrides": ["train_config.batch_size=4",
                                                       LR.format(rate)]}}
                for i, rate in enumerate(rates[1:])}
    together = workdir / "together"
    together.mkdir()
    config = write(workdir / "together.yaml", {**small, "experiments": variants})
    parallel = run(snakemake("--configfile", str(config), "-c2", "runs/all"), together)
    sequential = 0.0
    for index, rate in enumerate(rates):
        alone = workdir / f"alone-{index}"
        alone.mkdir()
        settings = copy.deepcopy(small)
        settings["pipeline"]["overrides"] = ["train_config.batch_size=4", LR.format(rate)]
        config = write(workdir / f"alone-{index}.yaml", settings)
        sequential += run(snakemake("--configfile", str(config), "-c2", "all"), alone)
    print("\n| four small runs | wall s |\n|---|---|")
    print(f"| one `snakemake -c2 runs/all` (base + 3 experiments) | {parallel:.1f} |")
    print(f"| four `snakemake -c2 all`, one after the other | {sequential:.1f} |")
    print(f"| ratio together / apart | {parallel / sequential:.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/odflow-experiments"))
    parser.add_argument("--skip-builds", action="store_true")
    args = parser.parse_args()
    shutil.rmtree(args.workdir, ignore_errors=True)
    args.workdir.mkdir(parents=True)
    print(f"load average {os.getloadavg()[0]:.1f}, {os.cpu_count()} CPUs\n")
    dry_runs(args.workdir, args.repeats)
    if not args.skip_builds:
        builds(args.workdir)


if __name__ == "__main__":
    main()
