"""MultiWorkerMirroredStrategy: two worker processes on localhost train like one worker.

The reference is one process with two replicas (two logical CPUs, ``MirroredStrategy``) on
the same global batch of four distinct images: per-replica batch-norm statistics then cover
the same two images in both runs, so losses and weights must agree to float precision.  A
worker that got the wrong slice of the global batch (both workers the same half, or the whole
batch each) changes the losses.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.support.training import REPO, make_config, subprocess_env

pytestmark = pytest.mark.slow

STEPS = 3
PROGRAM = r"""
import json, os, sys
from pathlib import Path
import numpy as np
mode, config_path, batch_path = sys.argv[1:4]
import tensorflow as tf
from odflow.train.strategy import make_strategy
if mode == "mirrored":
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
placement = make_strategy(mode)
from odflow import config as config_lib
from odflow.model import builder
from odflow.train.state import TrainingState
from odflow.train.step import build_train_step
cfg = config_lib.load(config_path)
strategy = placement.strategy
batch = {k: tf.constant(v) for k, v in np.load(batch_path).items()}
tf.keras.utils.set_random_seed(1)
with strategy.scope():
    state = TrainingState(builder.build(cfg.model, is_training=True),
                          cfg.train_config.optimizer, cfg.train_config)
step = build_train_step(state, strategy)
data = tf.data.Dataset.from_tensors(batch).repeat()
options = tf.data.Options()
options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
batches = iter(strategy.experimental_distribute_dataset(data.with_options(options)))
losses = [{k: float(v) for k, v in step(next(batches))[0].items()} for _ in range(%d)]
weights = {k: v.numpy().tolist() for k, v in state.named_tensors().items()
           if k.startswith("BoxPredictor_0/")}
print("RESULT" + json.dumps({"losses": losses, "weights": weights, "chief": placement.is_chief,
                             "replicas": strategy.num_replicas_in_sync}))
""" % STEPS


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def _result(stdout: str) -> dict:
    line = next(line for line in stdout.splitlines() if line.startswith("RESULT"))
    return json.loads(line[len("RESULT"):])


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> tuple[Path, Path]:
    from odflow import config as config_lib
    from odflow.inputs import build_dataset

    tmp = tmp_path_factory.mktemp("multi_worker")
    cfg = make_config(tmp, batch_size=4, augment=False, num_train=6, with_eval=False)
    config_path = tmp / "pipeline.config"
    config_lib.save(cfg, config_path)
    # Four distinct training examples (the repeated, shuffled stream can repeat one).
    examples = {}
    for example in build_dataset(cfg.train_input_reader, model_config=cfg.model,
                                 batch_size=1, is_training=True, seed=0):
        examples.setdefault(example["source_id"].numpy()[0], example)
        if len(examples) == 4:
            break
    batch = {key: np.concatenate([e[key].numpy() for e in examples.values()])
             for key in next(iter(examples.values())) if key != "source_id"}
    batch_path = tmp / "batch.npz"
    np.savez(batch_path, **batch)
    return config_path, batch_path


def _run(mode: str, inputs: tuple[Path, Path], env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", PROGRAM, mode, *map(str, inputs)],
                            cwd=str(REPO), env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def test_two_workers_train_like_one_worker_with_two_replicas(inputs):
    reference = _run("mirrored", inputs, subprocess_env())
    out, err = reference.communicate(timeout=300)
    assert reference.returncode == 0, err[-3000:]
    expected = _result(out)
    assert expected["replicas"] == 2

    ports = _free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{port}" for port in ports]}
    workers = []
    for index in range(2):
        env = subprocess_env()
        env["TF_CONFIG"] = json.dumps({"cluster": cluster,
                                       "task": {"type": "worker", "index": index}})
        workers.append(_run("multi_worker", inputs, env))
    results = []
    for worker in workers:
        out, err = worker.communicate(timeout=300)
        assert worker.returncode == 0, err[-3000:]
        results.append(_result(out))

    assert [r["chief"] for r in results] == [True, False]
    for result in results:
        assert result["replicas"] == 2
        for got, want in zip(result["losses"], expected["losses"], strict=True):
            assert got.keys() == want.keys()
            for key in want:
                assert got[key] == pytest.approx(want[key], abs=1e-5, rel=1e-5), key
        for name, value in expected["weights"].items():
            np.testing.assert_allclose(result["weights"][name], value, atol=1e-5, err_msg=name)
    # The losses moved: the comparison is between runs that trained.
    assert expected["losses"][0]["Loss/total_loss"] != expected["losses"][-1]["Loss/total_loss"]


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
