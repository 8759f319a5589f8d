"""Render tools/mutation.sh's results as benchmarks/mutation.md (score and surviving mutants).

Usage: python tools/mutation_report.py [RESULTS_DIR] [OUTPUT_MD]
       (defaults: build/mutation, benchmarks/mutation.md)

The score is killed / all mutants of the module: a mutant no selected test executes
("no tests") counts as surviving, since no test would notice it.  Timeouts are listed apart
and not counted as killed.  A run stopped early leaves "not checked" mutants; those are
left out of the score and reported.  The hand-written part of the report (why each
remaining survivor is equivalent or harmless) lives after the marker line and is kept when
the file is regenerated.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

MARKER = "<!-- survivors explained by hand below; kept on regeneration -->"
ORDER = ["box_coder", "anchors", "matcher", "target_assigner", "hard_example_miner", "losses",
         "postprocess", "coco", "label_map"]
KILLED = {"killed"}


def read_results(path: Path) -> Counter:
    statuses: Counter = Counter()
    for line in path.read_text().splitlines():
        if ": " in line:
            statuses[line.rsplit(": ", 1)[1].strip()] += 1
    return statuses


def main(argv: list[str]) -> int:
    results = Path(argv[1] if len(argv) > 1 else "build/mutation")
    output = Path(argv[2] if len(argv) > 2 else "benchmarks/mutation.md")
    kept = ""
    if output.exists() and MARKER in output.read_text():
        kept = output.read_text().split(MARKER, 1)[1]
    rows, details, total_killed, total = [], [], 0, 0
    for module in ORDER:
        result_file = results / f"{module}.results"
        if not result_file.exists():
            rows.append(f"| {module} | not run | | | | | | |")
            continue
        meta = json.loads((results / f"{module}.json").read_text())
        statuses = read_results(result_file)
        # A run stopped early (time budget) leaves "not checked" mutants: score what ran.
        unchecked = statuses.pop("not checked", 0)
        count = sum(statuses.values())
        killed = sum(statuses[s] for s in KILLED)
        survived = count - killed
        total_killed, total = total_killed + killed, total + count
        rows.append(f"| {module} | {count} | {killed} | {statuses['survived']} | "
                    f"{statuses['no tests']} | {statuses['timeout']} | "
                    f"{100.0 * killed / max(count, 1):.1f} % | {meta['seconds']} s"
                    + (f" (stopped: {unchecked} not checked)" if unchecked else "") + " |")
        diff = (results / f"{module}.survivors.diff").read_text().strip()
        if survived:
            details.append(f"### {module}: {survived} surviving\n\n`{meta['source']}`, judged by "
                           f"`{meta['tests']}`\n\n<details><summary>diffs</summary>\n\n"
                           f"```diff\n{diff}\n```\n\n</details>\n")
    overall = f"{100.0 * total_killed / max(total, 1):.1f} %"
    text = "\n".join([
        "# Mutation testing",
        "",
        "`tools/mutation.sh` (mutmut 3, `pip install -e '.[mutation]'`) mutates each module in a",
        "throw-away copy of the tree and runs only that module's own fast test files against",
        "each mutant; `python tools/mutation_report.py` writes this file from its results.",
        "Score = killed / all mutants (timeouts are not counted as killed); \"no tests\" = no",
        "selected test runs the mutated function, counted as surviving.",
        "",
        "| module | mutants | killed | survived | no tests | timeout | score | time |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
        *rows,
        f"| **all run** | {total} | {total_killed} | | | | **{overall}** | |",
        "",
        "## Surviving mutants",
        "",
        *details,
        MARKER,
    ]) + (kept if kept else "\n")
    output.write_text(text)
    print(f"wrote {output}: {total_killed}/{total} killed ({overall})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
