"""Images/s of ``odflow.inputs.build_dataset`` against bare record decoding, in one process.

The tutorial's training input: 640x480 JPEGs -> random_horizontal_flip + ssd_random_crop ->
300x300 -> batches of 24.  The baseline is the cheapest possible reader of the same records
(parallel parse + JPEG decode, nothing else), so the ratio says what augmenting, resizing,
padding and batching cost on top of decoding.  The records are generated (smooth gradients plus
noise, so the JPEGs have realistic sizes) in a temporary directory.

    python benchmarks/input_pipeline.py [--images 96] [--batches 20] [--repeats 3]
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
import tensorflow as tf
from google.protobuf import text_format
from PIL import Image

from odflow.data import records
from odflow.data.example import ImageAnnotation, encode_example
from odflow.inputs import build_augmenter, build_dataset
from odflow.inputs.resize import FixedShapeResizer
from odflow.inputs.sample import Sample
from odflow.protos import pipeline_pb2

BATCH = 24
MODEL = """ssd { num_classes: 1 image_resizer { fixed_shape_resizer { height: 300 width: 300 } } }"""
TUTORIAL_AUGMENTATIONS = ("random_horizontal_flip {}", "ssd_random_crop {}")


def write_records(path: Path, count: int, height: int = 480, width: int = 640) -> None:
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:height, 0:width]
    with tf.io.TFRecordWriter(str(path)) as writer:
        for i in range(count):
            base = np.stack([(yy * (i + 1)) % 256, (xx * 2 + i) % 256, (yy + xx) % 256], -1)
            pixels = np.clip(base + rng.normal(0, 12, base.shape), 0, 255).astype(np.uint8)
            buffer = io.BytesIO()
            Image.fromarray(pixels).save(buffer, "JPEG", quality=90)
            n = int(rng.integers(1, 12))
            corners = np.sort(rng.uniform(0, 1, (n, 2, 2)), axis=1)
            boxes = np.stack([corners[:, 0, 0], corners[:, 0, 1],
                              corners[:, 1, 0], corners[:, 1, 1]], 1)
            writer.write(encode_example(ImageAnnotation(
                buffer.getvalue(), "jpeg", f"{i}.jpg", str(i), height, width, boxes,
                ["face"] * n, [1] * n)))


def images_per_second(dataset: tf.data.Dataset, batches: int, batch_size: int) -> float:
    iterator = iter(dataset)
    for _ in range(2):  # warm-up: tracing, the first buffers, autotuning
        next(iterator)
    start = time.perf_counter()
    for _ in range(batches):
        next(iterator)
    return batches * batch_size / (time.perf_counter() - start)


def decode_only(path: Path) -> tf.data.Dataset:
    dataset = tf.data.TFRecordDataset(str(path)).repeat()
    dataset = dataset.map(lambda s: records.parse_example_tensors(s)["image"],
                          num_parallel_calls=tf.data.AUTOTUNE)
    return dataset.batch(BATCH).prefetch(tf.data.AUTOTUNE)  # all images here are 640x480


def pipeline(path: Path, augmentations: Sequence[str]) -> tf.data.Dataset:
    reader = text_format.Parse(f'tf_record_input_reader {{ input_path: "{path}" }} '
                               "shuffle_buffer_size: 64", pipeline_pb2.InputReader())
    steps = [text_format.Parse(t, pipeline_pb2.PreprocessingStep()) for t in augmentations]
    return build_dataset(reader, model_config=text_format.Parse(MODEL,
                                                                pipeline_pb2.DetectionModel()),
                         augmentations=steps, batch_size=BATCH, is_training=True, seed=0)


def per_image_milliseconds(path: Path, calls: int = 100, repeats: int = 3) -> dict[str, float]:
    """Single-thread cost of each stage on one image (a tf.function per variant, best of N).

    Throughput under the other processes' load is noisy; this isolates what the map costs.
    """
    serialized = [r.numpy() for r in tf.data.TFRecordDataset(str(path)).take(20)]
    steps = [text_format.Parse(t, pipeline_pb2.PreprocessingStep())
             for t in TUTORIAL_AUGMENTATIONS]
    augment = build_augmenter(steps)
    resize = FixedShapeResizer(300, 300)

    def decoded(s):
        example = records.parse_example_tensors(s)
        return Sample(example["image"], example["groundtruth_boxes"],
                      example["groundtruth_classes"])

    variants = {
        "decode": lambda s, seed: decoded(s).image,
        "decode + resize": lambda s, seed: resize(decoded(s).image)[0],
        "decode + flip + ssd_random_crop + resize":
            lambda s, seed: resize(augment(decoded(s), seed).image)[0],
    }
    best: dict[str, float] = {}
    for _ in range(repeats):
        for name, function in variants.items():
            function = tf.function(function)
            function(tf.constant(serialized[0]), tf.constant([0, 0], tf.int64))
            start = time.perf_counter()
            for i in range(calls):
                function(tf.constant(serialized[i % len(serialized)]),
                         tf.constant([i, 0], tf.int64))
            elapsed = (time.perf_counter() - start) * 1000 / calls
            best[name] = min(best.get(name, float("inf")), elapsed)
    return best


def backbone_step_images_per_second(steps: int = 3) -> float:
    """Training speed of a bare MobileNet v1 (Keras) at 300x300, batch 24: a lower bound on the
    cost of the real SSD step, for scale (the pipeline must stay far faster than this)."""
    model = tf.keras.applications.MobileNet(input_shape=(300, 300, 3), include_top=False,
                                            weights=None)
    optimizer = tf.keras.optimizers.RMSprop(0.004)
    images = tf.random.uniform([BATCH, 300, 300, 3])

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(model(images, training=True)))
        optimizer.apply_gradients(zip(tape.gradient(loss, model.trainable_variables),
                                      model.trainable_variables))

    step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return steps * BATCH / (time.perf_counter() - start)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=96, help="distinct images in the record")
    parser.add_argument("--batches", type=int, default=20, help="timed batches of 24 per run")
    parser.add_argument("--repeats", type=int, default=3, help="runs per variant (best kept)")
    parser.add_argument("--model-step", action="store_true",
                        help="also time a bare MobileNet v1 training step, for scale")
    args = parser.parse_args(argv)
    print(f"TensorFlow {tf.__version__}, {os.cpu_count()} CPUs, "
          f"{args.batches * BATCH} images per run, best of {args.repeats}")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.record"
        write_records(path, args.images)
        variants = {
            "decode only (baseline)": (lambda: decode_only(path), BATCH, args.batches),
            "build_dataset, no augmentation": (lambda: pipeline(path, ()), BATCH, args.batches),
            "build_dataset, flip + ssd_random_crop": (
                lambda: pipeline(path, TUTORIAL_AUGMENTATIONS), BATCH, args.batches),
        }
        stages = per_image_milliseconds(path)
        results = {}
        for _ in range(args.repeats):  # interleaved, so background load hits all variants
            for name, (make, batch_size, batches) in variants.items():
                speed = images_per_second(make(), batches, batch_size)
                results[name] = max(results.get(name, 0.0), speed)
    baseline = results["decode only (baseline)"]
    print("| variant | images/s | vs decode only |\n|---|---:|---:|")
    for name, speed in results.items():
        print(f"| {name} | {speed:.0f} | {speed / baseline:.2f} |")
    print("\n| one image, one thread | ms |\n|---|---:|")
    for name, ms in stages.items():
        print(f"| {name} | {ms:.2f} |")
    if args.model_step:
        print(f"MobileNet v1 training step alone (300x300, batch {BATCH}): "
              f"{backbone_step_images_per_second():.1f} images/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
