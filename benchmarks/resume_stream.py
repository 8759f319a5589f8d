"""What resuming the training stream at a position costs, against starting it, in one process.

A resumed run builds its input with ``start`` = examples already trained on
(``odflow.inputs.build_dataset``): the finished epochs are skipped unread, the records are
counted once, and the current epoch is read up to the position without decoding.  This
times the first batch of a fresh stream (``start=0``) against the first batch of a stream
resumed in the middle of a late epoch, on generated 640x480 JPEG records (WIDER-like sizes),
with the tutorial's augmentation and batch 24.

    python benchmarks/resume_stream.py [--images 2000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
from google.protobuf import text_format
from PIL import Image

from odflow.data.example import ImageAnnotation
from odflow.data.records import RecordWriter
from odflow.inputs import build_dataset
from odflow.protos import pipeline_pb2

BATCH = 24
AUGMENT = ["random_horizontal_flip {}", "ssd_random_crop {}"]


def write_records(path: Path, count: int) -> int:
    """``count`` 640x480 JPEGs with one box each; returns the file's size in bytes."""
    rng = np.random.default_rng(0)
    gradient = np.linspace(0, 255, 640, dtype=np.float32)[None, :, None]
    with RecordWriter(path) as writer:
        for index in range(count):
            pixels = np.clip(gradient + rng.normal(0, 25, (480, 640, 3)), 0, 255)
            buffer = io.BytesIO()
            Image.fromarray(pixels.astype(np.uint8)).save(buffer, "JPEG", quality=85)
            writer.write(ImageAnnotation(buffer.getvalue(), "jpeg", f"{index}.jpg", str(index),
                                         480, 640, np.array([[0.2, 0.2, 0.6, 0.5]]), ["face"], [1]))
    return path.stat().st_size


def first_batch_seconds(path: Path, start: int) -> float:
    reader = text_format.Parse(f'tf_record_input_reader {{ input_path: "{path}" }} '
                               "shuffle_buffer_size: 2048", pipeline_pb2.InputReader())
    model = text_format.Parse("ssd { num_classes: 1 image_resizer { fixed_shape_resizer "
                              "{ height: 300 width: 300 } } }", pipeline_pb2.DetectionModel())
    steps = [text_format.Parse(t, pipeline_pb2.PreprocessingStep()) for t in AUGMENT]
    began = time.perf_counter()
    dataset = build_dataset(reader, model_config=model, augmentations=steps, batch_size=BATCH,
                            is_training=True, seed=1, start=start)
    next(iter(dataset))
    return time.perf_counter() - began


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "train.record"
        size = write_records(path, args.images)
        # Step 20,000 of batch 24: epoch 240 of 2,000 images, 0 into it, then half an epoch on.
        positions = {"fresh (start 0)": 0,
                     "resumed, epoch boundary": 240 * args.images,
                     "resumed, mid-epoch": 240 * args.images + args.images // 2}
        times = {name: [] for name in positions}
        for _ in range(args.repeats):  # interleaved, so load hits all alike
            for name, start in positions.items():
                times[name].append(first_batch_seconds(path, start))
        print(f"{args.images} images, {size / 1e6:.0f} MB of records, batch {BATCH}, "
              f"{os.cpu_count()} CPUs, best of {args.repeats}")
        print("| stream | first batch, s | vs fresh |\n|---|---:|---:|")
        fresh = min(times["fresh (start 0)"])
        for name, values in times.items():
            print(f"| {name} | {min(values):.2f} | {min(values) / fresh:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
