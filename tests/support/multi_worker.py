"""Two-worker training checks shared by the localhost (TF_CONFIG) and SLURM tests.

``PROGRAM`` trains a few steps on a fixed global batch of four distinct images with the
strategy named on its command line and writes the losses and some weights to a JSON file of
its own in the result folder (``srun`` interleaves the tasks' stdout, so a long line printed by
two tasks at once would be cut); ``make_inputs`` writes that batch and its config.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path

import numpy as np

from tests.support.training import make_config

STEPS = 3
PROGRAM = r"""
import json, os, sys
from pathlib import Path
import numpy as np
mode, config_path, batch_path, result_dir = sys.argv[1:5]
import tensorflow as tf
from odflow.train.strategy import make_strategy
if mode == "mirrored":
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
placement = make_strategy(mode)
from odflow import config as config_lib
from tests.support.training import train_on_fixed_batch
cfg = config_lib.load(config_path)
batch = {k: tf.constant(v) for k, v in np.load(batch_path).items()}
trained = train_on_fixed_batch(cfg, placement.strategy, batch, steps=%d)
result = Path(result_dir) / f"result-{os.getpid()}.json"
result.with_suffix(".tmp").write_text(json.dumps({**trained, "chief": placement.is_chief}))
result.with_suffix(".tmp").rename(result)
""" % STEPS


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def read_results(result_dir: Path) -> list[dict]:
    """Every result file in ``result_dir`` (one per process that finished)."""
    return [json.loads(path.read_text()) for path in sorted(result_dir.glob("result-*.json"))]


def make_inputs(tmp: Path) -> tuple[Path, Path]:
    from odflow import config as config_lib
    from odflow.inputs import build_dataset

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




def assert_same_training(results: list[dict], expected: dict) -> None:
    """Each worker's losses and weights equal the reference run's."""
    import pytest

    for result in results:
        assert result["replicas"] == expected["replicas"]
        for got, want in zip(result["losses"], expected["losses"], strict=True):
            assert got.keys() == want.keys()
            for key in want:
                assert got[key] == pytest.approx(want[key], abs=1e-5, rel=1e-5), key
        for name, value in expected["weights"].items():
            np.testing.assert_allclose(result["weights"][name], value, atol=1e-5, err_msg=name)
    # The losses moved: the comparison is between runs that trained.
    assert expected["losses"][0]["Loss/total_loss"] != expected["losses"][-1]["Loss/total_loss"]
