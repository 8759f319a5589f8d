"""Every config value is data: hostile strings in every free-text setting reach the rules'
shell commands only quoted (issue 17, item 1), and an experiment that repeats the base run's
settings trains nothing of its own (item 5).

``snakemake -n -p`` prints each job's shell command as the shell will run it. The hostile
value holds a space, both quotes, ``$(...)``, backticks, ``;``, ``|``, ``&&`` and non-ASCII
text; tokenised the way a POSIX shell does (``shlex``), a quoted value is one word (or the
end of one ``--option=value`` word), while an unquoted one splits into several words and
leaves ``;``/``|`` operators behind. Four plans cover the dataset sources (csv with a
download URL, a template, overrides and detection; voc; WIDER FACE; existing records),
batched in one process (tests.support.dry_runs).
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest

from tests.support.dry_runs import dry_runs
from tests.support.workflow import SnakemakeResult, planned_jobs, tiny_config, write_config

pytestmark = [pytest.mark.workflow, pytest.mark.slow]

# No '/' (it names files too) and no glob characters (tfrecord paths are globs).
HOSTILE = "a b'c\"d $(touch INJECTED) `touch INJECTED`; e | f && g -h visage été"
CLASSES = [HOSTILE, "-x", "visage été"]
ALLOWED_OPERATORS = {"(", ")", ">", ">&", "&&"}  # the rules' own: ( ... && ... ) 3>&2 > log 2>&1


def shell_commands(output: str) -> dict[str, list[str]]:
    """Rule name -> the shell commands ``snakemake -n -p`` printed for its jobs."""
    commands: dict[str, list[str]] = {}
    rule = None
    for line in output.splitlines():
        if line.startswith(("rule ", "localrule ")):
            rule = line.split()[1].rstrip(":")
        elif line.startswith("Shell command:") and rule:
            commands.setdefault(rule, []).append(line.removeprefix("Shell command:").strip())
    return commands


def operators(command: str) -> set[str]:
    """The shell operators outside quotes (a POSIX shell's view, via shlex)."""
    lexer = shlex.shlex(command, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    return {token for token in lexer if token and set(token) <= set("();<>|&")}


def check_quoted(rule: str, command: str) -> bool:
    """Assert the hostile value is whole wherever it appears; True if it appears."""
    assert operators(command) <= ALLOWED_OPERATORS, (rule, operators(command), command)
    if "INJECTED" not in command:
        return False
    for word in shlex.split(command):
        if word.startswith("--names-json="):
            assert json.loads(word.removeprefix("--names-json=")) == CLASSES, (rule, word)
        elif "INJECTED" in word:
            assert HOSTILE in word, (rule, word, command)
    return True


def _touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    return path


def _plans(tmp: Path) -> dict[str, tuple[Path, Path, list[str]]]:
    """Work dir, config and targets of each plan; hostile names for every path they read."""
    plans = {}
    experiments = {"seed2": {"train": {"seed": 2}},
                   "same": {"train": {"seed": 1}}}  # = the base run's settings

    work = tmp / "csv"
    _touch(work / f"{HOSTILE}.config")
    for split in ("train", "val"):
        _touch(work / f"{HOSTILE} {split}.csv")
        _touch(work / f"{HOSTILE} {split}" / "x.jpg")
    _touch(work / f"{HOSTILE}.jpg")
    _touch(work / f"{HOSTILE}.tflite")
    config = tiny_config(
        model={"url": f"https://127.0.0.1:9/{HOSTILE}.tar.gz"},
        pipeline={"template": f"{HOSTILE}.config",
                  "overrides": [f"train_config.fine_tune_checkpoint={HOSTILE}"]},
        classes=CLASSES,
        dataset={"source": "csv", "csv": {
            f"{split}_{kind}": f"{HOSTILE} {split}{'.csv' if kind == 'csv' else ''}"
            for split in ("train", "val") for kind in ("csv", "images")}},
        detect={"images": f"{HOSTILE}.jpg", "model": f"{HOSTILE}.tflite"},
        experiments=experiments)
    plans["csv"] = (work, write_config(work, config),
                    ["-p", "runs/all", "deploy", "detections/done"])

    work = tmp / "voc"
    for split in ("train", "val"):
        _touch(work / f"{HOSTILE} {split} xml" / "x.xml")
        _touch(work / f"{HOSTILE} {split} jpg" / "x.jpg")
    config = tiny_config(classes=CLASSES, dataset={"source": "voc", "voc": {
        f"{split}_{kind}": f"{HOSTILE} {split} {'xml' if kind == 'annotations' else 'jpg'}"
        for split in ("train", "val") for kind in ("annotations", "images")}})
    plans["voc"] = (work, write_config(work, config), ["-p", "all"])

    work = tmp / "wider"
    for split in ("train", "val"):
        _touch(work / HOSTILE / "wider_face_split" / f"wider_face_{split}_bbx_gt.txt")
        _touch(work / HOSTILE / f"WIDER_{split}" / "images" / "0--x" / "x.jpg")
    config = tiny_config(classes=CLASSES, dataset={"source": "wider_face",
                                                   "wider_face": {"root": HOSTILE}})
    plans["wider"] = (work, write_config(work, config), ["-p", "all"])

    work = tmp / "tfrecord"
    for split in ("train", "val"):
        _touch(work / f"{HOSTILE} {split}.record")
    config = tiny_config(classes=CLASSES, dataset={"source": "tfrecord", "tfrecord": {
        split: [f"{HOSTILE} {split}.record"] for split in ("train", "val")}})
    plans["tfrecord"] = (work, write_config(work, config), ["-p", "all", "deploy"])
    return plans


@pytest.fixture(scope="module")
def planned(tmp_path_factory: pytest.TempPathFactory) -> dict[str, SnakemakeResult]:
    plans = _plans(tmp_path_factory.mktemp("quoting"))
    results = dry_runs(list(plans.values()))
    for name, result in zip(plans, results):
        assert result.returncode == 0, f"plan {name}:\n{result.describe()}"
    return dict(zip(plans, results))


# Where each plan's hostile values must show up (so the test really fed them through).
EXPECTED_RULES = {
    "csv": {"label_map", "records", "pipeline_config", "pipeline_config__seed2",
            "download_model", "detect"},
    "voc": {"label_map", "records"},
    "wider": {"label_map", "records"},
    "tfrecord": {"label_map", "pipeline_config", "export_tflite_int8", "evaluate_deployed"},
}


@pytest.mark.parametrize("plan", sorted(EXPECTED_RULES))
def test_hostile_values_reach_the_shell_only_quoted(planned, plan: str) -> None:
    result = planned[plan]
    commands = shell_commands(result.output)
    assert commands, result.describe()
    carrying = {rule for rule, lines in commands.items()
                for command in lines if check_quoted(rule, command)}
    missing = EXPECTED_RULES[plan] - carrying
    assert not missing, f"{missing} never received the hostile value\n{result.output[-4000:]}"
    for work in {result.workdir}:
        assert not list(work.rglob("INJECTED")), "a dry run ran a command"


def test_duplicate_experiment_trains_nothing_and_keeps_its_summary_row(planned) -> None:
    result = planned["csv"]
    jobs = planned_jobs(result.output)
    assert jobs["train"] == 1 and jobs["train__seed2"] == 1, jobs
    assert not {name for name in jobs if name.endswith("__same")}, jobs
    assert jobs["export"] == 2 and jobs["plots"] == 2, jobs  # base and seed2, not same
    [summary] = shell_commands(result.output)["experiments_summary"]
    words = shlex.split(summary)
    rows = {row["label"]: row for row in json.loads(words[words.index("--runs") + 1])}
    assert set(rows) == {"base", "seed2", "same"}, rows
    assert rows["same"]["metrics"] == "eval/metrics.json", rows["same"]
    assert rows["same"]["model"] == "exported_model/frozen_inference_graph.pb", rows["same"]
    assert rows["seed2"]["metrics"] == "runs/seed2/eval/metrics.json", rows["seed2"]
