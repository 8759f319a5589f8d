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

from tests.support.training import REPO, subprocess_env
from tests.support.multi_worker import (
    PROGRAM,
    assert_same_training,
    free_ports,
    make_inputs,
    read_results,
)

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
