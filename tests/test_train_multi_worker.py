"""MultiWorkerMirroredStrategy: two worker processes on localhost train like one worker.

The reference is one process with two replicas (two logical CPUs, ``MirroredStrategy``) on
the same global batch of four distinct images: per-replica batch-norm statistics then cover
the same two images in both runs, so losses and weights must agree to float precision.  A
worker that got the wrong slice of the global batch (both workers the same half, or the whole
batch each) changes the losses.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.multi_worker import (
    PROGRAM,
    assert_same_training,
    free_ports,
    make_inputs,
    read_results,
)
from tests.support.training import REPO, subprocess_env

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> tuple[Path, Path]:
    return make_inputs(tmp_path_factory.mktemp("multi_worker"))


def _worker_environments(count: int) -> list[dict[str, str]]:
    """One environment per worker on localhost, each with its TF_CONFIG task."""
    cluster = {"worker": [f"127.0.0.1:{port}" for port in free_ports(count)]}
    return [{**subprocess_env(), "TF_CONFIG": json.dumps(
        {"cluster": cluster, "task": {"type": "worker", "index": index}})}
        for index in range(count)]


def _run(mode: str, inputs: tuple[Path, Path], result_dir: Path,
         env: dict[str, str]) -> subprocess.Popen:
    result_dir.mkdir(exist_ok=True)
    return subprocess.Popen([sys.executable, "-c", PROGRAM, mode, *map(str, inputs),
                             str(result_dir)],
                            cwd=str(REPO), env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def test_two_workers_train_like_one_worker_with_two_replicas(inputs, tmp_path):
    reference = _run("mirrored", inputs, tmp_path / "reference", subprocess_env())
    _, err = reference.communicate(timeout=300)
    assert reference.returncode == 0, err[-3000:]
    [expected] = read_results(tmp_path / "reference")
    assert expected["replicas"] == 2

    workers = [_run("multi_worker", inputs, tmp_path / "workers", env)
               for env in _worker_environments(2)]
    for worker in workers:
        _, err = worker.communicate(timeout=300)
        assert worker.returncode == 0, err[-3000:]
    results = read_results(tmp_path / "workers")

    assert sorted(r["chief"] for r in results) == [False, True]
    assert_same_training(results, expected)


def test_multi_worker_outside_a_cluster_is_a_clear_error():
    env = {k: v for k, v in subprocess_env().items()
           if k not in ("TF_CONFIG",) and not k.startswith("SLURM_")}
    code = ("from odflow.train.strategy import make_strategy\n"
            "from odflow.utils.cli import run_cli\n"
            "raise SystemExit(run_cli(lambda argv: make_strategy('multi_worker')))")
    result = subprocess.run([sys.executable, "-c", code], cwd=str(REPO), env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert "TF_CONFIG" in result.stderr and "srun" in result.stderr
    assert "Traceback" not in result.stderr


def _model_main_workers(tmp_path: Path, config: Path, model_dir: Path, *extra: str,
                        envs: list[dict[str, str]] | None = None) -> list[subprocess.Popen]:
    """``model_main.py`` as two workers on localhost, each with a TMPDIR of its own."""
    from tests.support.training import MODEL_MAIN

    workers = []
    for index, env in enumerate(envs or _worker_environments(2)):
        env["TMPDIR"] = str(tmp_path / f"tmp{index}")
        Path(env["TMPDIR"]).mkdir(exist_ok=True)
        workers.append(subprocess.Popen(
            [sys.executable, str(MODEL_MAIN), "--model_dir", str(model_dir),
             "--pipeline_config_path", str(config), "--strategy", "multi_worker",
             "--seed", "1", "--log_every", "1", *extra],
            cwd=str(REPO), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    return workers


def test_a_signal_to_one_worker_stops_both_at_the_same_step_and_the_rerun_resumes(tmp_path):
    """SIGTERM reaches one worker (the non-chief): both must stop after the same step and
    save together (a worker stopping alone would leave the other hanging in a collective);
    rerun, the workers resume from that checkpoint and evaluate at the end (the chief alone,
    on a copy loaded from the checkpoint, which needs no collective)."""
    import signal
    import time

    from tests.support.tiny_training import latest_step
    from tests.support.training import write_config

    config = write_config(tmp_path, batch_size=2, num_steps=1000, augment=False, num_eval=2)
    model_dir = tmp_path / "ckpt"
    workers = _model_main_workers(tmp_path, config, model_dir, "--eval_every", "0",
                                  "--checkpoint_every_steps", "2")
    deadline = time.monotonic() + 400
    while not (model_dir / "checkpoint").exists() or (latest_step(model_dir) or 0) < 2:
        assert time.monotonic() < deadline, "no checkpoint 2"
        assert all(w.poll() is None for w in workers), workers[0].communicate()[0][-3000:]
        time.sleep(0.1)
    workers[1].send_signal(signal.SIGTERM)
    outputs = [worker.communicate(timeout=300)[0] for worker in workers]
    assert [w.returncode for w in workers] == [128 + signal.SIGTERM] * 2, outputs[0][-3000:]
    stopped = latest_step(model_dir)
    assert 2 <= stopped < 1000
    # Both saved the same step: the chief in model_dir, the other one in its scratch folder
    # (removed at exit); the chief's log names the step it stopped at.
    assert f"model.ckpt-{stopped}" in outputs[0]
    assert not (model_dir / "eval_0").exists()

    resumed = _model_main_workers(tmp_path, config, model_dir, "--eval_every", "0",
                                  "--num_train_steps", str(stopped + 2),
                                  "--metrics_json", str(tmp_path / "metrics.json"))
    outputs = [worker.communicate(timeout=400)[0] for worker in resumed]
    assert [w.returncode for w in resumed] == [0, 0], outputs[0][-3000:] + outputs[1][-3000:]
    assert f"at step {stopped}" in outputs[0]
    assert latest_step(model_dir) == stopped + 2
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["global_step"] == stopped + 2
    assert metrics["num_images"] == 2


def test_model_main_with_two_workers_writes_from_the_chief_only(tmp_path):
    """`model_main.py --strategy multi_worker`: both workers finish, one set of checkpoints."""
    from tests.support.training import MODEL_MAIN, write_config

    config = write_config(tmp_path, batch_size=2, num_steps=4, augment=False, with_eval=False)
    model_dir = tmp_path / "ckpt"
    workers = []
    for index, env in enumerate(_worker_environments(2)):
        env["TMPDIR"] = str(tmp_path / f"tmp{index}")
        Path(env["TMPDIR"]).mkdir()
        workers.append(subprocess.Popen(
            [sys.executable, str(MODEL_MAIN), "--model_dir", str(model_dir),
             "--pipeline_config_path", str(config), "--strategy", "multi_worker",
             "--eval_every", "-1", "--checkpoint_every_steps", "2", "--seed", "1",
             "--log_every", "1"],
            cwd=str(REPO), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    outputs = []
    for worker in workers:
        out, _ = worker.communicate(timeout=400)
        outputs.append(out)
        assert worker.returncode == 0, out[-3000:]
    assert "worker 0 of 2 workers" in outputs[0] and "worker 1 of 2 workers" in outputs[1]
    assert (model_dir / "model.ckpt-4.index").is_file()
    assert (model_dir / "checkpoint").read_text().count("model.ckpt-4") >= 1
    # The second worker saved into a scratch folder of its own and removed it.
    assert list((tmp_path / "tmp1").iterdir()) == []
    assert not (model_dir / ".train.lock").exists()
