"""Training images/s of the full pipeline against the bare model step, in one process.

Full pipeline: records -> decode -> random_horizontal_flip + ssd_random_crop -> 300x300 ->
batch -> the training ``tf.function`` (forward, targets, hard example mining, losses, gradients,
TF1 RMSProp, EMA) with the losses fetched every step, exactly as ``odflow.train.loop`` drives it.
Baseline: the same ``tf.function`` on one batch already in memory.  The ratio says how much of
the model's speed the input pipeline and the loop's per-step work cost (goal: >= 0.9).

Blocks of steps alternate between the two so that load from other processes on the machine
hits both alike; the reported figures are medians over blocks.

    python benchmarks/train_pipeline.py [--batch_size 8] [--depth_multiplier 1.0] [--blocks 5]
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import tensorflow as tf
from PIL import Image

from odflow import config as config_lib
from odflow.data.example import ImageAnnotation
from odflow.data.records import RecordWriter
from odflow.inputs import build_dataset
from odflow.model import builder
from odflow.train.state import TrainingState
from odflow.train.step import build_train_step

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "tests/fixtures/reference/sample_configs/ssd_mobilenet_v1_coco.config"


def make_records(path: Path, count: int, seed: int = 0) -> None:
    """640x480 JPEGs (gradients + noise, realistic sizes) with 1-6 boxes each."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:480, 0:640]
    with RecordWriter(path) as writer:
        for i in range(count):
            base = (np.stack([yy * 0.4, xx * 0.3, (yy + xx) * 0.2], -1) + rng.integers(0, 60))
            pixels = np.clip(base + rng.normal(0, 12, base.shape), 0, 255).astype(np.uint8)
            n = int(rng.integers(1, 7))
            size = rng.uniform(0.05, 0.4, (n, 2))
            top = rng.uniform(0, 1, (n, 2)) * (1 - size)
            boxes = np.concatenate([top, top + size], axis=1)[:, [0, 1, 2, 3]]
            buffer = io.BytesIO()
            Image.fromarray(pixels).save(buffer, format="JPEG", quality=90)
            writer.write(ImageAnnotation(
                encoded=buffer.getvalue(), image_format="jpeg", filename=f"{i}.jpg",
                source_id=str(i), height=480, width=640, boxes=boxes,
                class_texts=["face"] * n, class_ids=[1] * n))


def make_config(record: Path, batch_size: int, depth_multiplier: float):
    cfg = config_lib.load(SAMPLE)  # the tutorial's: 300x300, flip + ssd_random_crop, RMSProp
    cfg.model.ssd.num_classes = 1
    cfg.model.ssd.feature_extractor.depth_multiplier = depth_multiplier
    cfg.train_config.batch_size = batch_size
    cfg.train_config.fine_tune_checkpoint = ""
    cfg.train_config.optimizer.use_moving_average = True
    reader = cfg.train_input_reader
    reader.tf_record_input_reader.ClearField("input_path")
    reader.tf_record_input_reader.input_path.append(str(record))
    return cfg


def run_block(train_step, next_batch, steps: int) -> tuple[float, float]:
    """Steps per wall second and per CPU second of this process (all its threads, so the
    input pipeline's work counts), fetching the losses every step as the loop does."""
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(steps):
        losses, learning_rate, finite = train_step(next_batch())
        _ = {k: float(v) for k, v in losses.items()}, float(learning_rate), bool(finite)
    return steps / (time.perf_counter() - wall), steps / (time.process_time() - cpu)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=96)
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--depth_multiplier", type=float, default=1.0)
    parser.add_argument("--steps", type=int, default=4, help="steps per block")
    parser.add_argument("--blocks", type=int, default=5, help="blocks per variant")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        record = Path(tmp) / "train.record"
        make_records(record, args.images)
        cfg = make_config(record, args.batch_size, args.depth_multiplier)
        tf.keras.utils.set_random_seed(0)
        strategy = tf.distribute.get_strategy()
        state = TrainingState(builder.build(cfg.model, is_training=True),
                              cfg.train_config.optimizer, cfg.train_config)
        train_step = build_train_step(state, strategy)
        dataset = build_dataset(cfg.train_input_reader, model_config=cfg.model,
                                augmentations=list(cfg.train_config.data_augmentation_options),
                                batch_size=args.batch_size, is_training=True,
                                max_number_of_boxes=cfg.train_config.max_number_of_boxes,
                                seed=0)
        iterator = iter(dataset)
        fixed = next(iterator)
        run_block(train_step, lambda: fixed, 2)  # trace + warm up
        run_block(train_step, lambda: next(iterator), 2)  # fill the pipeline's buffers

        bare, full = [], []
        for _ in range(args.blocks):
            bare.append(run_block(train_step, lambda: fixed, args.steps))
            full.append(run_block(train_step, lambda: next(iterator), args.steps))

    load = os.getloadavg()[0]
    print(f"| machine | {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"TF {tf.__version__}, load average {load:.1f} at the end |")
    print(f"| setup | 300x300, depth_multiplier {args.depth_multiplier}, batch "
          f"{args.batch_size}, flip + ssd_random_crop, RMSProp + EMA, {args.blocks} blocks of "
          f"{args.steps} steps per variant |")
    for index, unit in ((0, "wall"), (1, "CPU")):
        bare_ips = statistics.median(b[index] for b in bare) * args.batch_size
        full_ips = statistics.median(f[index] for f in full) * args.batch_size
        ratios = [f[index] / b[index] for f, b in zip(full, bare, strict=True)]
        print(f"| bare step, images per {unit} second | {bare_ips:.2f} |")
        print(f"| full pipeline, images per {unit} second | {full_ips:.2f} |")
        print(f"| ratio full / bare ({unit}) | {full_ips / bare_ips:.3f} (per block: "
              f"{', '.join(f'{r:.2f}' for r in ratios)}) |")


if __name__ == "__main__":
    main()
