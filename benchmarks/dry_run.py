"""How long `snakemake -n` takes on odflow's DAG, against an empty Snakefile.

    python benchmarks/dry_run.py [--repeats 5] [--workdir /tmp/odflow-dry-run]

Three dry runs, each in a fresh empty work dir, interleaved ``--repeats`` times:

- baseline: a one-rule Snakefile (Snakemake's own start-up, parse and DAG cost);
- demo: ``snakemake -n exported_model/frozen_inference_graph.pb`` with the shipped config;
- WIDER-sized: the same with ``dataset.source: wider_face`` over a folder shaped like WIDER
  FACE (61 event folders, 12,880 train + 3,226 val image files), whose every file the records
  rule's folder digest stats (odflow.workflow.fingerprint).

Reports the median wall time and CPU time (user + sys of the snakemake process) of each, and
each's difference to and ratio over the baseline. The goals (issue 9): demo within +2 s of
the baseline, WIDER-sized within +3 s.  Also times the folder digest alone on that folder.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from odflow.workflow.fingerprint import folder_digest

EMPTY_SNAKEFILE = 'rule all:\n    output: "x"\n    shell: "touch {output}"\n'
WIDER_SPLITS = {"train": 12_880, "val": 3_226}
EVENTS = 61


def make_wider(root: Path) -> None:
    """Files named and nested as WIDER FACE's, a few bytes each (a dry run reads none)."""
    for split, count in WIDER_SPLITS.items():
        gt = root / "wider_face_split" / f"wider_face_{split}_bbx_gt.txt"
        gt.parent.mkdir(parents=True, exist_ok=True)
        lines = []
        for index in range(count):
            event = index % EVENTS
            name = f"{event}--Event/{event}_Event_{index}.jpg"
            path = root / f"WIDER_{split}" / "images" / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"\xff\xd8\xff\xd9")
            lines += [name, "0", "0 0 0 0 0 0 0 0 0 0 "]
        gt.write_text("\n".join(lines) + "\n")


def timed(command: list[str], cwd: Path) -> tuple[float, float]:
    """(wall s, CPU s of the child) of one run; fails loudly if snakemake fails."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"$ {' '.join(command)}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/odflow-dry-run"))
    args = parser.parse_args()
    shutil.rmtree(args.workdir, ignore_errors=True)
    args.workdir.mkdir(parents=True)
    (args.workdir / "Empty.smk").write_text(EMPTY_SNAKEFILE)
    wider = args.workdir / "wider"
    make_wider(wider)

    start = time.perf_counter()
    digest = folder_digest([str(wider / "WIDER_train/images"), str(wider / "WIDER_val/images")])
    digest_seconds = time.perf_counter() - start

    snakemake = [sys.executable, "-m", "snakemake", "-n"]
    target = "exported_model/frozen_inference_graph.pb"
    cases = {
        "empty Snakefile (baseline)": snakemake + ["-s", str(args.workdir / "Empty.smk")],
        "demo DAG": snakemake + ["-s", str(REPO / "Snakefile"), target],
        "demo DAG, WIDER-sized folder": snakemake + [
            "-s", str(REPO / "Snakefile"), target, "--config",
            f"dataset={{source: wider_face, wider_face: {{root: {wider}}}}}"],
    }
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in cases}
    for repeat in range(args.repeats):
        for name, command in cases.items():
            run_dir = args.workdir / f"run-{repeat}-{len(times[name])}-{abs(hash(name))}"
            run_dir.mkdir()
            times[name].append(timed(command, run_dir))

    load = os.getloadavg()[0]
    print(f"{args.repeats} repeats, load average {load:.1f}, {os.cpu_count()} CPUs; "
          f"folder digest of {digest.split(',')[0]}: {digest_seconds * 1000:.0f} ms\n")
    print("| dry run | wall s (median) | CPU s (median) | wall vs baseline | CPU vs baseline |")
    print("|---|---|---|---|---|")
    base_wall = statistics.median(t[0] for t in times["empty Snakefile (baseline)"])
    base_cpu = statistics.median(t[1] for t in times["empty Snakefile (baseline)"])
    for name, samples in times.items():
        wall = statistics.median(t[0] for t in samples)
        cpu = statistics.median(t[1] for t in samples)
        print(f"| {name} | {wall:.2f} | {cpu:.2f} | {wall - base_wall:+.2f} s "
              f"(x{wall / base_wall:.2f}) | {cpu - base_cpu:+.2f} s (x{cpu / base_cpu:.2f}) |")


if __name__ == "__main__":
    main()
