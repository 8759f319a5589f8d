"""A tiny training setup driven through the public CLI (``scripts/model_main.py``).

Used by the resume tests, which must keep working whatever the training package does inside:
they only write a pipeline config and records, start the CLI, send it signals and read the
checkpoint files it leaves (with TensorFlow's own checkpoint reader).
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[2]
MODEL_MAIN = REPO / "scripts/model_main.py"
SAMPLE_CONFIG = REPO / "tests/fixtures/reference/sample_configs/ssd_mobilenet_v1_coco.config"


def write_records(path: Path, count: int, seed: int) -> Path:
    """``count`` 96x96 JPEGs of noise with one bright box each (class 1, 'thing')."""
    from odflow.data.example import ImageAnnotation
    from odflow.data.records import RecordWriter

    rng = np.random.default_rng(seed)
    with RecordWriter(path) as writer:
        for i in range(count):
            pixels = rng.integers(0, 80, size=(96, 96, 3), dtype=np.uint8)
            y0, x0 = rng.uniform(0.0, 0.5, 2)
            box = [y0, x0, y0 + 0.45, x0 + 0.45]
            pixels[int(box[0] * 96):int(box[2] * 96), int(box[1] * 96):int(box[3] * 96)] = 230
            buffer = io.BytesIO()
            Image.fromarray(pixels).save(buffer, format="JPEG", quality=90)
            writer.write(ImageAnnotation(
                encoded=buffer.getvalue(), image_format="jpeg", filename=f"img{i}.jpg",
                source_id=f"img{i}", height=96, width=96, boxes=np.array([box]),
                class_texts=["thing"], class_ids=[1]))
    return path


def write_config(directory: Path, *, num_train: int, num_steps: int) -> Path:
    """The zoo's SSD at depth 0.25 on 96 px, RMSProp with momentum and an EMA, no augmentation
    and no eval input; ``num_train`` records, batch 2."""
    from odflow import config as config_lib

    records = write_records(directory / "train.record", num_train, seed=1)
    label_map = directory / "label_map.pbtxt"
    label_map.write_text("item {\n  id: 1\n  name: 'thing'\n}\n")
    cfg = config_lib.load(SAMPLE_CONFIG)
    ssd = cfg.model.ssd
    ssd.num_classes = 1
    ssd.image_resizer.fixed_shape_resizer.height = 96
    ssd.image_resizer.fixed_shape_resizer.width = 96
    ssd.feature_extractor.depth_multiplier = 0.25
    ssd.feature_extractor.min_depth = 8
    train = cfg.train_config
    train.batch_size = 2
    train.num_steps = num_steps
    train.fine_tune_checkpoint = ""
    train.from_detection_checkpoint = False
    del train.data_augmentation_options[:]
    train.ClearField("optimizer")
    rms = train.optimizer.rms_prop_optimizer
    rms.learning_rate.constant_learning_rate.learning_rate = 0.004
    rms.momentum_optimizer_value = 0.9
    rms.decay = 0.9
    rms.epsilon = 1.0
    train.optimizer.use_moving_average = True
    train.optimizer.moving_average_decay = 0.9
    reader = cfg.train_input_reader
    reader.label_map_path = str(label_map)
    reader.tf_record_input_reader.ClearField("input_path")
    reader.tf_record_input_reader.input_path.append(str(records))
    reader.shuffle_buffer_size = 8
    reader.num_readers = 1
    del cfg.eval_input_reader[:]
    path = directory / "pipeline.config"
    config_lib.save(cfg, path)
    return path


def train_command(config: Path, model_dir: Path, *extra: str) -> list[str]:
    """Deterministic training, evaluation off, a checkpoint every 2 steps."""
    return [sys.executable, str(MODEL_MAIN), f"--model_dir={model_dir}",
            f"--pipeline_config_path={config}", "--seed=7", "--deterministic",
            "--eval_every=-1", "--checkpoint_every_steps=2", "--checkpoint_every_minutes=0",
            "--keep_checkpoint_max=100", *extra]


def env() -> dict[str, str]:
    variables = dict(os.environ)
    variables["PYTHONPATH"] = str(REPO) + os.pathsep + variables.get("PYTHONPATH", "")
    variables.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return variables


def run(command: list[str], timeout: float = 400) -> subprocess.CompletedProcess:
    return subprocess.run(command, env=env(), cwd=str(REPO), capture_output=True, text=True,
                          timeout=timeout, check=False)


def latest_step(model_dir: Path) -> int | None:
    """Step of the checkpoint the ``checkpoint`` state file names (TensorFlow's reader)."""
    import tensorflow as tf

    prefix = tf.train.latest_checkpoint(str(model_dir))
    return None if prefix is None else int(prefix.rsplit("-", 1)[1])


def start_and_wait_for_checkpoint(command: list[str], model_dir: Path, step: int,
                                  timeout: float = 400) -> subprocess.Popen:
    """Start training; return once a checkpoint of at least ``step`` is on disk."""
    process = subprocess.Popen(command, env=env(), cwd=str(REPO), stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"training exited ({process.returncode}) before "
                                 f"checkpoint {step}:\n{process.stderr.read()[-3000:]}")
        current = latest_step(model_dir) if (model_dir / "checkpoint").exists() else None
        if current is not None and current >= step:
            return process
        time.sleep(0.05)
    process.kill()
    raise AssertionError(f"no checkpoint {step} within {timeout} s")


def checkpoint_tensors(prefix: Path) -> dict[str, np.ndarray]:
    import tensorflow as tf

    reader = tf.train.load_checkpoint(str(prefix))
    return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()}
