"""Render tools/mutation.sh's results as benchmarks/mutation.md (scores and surviving mutants).

Usage: python tools/mutation_report.py [RESULTS_DIR] [OUTPUT_MD] [EQUIVALENTS_DIR]
       (defaults: build/mutation, benchmarks/mutation.md, benchmarks/mutation_equivalent)

Per module: mutants, killed, survived, no tests, timeout, equivalent, score and accounted.
The columns after "mutants" add up to it: "survived" counts only the survivors nobody has
explained; "equivalent" the survivors listed in ``EQUIVALENTS_DIR/<module>.txt``, one line per
mutant, ``<mutant name>: <reason>`` (blank lines and ``#`` comments allowed), each one a mutant
no input can tell apart from the original.  Score = killed / all mutants, the honest number;
accounted = (killed + equivalent) / all, what is left to do is the rest.  A mutant no selected
test executes ("no tests") is not killed, nor is a timeout.  A run stopped early leaves "not
checked" mutants; those are left out and reported.

A listed name that is not a surviving mutant of the results (killed by a new test, renamed by
an edit of the source, misspelt) is an error naming the file and line: the list must not
explain away a mutant it does not describe.  The hand-written part of the report after the
marker line is kept when the file is regenerated.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from odflow.errors import OdflowError
from odflow.utils.atomic import atomic_write_text
from odflow.utils.cli import run_cli

MARKER = "<!-- survivors explained by hand below; kept on regeneration -->"
ORDER = ["box_coder", "anchors", "matcher", "target_assigner", "hard_example_miner", "losses",
         "postprocess", "coco", "label_map"]


@dataclass
class ModuleResult:
    """One module's mutants by status, with the survivors' diffs and the explained ones."""

    name: str
    meta: dict
    status_by_mutant: dict[str, str]
    diff_by_mutant: dict[str, str]
    equivalent: dict[str, str] = field(default_factory=dict)  # mutant -> reason

    @property
    def counts(self) -> Counter:
        counts = Counter(s for s in self.status_by_mutant.values() if s != "not checked")
        counts["survived"] -= len(self.equivalent)
        counts["equivalent"] = len(self.equivalent)
        return counts

    @property
    def unchecked(self) -> int:
        return sum(s == "not checked" for s in self.status_by_mutant.values())


def read_results(path: Path) -> dict[str, str]:
    """``mutmut results --all true`` lines ``    <name>: <status>`` -> {name: status}."""
    statuses = {}
    for line in path.read_text().splitlines():
        if ": " in line:
            name, status = line.strip().rsplit(": ", 1)
            statuses[name] = status
    return statuses


def read_diffs(path: Path) -> dict[str, str]:
    """mutation.sh's ``<module>.survivors.diff``: ``# <name>: <status>`` then the diff."""
    diffs: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in path.read_text().splitlines() if path.exists() else []:
        if line.startswith("# ") and ": " in line and not line.startswith("# ---"):
            current = diffs.setdefault(line[2:].rsplit(": ", 1)[0], [line])
        elif current is not None:
            current.append(line)
    return {name: "\n".join(lines).strip() for name, lines in diffs.items()}


def read_equivalents(path: Path, statuses: dict[str, str]) -> dict[str, str]:
    """``<mutant name>: <reason>`` lines -> {name: reason}; each must name a survivor."""
    equivalent: dict[str, str] = {}
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        where = f"{path}, line {number}"
        name, sep, reason = line.partition(": ")
        name, reason = name.strip(), reason.strip()
        if not sep or not reason:
            raise OdflowError(f"{where}: expected '<mutant name>: <reason>', got {line!r}")
        if name in equivalent:
            raise OdflowError(f"{where}: {name} is listed twice; keep one line per mutant")
        status = statuses.get(name)
        if status != "survived":
            what = "is not a mutant of the results" if status is None else f"is {status!r}"
            raise OdflowError(
                f"{where}: {name} {what}, not a surviving mutant: the list is stale; remove "
                "the line (or rerun tools/mutation.sh if the results are old)"
            )
        equivalent[name] = reason
    return equivalent


def load_module(module: str, results: Path, equivalents: Path) -> ModuleResult | None:
    result_file = results / f"{module}.results"
    if not result_file.exists():
        return None
    statuses = read_results(result_file)
    equivalent_file = equivalents / f"{module}.txt"
    return ModuleResult(
        name=module,
        meta=json.loads((results / f"{module}.json").read_text()),
        status_by_mutant=statuses,
        diff_by_mutant=read_diffs(results / f"{module}.survivors.diff"),
        equivalent=read_equivalents(equivalent_file, statuses) if equivalent_file.exists() else {},
    )


def _percent(part: int, whole: int) -> str:
    return f"{100.0 * part / max(whole, 1):.1f} %"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


COLUMNS = ["killed", "survived", "no tests", "timeout", "equivalent"]


def table_row(label: str, counts: Counter, time: str) -> str:
    total = sum(counts.values())
    accounted = counts["killed"] + counts["equivalent"]
    cells = [label, str(total), *(str(counts[c]) for c in COLUMNS),
             _percent(counts["killed"], total), _percent(accounted, total), time]
    return "| " + " | ".join(cells) + " |"


def module_details(module: ModuleResult) -> str:
    """The unexplained survivors' diffs and the equivalent mutants' reasons of one module."""
    unexplained = [name for name, status in module.status_by_mutant.items()
                   if status not in ("killed", "not checked") and name not in module.equivalent]
    parts = []
    if unexplained:
        diffs = "\n".join(module.diff_by_mutant.get(name, f"# {name}: (no diff recorded)")
                          for name in unexplained)
        parts.append(f"### {module.name}: {len(unexplained)} not killed, not explained\n\n"
                     f"`{module.meta['source']}`, judged by `{module.meta['tests']}`\n\n"
                     f"<details><summary>diffs</summary>\n\n```diff\n{diffs}\n```\n\n"
                     "</details>\n")
    if module.equivalent:
        rows = "\n".join(f"| `{name}` | {_cell(reason)} |"
                          for name, reason in module.equivalent.items())
        parts.append(f"### {module.name}: {len(module.equivalent)} equivalent\n\n"
                     f"From `benchmarks/mutation_equivalent/{module.name}.txt`.\n\n"
                     f"| mutant | why no input tells it apart |\n| --- | --- |\n{rows}\n")
    return "\n".join(parts)


def render(modules: dict[str, ModuleResult | None], kept: str) -> str:
    rows, details, overall = [], [], Counter()
    for name, module in modules.items():
        if module is None:
            rows.append(f"| {name} | not run |" + " |" * 8)
            continue
        counts = module.counts
        overall.update(counts)
        time = f"{module.meta['seconds']} s"
        if module.unchecked:
            time += f" (stopped: {module.unchecked} not checked)"
        rows.append(table_row(name, counts, time))
        if detail := module_details(module):
            details.append(detail)
    return "\n".join([
        "# Mutation testing",
        "",
        "`tools/mutation.sh` (mutmut 3, `pip install -e '.[mutation]'`) mutates each module in a",
        "throw-away copy of the tree and runs only that module's own fast test files against",
        "each mutant; `python tools/mutation_report.py` writes this file from its results.",
        "Killed + survived + no tests + timeout + equivalent = mutants.  \"survived\" counts the",
        "survivors nobody has explained; \"equivalent\" the ones listed, with the reason no input",
        "can tell them apart, in `benchmarks/mutation_equivalent/<module>.txt`.  \"no tests\" = no",
        "selected test runs the mutated function.  Score = killed / mutants (timeouts are not",
        "counted as killed); accounted = (killed + equivalent) / mutants.",
        "",
        ("| module | mutants | killed | survived | no tests | timeout | equivalent | score "
         "| accounted | time |"),
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        *rows,
        table_row("**all run**", overall, ""),
        "",
        "## Mutants not killed",
        "",
        *details,
        MARKER,
    ]) + (kept if kept else "\n")


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    results = Path(args[0] if len(args) > 0 else "build/mutation")
    output = Path(args[1] if len(args) > 1 else "benchmarks/mutation.md")
    equivalents = Path(args[2] if len(args) > 2 else "benchmarks/mutation_equivalent")
    if not results.is_dir():
        raise OdflowError(f"{results}: no such directory; run tools/mutation.sh first")
    kept = ""
    if output.exists() and MARKER in output.read_text():
        kept = output.read_text().split(MARKER, 1)[1]
    modules = {name: load_module(name, results, equivalents) for name in ORDER}
    atomic_write_text(output, render(modules, kept))
    overall = Counter()
    for module in modules.values():
        if module is not None:
            overall.update(module.counts)
    total = sum(overall.values())
    print(f"wrote {output}: {overall['killed']}/{total} killed ({_percent(overall['killed'], total)}), "
          f"{overall['equivalent']} equivalent (accounted "
          f"{_percent(overall['killed'] + overall['equivalent'], total)})")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
