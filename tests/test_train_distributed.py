"""Multi-replica training on a CPU split in two, and repeatable runs with --seed.

Both need a fresh interpreter: logical devices must be configured before TensorFlow
initialises its devices, and determinism is switched on process-wide.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from tests.support.training import MODEL_MAIN, REPO, python_result, subprocess_env, write_config

pytestmark = pytest.mark.slow

# Two replicas on a global batch [x, x, x, x] see [x, x] each; that must train exactly like one
# replica on [x, x].  (Against one replica on all four copies the batch-norm statistics differ in
# the last bits, since the Bessel correction depends on the batch size.)
MULTI_REPLICA = r"""
import json, sys
from pathlib import Path
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
sys.path.insert(0, "tests")
from tests.support.training import make_config, train_on_fixed_batch
from odflow.inputs import build_dataset

cfg = make_config(Path(sys.argv[1]), batch_size=4, augment=False)
single = next(iter(build_dataset(cfg.train_input_reader, model_config=cfg.model, batch_size=1,
                                 is_training=True, seed=0)))
out = {}
strategies = [("one", tf.distribute.get_strategy(), 2),
              ("two", tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]), 4)]
for name, strategy, copies in strategies:
    batch = {k: tf.concat([v] * copies, 0) for k, v in single.items()}
    out[name] = train_on_fixed_batch(cfg, strategy, batch, steps=2)
print("RESULT" + json.dumps(out))
"""


def test_two_replicas_train_like_one(tmp_path):
    out = python_result(MULTI_REPLICA.replace("sys.argv[1]", repr(str(tmp_path))), timeout=400)
    one, two = out["one"], out["two"]
    assert (one["replicas"], two["replicas"]) == (1, 2)
    assert one["step"] == two["step"] == 2
    for a, b in zip(one["losses"], two["losses"]):
        assert set(a) == set(b)
        for key in a:
            assert b[key] == pytest.approx(a[key], rel=1e-5, abs=1e-6), key
    assert one["losses"][0]["Loss/total_loss"] != one["losses"][1]["Loss/total_loss"]
    for name, value in one["weights"].items():
        np.testing.assert_allclose(np.array(two["weights"][name]), np.array(value),
                                   rtol=1e-5, atol=1e-6, err_msg=name)


def test_seeded_deterministic_runs_write_identical_checkpoints(tmp_path):
    config = write_config(tmp_path, num_steps=2)  # augmentations on: they are seeded too
    prefixes = []
    for run in ("a", "b"):
        model_dir = tmp_path / run
        result = subprocess.run(
            [sys.executable, str(MODEL_MAIN), f"--model_dir={model_dir}",
             f"--pipeline_config_path={config}", "--seed=7", "--deterministic",
             "--eval_every=-1", "--log_every=1"],
            env=subprocess_env(), cwd=str(REPO), capture_output=True, text=True, timeout=300, check=False)
        assert result.returncode == 0, result.stderr[-3000:]
        prefixes.append(str(model_dir / "model.ckpt-2"))
    readers = [tf.train.load_checkpoint(p) for p in prefixes]
    names = readers[0].get_variable_to_shape_map()
    assert names == readers[1].get_variable_to_shape_map()
    for name in names:
        np.testing.assert_array_equal(readers[0].get_tensor(name), readers[1].get_tensor(name),
                                      err_msg=name)



# Two DISTINCT images, one per replica.  Batch norm works per replica (as upstream), so the
# one-device twin of a 2-replica step is not one device on both images; it is the mean of one
# device on each image alone.  After ONE step of momentum SGD (first step: w - lr * g, linear in
# g) from the same initial weights, averaging the gradients equals averaging the two one-image
# results, weights and batch-norm moving averages alike (those are averaged across replicas on
# read).  A replica fed the wrong image, or both fed the same one, lands on one image's result,
# which differs from the mean far beyond the tolerance (checked too).
DISTINCT_REPLICAS = r"""
import json, sys
from pathlib import Path
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
sys.path.insert(0, "tests")
from tests.support.training import make_config, train_on_fixed_batch
from odflow.inputs import build_dataset

cfg = make_config(Path(sys.argv[1]), batch_size=2, augment=False, optimizer="momentum")
pair = next(iter(build_dataset(cfg.train_input_reader, model_config=cfg.model, batch_size=2,
                               is_training=True, seed=0)))
prefixes = ("BoxPredictor_0/", "FeatureExtractor/MobilenetV1/Conv2d_0/")
out = {}
runs = [("two", tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]), pair),
        ("image0", tf.distribute.get_strategy(), {k: v[:1] for k, v in pair.items()}),
        ("image1", tf.distribute.get_strategy(), {k: v[1:] for k, v in pair.items()})]
for name, strategy, batch in runs:
    result = train_on_fixed_batch(cfg, strategy, batch, steps=1, prefixes=prefixes)
    out[name] = {**result, "losses": result["losses"][0],
                 "source_ids": [s.decode() for s in batch["source_id"].numpy().tolist()]}
print("RESULT" + json.dumps(out))
"""


def test_two_replicas_on_distinct_images_average_like_one_device_on_each(tmp_path):
    out = python_result(DISTINCT_REPLICAS.replace("sys.argv[1]", repr(str(tmp_path))),
                        timeout=500)
    two, first, second = out["two"], out["image0"], out["image1"]
    assert two["replicas"] == 2 and two["step"] == first["step"] == second["step"] == 1
    assert first["source_ids"] != second["source_ids"]  # really two different images
    for key in ("Loss/localization_loss", "Loss/classification_loss"):
        mean = (first["losses"][key] + second["losses"][key]) / 2
        assert two["losses"][key] == pytest.approx(mean, rel=1e-5, abs=1e-6), key
        assert abs(first["losses"][key] - second["losses"][key]) > 1e-2, key
    assert any("moving_mean" in name for name in two["weights"])
    gap = 0.0
    for name, value in two["weights"].items():
        a, b = np.array(first["weights"][name]), np.array(second["weights"][name])
        np.testing.assert_allclose(np.array(value), (a + b) / 2, rtol=1e-5, atol=1e-6,
                                   err_msg=name)
        gap = max(gap, float(np.max(np.abs(a - b) / (1e-6 + 1e-5 * np.abs(a)))))
    assert gap > 100  # one image's result is far outside the tolerance of the mean


def test_cpu_replicas_train_and_a_changed_count_starts_again(tmp_path):
    """``--cpu_replicas 2`` (train.cpu_replicas) trains on two logical CPUs, records the count in
    the fingerprint, and a rerun on another count does not resume those checkpoints."""
    config = write_config(tmp_path, num_steps=2, batch_size=2)
    model_dir = tmp_path / "ckpt"

    def model_main(replicas: int) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, str(MODEL_MAIN), f"--model_dir={model_dir}",
             f"--pipeline_config_path={config}", "--seed=7", "--eval_every=-1",
             "--log_every=1", f"--cpu_replicas={replicas}"],
            env=subprocess_env(), cwd=str(REPO), capture_output=True, text=True, timeout=300,
            check=False)

    two = model_main(2)
    assert two.returncode == 0, two.stderr[-3000:]
    assert "training with MirroredStrategy on /device:CPU:0, /device:CPU:1" in two.stderr
    assert (model_dir / "model.ckpt-2.index").exists()
    assert json.loads((model_dir / "fingerprint.json").read_text())["cpu_replicas"] == 2

    one = model_main(1)
    assert one.returncode == 0, one.stderr[-3000:]
    assert "train.cpu_replicas (2 -> 1)" in one.stderr, one.stderr[-3000:]
    assert "training from step 0 to 2" in one.stderr, one.stderr[-3000:]
    assert json.loads((model_dir / "fingerprint.json").read_text())["cpu_replicas"] == 1
