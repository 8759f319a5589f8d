"""Tiny generated data for the training tests: records, a label map and a small config.

Also how training tests start a fresh interpreter (``subprocess_env``, ``run_python``).

The detector is the real one at depth multiplier 0.25 on 96x96 inputs; images are noise with a
bright rectangle (the one class), so a few steps run in seconds on a CPU.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[2]
SAMPLE_CONFIG = REPO / "tests/fixtures/reference/sample_configs/ssd_mobilenet_v1_coco.config"
MODEL_MAIN = REPO / "scripts/model_main.py"


def make_records(path: Path, count: int, seed: int = 0, size: tuple[int, int] = (120, 100)
                 ) -> Path:
    """``count`` JPEG examples of ``size`` (height, width), each with one or two boxes."""
    from odflow.data.example import ImageAnnotation
    from odflow.data.records import RecordWriter

    rng = np.random.default_rng(seed)
    height, width = size
    with RecordWriter(path) as writer:
        for i in range(count):
            pixels = rng.integers(0, 80, size=(height, width, 3), dtype=np.uint8)
            boxes = []
            for _ in range(1 + i % 2):
                h, w = rng.uniform(0.3, 0.6), rng.uniform(0.3, 0.6)
                y0, x0 = rng.uniform(0, 1 - h), rng.uniform(0, 1 - w)
                box = [y0, x0, y0 + h, x0 + w]
                r0, c0 = int(box[0] * height), int(box[1] * width)
                r1, c1 = int(box[2] * height), int(box[3] * width)
                pixels[r0:r1, c0:c1] = 230
                boxes.append(box)
            buffer = io.BytesIO()
            Image.fromarray(pixels).save(buffer, format="JPEG", quality=90)
            writer.write(ImageAnnotation(
                encoded=buffer.getvalue(), image_format="jpeg", filename=f"img{i}.jpg",
                source_id=f"img{i}", height=height, width=width, boxes=np.array(boxes),
                class_texts=["thing"] * len(boxes), class_ids=[1] * len(boxes)))
    return path


def make_config(tmp: Path, *, num_steps: int = 4, batch_size: int = 2, size: int = 96,
                optimizer: str = "rms_prop", use_moving_average: bool = False,
                eval_use_moving_averages: bool = False, num_train: int = 6, num_eval: int = 3,
                learning_rate: float = 0.004, fine_tune_checkpoint: str = "",
                augment: bool = True, with_eval: bool = True):
    """A small SSD config over fresh records in ``tmp``; returns the config proto."""
    from odflow import config as config_lib

    train_record = tmp / "train.record"
    eval_record = tmp / "val.record"
    if not train_record.exists():
        make_records(train_record, num_train, seed=1)
    if with_eval and not eval_record.exists():
        make_records(eval_record, num_eval, seed=2, size=(90, 130))
    label_map = tmp / "label_map.pbtxt"
    label_map.write_text("item {\n  id: 1\n  name: 'thing'\n}\n")

    cfg = config_lib.load(SAMPLE_CONFIG)
    ssd = cfg.model.ssd
    ssd.num_classes = 1
    ssd.image_resizer.fixed_shape_resizer.height = size
    ssd.image_resizer.fixed_shape_resizer.width = size
    ssd.feature_extractor.depth_multiplier = 0.25
    ssd.feature_extractor.min_depth = 8
    ssd.post_processing.batch_non_max_suppression.score_threshold = 0.01
    tc = cfg.train_config
    tc.batch_size = batch_size
    tc.num_steps = num_steps
    tc.fine_tune_checkpoint = fine_tune_checkpoint
    tc.from_detection_checkpoint = bool(fine_tune_checkpoint)
    if not augment:
        del tc.data_augmentation_options[:]
    tc.ClearField("optimizer")
    if optimizer == "rms_prop":
        opt = tc.optimizer.rms_prop_optimizer
        opt.learning_rate.constant_learning_rate.learning_rate = learning_rate
        opt.momentum_optimizer_value = 0.9
        opt.decay = 0.9
        opt.epsilon = 1.0
    elif optimizer == "momentum":
        tc.optimizer.momentum_optimizer.learning_rate.constant_learning_rate.learning_rate = \
            learning_rate
    elif optimizer == "adam":
        tc.optimizer.adam_optimizer.learning_rate.constant_learning_rate.learning_rate = \
            learning_rate
    tc.optimizer.use_moving_average = use_moving_average
    reader = cfg.train_input_reader
    reader.label_map_path = str(label_map)
    reader.tf_record_input_reader.ClearField("input_path")
    reader.tf_record_input_reader.input_path.append(str(train_record))
    reader.shuffle_buffer_size = 8
    reader.num_readers = 1
    cfg.eval_config.use_moving_averages = eval_use_moving_averages
    if with_eval:
        ev = cfg.eval_input_reader[0]
        ev.label_map_path = str(label_map)
        ev.tf_record_input_reader.ClearField("input_path")
        ev.tf_record_input_reader.input_path.append(str(eval_record))
    else:
        del cfg.eval_input_reader[:]
    return cfg


def write_config(tmp: Path, name: str = "pipeline.config", **kwargs) -> Path:
    from odflow import config as config_lib

    path = tmp / name
    config_lib.save(make_config(tmp, **kwargs), path)
    return path


def train_on_fixed_batch(cfg, strategy, batch: dict, steps: int,
                         prefixes: tuple[str, ...] = ("BoxPredictor_0/",)) -> dict:
    """Train ``steps`` steps from seed 1 on ``batch`` (repeated) under ``strategy``, the global
    batch split across its replicas (DATA sharding over workers, as the training loop does).

    Returns each step's losses, the weights whose names start with ``prefixes`` (as lists),
    the step and the replica count: what the strategy-equivalence tests compare.  Runs in
    the subprocesses those tests start (devices must be set up before TensorFlow starts).
    """
    import tensorflow as tf

    from odflow.model import builder
    from odflow.train.state import TrainingState
    from odflow.train.step import build_train_step

    tf.keras.utils.set_random_seed(1)
    with strategy.scope():
        state = TrainingState(builder.build(cfg.model, is_training=True),
                              cfg.train_config.optimizer, cfg.train_config)
    step = build_train_step(state, strategy)
    data = tf.data.Dataset.from_tensors(batch).repeat()
    if strategy.num_replicas_in_sync > 1:
        options = tf.data.Options()
        options.experimental_distribute.auto_shard_policy = \
            tf.data.experimental.AutoShardPolicy.DATA
        data = strategy.experimental_distribute_dataset(data.with_options(options))
    batches = iter(data)
    losses = [{k: float(v) for k, v in step(next(batches))[0].items()} for _ in range(steps)]
    weights = {k: v.numpy().tolist() for k, v in state.named_tensors().items()
               if k.startswith(prefixes)}
    return {"losses": losses, "weights": weights, "step": int(state.step),
            "replicas": strategy.num_replicas_in_sync}


def subprocess_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return env


def run_python(code: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter (device setup must precede TF's initialisation)."""
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=subprocess_env(), timeout=timeout, cwd=str(REPO), check=False)


def python_result(code: str, timeout: float = 300) -> dict:
    """Run ``code`` in a fresh interpreter; the JSON it printed after ``RESULT`` (the run must
    succeed: its stderr's end is the failure message)."""
    result = run_python(code, timeout=timeout)
    assert result.returncode == 0, result.stderr[-3000:]
    line = next(x for x in result.stdout.splitlines() if x.startswith("RESULT"))
    return json.loads(line[len("RESULT"):])


def wait_for_log(process: subprocess.Popen, log_path: Path, text: str, timeout: float) -> None:
    """Wait until ``text`` appears in ``log_path`` while ``process`` runs.

    Fails at once (with the log) if the process exits first, and kills it after ``timeout``
    seconds, so a test that sends a signal at a known point never waits on a dead run.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if log_path.exists() and text in log_path.read_text():
            return
        if process.poll() is not None:
            raise AssertionError(f"exited early ({process.returncode}):\n"
                                 + (log_path.read_text() if log_path.exists() else ""))
        time.sleep(0.5)
    process.kill()
    raise AssertionError(f"{text!r} not logged within {timeout} s")
