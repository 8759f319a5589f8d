"""One tiny workflow run with hostile class names, stopped by a signal to Snakemake alone,
resumed, then moved (issue 17, items 1, 4 and 5).

The story, run once for the module: ``classes`` holds a name with a leading '-', spaces,
both quotes, ``$(...)``, backticks, ``;``, ``|``, ``&&`` and non-ASCII text (and a bare
``-x``); ``snakemake -c2 exported_model/frozen_inference_graph.pb`` starts; once training has
saved model.ckpt-5, SIGTERM goes to the snakemake process only (not its group, so training
gets nothing from the sender); the same command then finishes the run. (SIGINT takes the
same path, tests/test_workflow_stopping.py; it is not sent here because a test run started
in the background of a shell inherits SIGINT ignored.) The tests read what
the story left: no command ran, every name arrived exactly, training stopped at a saved step
and the rerun resumes from it. Beside it: a copy of the session's finished tiny run (and of
the workflow) has nothing to do.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from google.protobuf import text_format

from odflow.protos import string_int_label_map_pb2
from tests.support.workflow import (
    SnakemakeResult,
    copy_workflow,
    environment,
    latest_checkpoint_step,
    nothing_to_do,
    run_snakemake,
    start_snakemake,
    tiny_config,
    wait_for,
    write_config,
)

pytestmark = [pytest.mark.workflow, pytest.mark.slow]

HOSTILE_NAME = ("-visage été $(touch INJECTED) `touch INJECTED`; echo 'a' \"b\" | cat"
                " && touch INJECTED")
CLASSES = [HOSTILE_NAME, "-x", "it's"]
NUM_STEPS = 100
TARGET = "exported_model/frozen_inference_graph.pb"


@dataclass
class Story:
    work: Path
    configfile: Path
    first_returncode: int
    first_output: str
    first_train_log: str
    training_left: list[str]
    saved_step: int | None
    rerun: SnakemakeResult


def training_processes_in(work: Path) -> list[str]:
    """Command lines of live processes running model_main.py in ``work`` (read from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cwd = os.readlink(entry / "cwd")
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if cwd == str(work) and any(part.endswith(b"model_main.py") for part in argv[:2]):
            found.append(b" ".join(argv).decode(errors="replace"))
    return found


@pytest.fixture(scope="module")
def story(tmp_path_factory: pytest.TempPathFactory) -> Story:
    work = tmp_path_factory.mktemp("hostile")
    configfile = write_config(work, tiny_config(
        classes=CLASSES, train={"num_steps": NUM_STEPS, "checkpoint_every_steps": 5}))
    process, output = start_snakemake(work, configfile, "-c2", TARGET)
    try:
        wait_for(lambda: process.poll() is not None
                 or (latest_checkpoint_step(work / "ckpt") or 0) >= 5,
                 timeout=400, interval=0.2, what="training to save model.ckpt-5")
        if process.poll() is None:
            os.kill(process.pid, signal.SIGTERM)  # snakemake alone, not its process group
        returncode = process.wait(timeout=300)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    left = training_processes_in(work)
    train_log = work / "logs" / "train.log"
    first_log = train_log.read_text(errors="replace") if train_log.exists() else ""
    saved = latest_checkpoint_step(work / "ckpt")
    rerun = run_snakemake(work, configfile, "-c2", TARGET)
    return Story(work, configfile, returncode, output.read_text(errors="replace"), first_log,
                 left, saved, rerun)


def _context(story: Story) -> str:
    return (f"--- first snakemake\n{story.first_output[-3000:]}\n--- first train.log\n"
            f"{story.first_train_log[-3000:]}\n--- rerun\n{story.rerun.describe()}")


def test_signal_to_snakemake_alone_stops_training_at_a_saved_step(story: Story) -> None:
    assert story.first_returncode != 0, _context(story)
    assert not story.training_left, story.training_left
    assert story.saved_step is not None and 5 <= story.saved_step < NUM_STEPS, _context(story)
    assert f"stopped by SIGTERM; saved ckpt/model.ckpt-{story.saved_step}" in \
        story.first_train_log, _context(story)


def test_rerun_resumes_from_the_saved_checkpoint_and_finishes(story: Story) -> None:
    assert story.rerun.returncode == 0, _context(story)
    log = story.rerun.log("train")
    assert re.search(rf"resumed from \S*model\.ckpt-{story.saved_step} at step "
                     rf"{story.saved_step}\b", log), _context(story)
    assert f"done at step {NUM_STEPS}" in log, _context(story)
    assert (story.work / f"ckpt/model.ckpt-{NUM_STEPS}.index").is_file()


def _label_map_names(path: Path) -> list[str]:
    """The names of a label map, parsed with the API's own schema (not odflow.label_map)."""
    proto = string_int_label_map_pb2.StringIntLabelMap()
    text_format.Parse(path.read_text(encoding="utf-8"), proto)
    return [item.name for item in sorted(proto.item, key=lambda item: item.id)]


def test_hostile_class_names_ran_nothing_and_arrived_exactly(story: Story) -> None:
    import tensorflow as tf

    assert story.rerun.returncode == 0, _context(story)
    assert not list(story.work.rglob("INJECTED")), "a class name ran as a command"
    assert _label_map_names(story.work / "datasets/label_map.pbtxt") == CLASSES
    assert _label_map_names(story.work / "exported_model/label_map.pbtxt") == CLASSES
    for split in ("train", "val"):
        texts = []
        for record in tf.data.TFRecordDataset(str(story.work / f"datasets/{split}.record")):
            example = tf.train.Example.FromString(record.numpy())
            texts += example.features.feature["image/object/class/text"].bytes_list.value
        assert texts, f"no boxes in {split}.record"
        assert {text.decode("utf-8") for text in texts} == {HOSTILE_NAME}, split


def test_moved_project_has_nothing_to_do(finished_tiny_run: SnakemakeResult,
                                         tmp_path: Path) -> None:
    """`cp -a` of a finished project (the session's tiny run, tests/conftest.py) and of the
    workflow beside it, as a clone moved with its results: the absolute paths that moved are
    no reason to run anything again."""
    assert finished_tiny_run.returncode == 0, finished_tiny_run.describe()
    moved = tmp_path / "moved"
    shutil.copytree(finished_tiny_run.workdir, moved / "work", symlinks=True)
    snakefile = copy_workflow(moved / "workflow")
    done = subprocess.run(
        [sys.executable, "-m", "snakemake", "-s", str(snakefile), "-d", str(moved / "work"),
         "-n", "all", "--configfile", str(moved / "work" / "tiny.yaml")],
        capture_output=True, text=True, timeout=300, env=environment(), check=False)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert nothing_to_do(output), output
