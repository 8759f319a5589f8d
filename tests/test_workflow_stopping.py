"""odflow.workflow.stopping: a signal to Snakemake reaches the training it started, and only it.

Real processes, no TensorFlow: a stand-in ``model_main.py`` that records the signal it gets,
started as the workflow starts training (``bash -c "( python .../model_main.py ... )"``),
beside a process that is not training. Linux only (``/proc``).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from odflow.workflow import stopping

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")

STAND_IN = textwrap.dedent("""
    import signal, sys, time
    from pathlib import Path
    out = Path(sys.argv[1])
    signal.signal(signal.SIGTERM, lambda *_: (out.write_text("SIGTERM"), sys.exit(143)))
    out.write_text("ready")
    time.sleep(60)
""")


def _start(tmp_path: Path, script_name: str, marker: str,
           model_dir: str = "ckpt") -> subprocess.Popen:
    script = tmp_path / script_name
    script.write_text(STAND_IN)
    command = (f"( {sys.executable} {script} {tmp_path / marker} --model_dir {model_dir} )"
               " > /dev/null 2>&1")
    return subprocess.Popen(["bash", "-c", command])


def _wait_for(path: Path, text: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_text() == text:
            return
        time.sleep(0.05)
    raise AssertionError(f"{path} never said {text!r}")


def test_is_training_matches_the_python_process_only() -> None:
    assert stopping.is_training(["/usr/bin/python3", "/repo/scripts/model_main.py", "--x"])
    assert stopping.is_training(["python", "scripts/model_main.py"])
    # The job's shells name the script inside their -c string only.
    assert not stopping.is_training(["/bin/bash", "-c", "python scripts/model_main.py"])
    assert not stopping.is_training(["python", "scripts/training_history.py"])
    assert not stopping.is_training(["srun", "python", "scripts/model_main.py"])
    assert not stopping.is_training([])


def test_model_dir_of_reads_both_spellings() -> None:
    assert stopping.model_dir_of(["python", "m.py", "--model_dir", "runs/a/ckpt"]) == "runs/a/ckpt"
    assert stopping.model_dir_of(["python", "m.py", "--model_dir=ckpt", "--seed", "1"]) == "ckpt"
    assert stopping.model_dir_of(["python", "m.py", "--model_dir"]) is None


def test_a_training_past_its_final_checkpoint_is_left_to_end(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    done = _start(tmp_path / "a", "model_main.py", "marker", model_dir="runs/done/ckpt")
    running = _start(tmp_path / "b", "model_main.py", "marker", model_dir="ckpt")
    try:
        _wait_for(tmp_path / "a" / "marker", "ready")
        _wait_for(tmp_path / "b" / "marker", "ready")
        stopped = stopping.stop_training(os.getpid(),
                                         finished=lambda model_dir: model_dir == "runs/done/ckpt")
        assert len(stopped) == 1, stopped
        _wait_for(tmp_path / "b" / "marker", "SIGTERM")
        time.sleep(0.2)
        assert (tmp_path / "a" / "marker").read_text() == "ready"
    finally:
        for process in (done, running):
            if process.poll() is None:
                process.kill()
                process.wait()


def test_stop_training_signals_the_training_descendant_only(tmp_path: Path) -> None:
    (tmp_path / "train").mkdir()
    (tmp_path / "other").mkdir()
    training = _start(tmp_path / "train", "model_main.py", "marker")
    other = _start(tmp_path / "other", "plot_metrics.py", "marker")
    try:
        _wait_for(tmp_path / "train" / "marker", "ready")
        _wait_for(tmp_path / "other" / "marker", "ready")
        below = stopping.descendants(os.getpid())
        assert training.pid in below and other.pid in below
        stopped = stopping.stop_training(os.getpid())
        assert len(stopped) == 1 and stopped[0] not in (training.pid, other.pid), stopped
        _wait_for(tmp_path / "train" / "marker", "SIGTERM")
        assert training.wait(timeout=20) == 143
        time.sleep(0.2)
        assert (tmp_path / "other" / "marker").read_text() == "ready"
        assert other.poll() is None
    finally:
        for process in (training, other):
            if process.poll() is None:
                process.kill()
                process.wait()
    # Nothing left below us: nothing to stop.
    assert stopping.stop_training(os.getpid()) == []


CHAINED = textwrap.dedent("""
    import os, signal, subprocess, sys, time
    from pathlib import Path
    from odflow.workflow import stopping
    work = Path(sys.argv[1])
    seen = []

    def start(name):
        (work / name).mkdir()
        child = subprocess.Popen(["bash", "-c", f"( {sys.executable} {work / 'model_main.py'} "
                                  f"{work / name / 'marker'} )"])
        while not (work / name / "marker").exists():
            time.sleep(0.05)
        return child

    # Snakemake's handlers: Python's SIGINT default (a shell may have started this test with
    # SIGINT ignored) and its SIGTERM handler ("exit after finishing running jobs"), recorded.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, lambda signum, frame: seen.append(signal.Signals(signum).name))
    stopping.forward_stop_signals()
    for name, signum in [("term", signal.SIGTERM), ("int", signal.SIGINT)]:
        child = start(name)
        os.kill(os.getpid(), signum)
        child.wait(timeout=20)
        seen.append((work / name / "marker").read_text())
    try:
        os.kill(os.getpid(), signal.SIGINT)  # the second SIGINT: Snakemake's own
    except KeyboardInterrupt:
        seen.append("KeyboardInterrupt")
    print(seen)
""")


def test_forwarding_runs_before_the_previous_handlers(tmp_path: Path) -> None:
    """SIGTERM: training is told to stop, then the handler that was there (Snakemake's
    "exit after running jobs") runs. The first SIGINT does the same (the graceful exit
    records how jobs ended); a second one raises KeyboardInterrupt as before."""
    (tmp_path / "model_main.py").write_text(STAND_IN)
    (tmp_path / "driver.py").write_text(CHAINED)
    done = subprocess.run([sys.executable, str(tmp_path / "driver.py"), str(tmp_path)],
                          capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(["SIGTERM", "SIGTERM", "SIGINT", "SIGTERM",
                                       "KeyboardInterrupt"]), done
