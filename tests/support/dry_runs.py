"""Many ``snakemake -n`` runs in one Python process, for tests that plan dozens of variants.

Each dry run is exactly the command line a user types (``snakemake.cli.main(argv)``, with
its output captured at the file-descriptor level as a terminal would see it); only the
interpreter start and Snakemake's import are shared (most of the ~1.5 s of CPU a separate
``snakemake -n`` costs: a dry run in the batch takes ~0.3 s).  Runs in a subprocess of its own, so Snakemake's
working-directory changes and logging stay out of the test process:

    python -m tests.support.dry_runs runs.json results.json

where runs.json is a list of argument lists and results.json receives, per run,
``{"returncode": int, "output": str}``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from tests.support.workflow import REPO, SNAKEFILE, SnakemakeResult, environment


def _run_one(argv: list[str]) -> tuple[int, str]:
    """``snakemake <argv>`` in this process; (exit code, everything it printed)."""
    from snakemake import cli

    with tempfile.TemporaryFile() as captured:
        sys.stdout.flush()
        sys.stderr.flush()
        saved = os.dup(1), os.dup(2)
        os.dup2(captured.fileno(), 1)
        os.dup2(captured.fileno(), 2)
        try:
            try:
                cli.main(argv)
                code = 0
            except SystemExit as stop:
                code = stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])
        captured.seek(0)
        return code, captured.read().decode(errors="replace")


def dry_runs(plans: list[tuple[Path, Path | None, list[str]]],
             timeout: float = 600) -> list[SnakemakeResult]:
    """``snakemake -n <targets>`` for each (work dir, config file, targets), in one process."""
    commands = []
    for workdir, configfile, targets in plans:
        argv = ["-s", str(SNAKEFILE), "-d", str(workdir), "-n", *targets]
        if configfile is not None:  # last: --configfile takes every word up to an option
            argv += ["--configfile", str(configfile)]
        commands.append(argv)
    with tempfile.TemporaryDirectory() as scratch:
        runs, results = Path(scratch) / "runs.json", Path(scratch) / "results.json"
        runs.write_text(json.dumps(commands))
        done = subprocess.run([sys.executable, "-m", "tests.support.dry_runs", str(runs),
                               str(results)], cwd=REPO, env=environment(), timeout=timeout,
                              capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"the dry-run batch failed:\n{done.stdout}\n{done.stderr}")
        answers = json.loads(results.read_text())
    return [SnakemakeResult(["snakemake", *argv], answer["returncode"], answer["output"], "",
                            Path(argv[3]))
            for argv, answer in zip(commands, answers)]


def main() -> None:
    runs, results = sys.argv[1:3]
    answers = []
    for argv in json.loads(Path(runs).read_text()):
        code, output = _run_one(argv)
        answers.append({"returncode": code, "output": output})
    Path(results).write_text(json.dumps(answers))


if __name__ == "__main__":
    main()
