#!/usr/bin/env python3
"""Inference speed of the exported frozen graph against the bare model, in one process.

Baseline: the model's ``preprocess -> predict -> postprocess`` as one ``tf.function`` (what
odflow's own evaluation runs).  Candidate: ``frozen_inference_graph.pb`` as the tutorial's client
runs it (``tf.import_graph_def`` + ``tf.compat.v1.Session``, fed ``image_tensor:0``).  Both see
the same fixed 300x300 uint8 image at batch 1 and return all seven outputs.  Calls alternate
between the two and each is timed alone, so that load from other processes hits both alike;
images/s is one over the median time per image.  Goal: ratio >= 0.9.

Beside it the roofline figure (issue 20): the model's forward FLOPs per image (TF's cost model,
``benchmarks/roofline.py``) times the frozen graph's images/s, over a float32 matmul's GFLOP/s
measured in the same process every ``--iterations / 5`` images (goal >= 40 % for the tutorial's
model at batch 1).

    python benchmarks/inference.py [--iterations 100 --depth_multiplier 1.0]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np
import tensorflow as tf
from roofline import forward_flops, matmul_rate

from odflow import config as config_lib
from odflow.export.frozen_graph import freeze
from odflow.export.signature import OUTPUT_NAMES
from odflow.model import builder

CONFIG = (Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "reference"
          / "sample_configs" / "ssd_mobilenet_v1_coco.config")


def build_model(depth_multiplier: float, size: int):
    """The seed's detector (one class, 300x300) with random but non-degenerate weights."""
    cfg = config_lib.load(CONFIG)
    cfg.model.ssd.num_classes = 1
    cfg.model.ssd.feature_extractor.depth_multiplier = depth_multiplier
    cfg.model.ssd.image_resizer.fixed_shape_resizer.height = size
    cfg.model.ssd.image_resizer.fixed_shape_resizer.width = size
    model = builder.build(cfg.model, is_training=False)
    rng = np.random.default_rng(0)
    for name, variable in model.named_variables().items():
        shape = [int(d) for d in variable.shape]
        if name.endswith("moving_variance"):
            value = rng.uniform(0.5, 1.5, shape)
        else:
            value = rng.normal(0.0, 0.1, shape)
        variable.assign(value.astype(np.float32))
    return model


def bare_model_runner(model, image: np.ndarray) -> Callable[[], None]:
    @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.uint8)])
    def forward(images):
        preprocessed, shapes = model.preprocess(tf.cast(images, tf.float32))
        detections = model.postprocess(model.predict(preprocessed, training=False), shapes)
        return {name: detections[name] for name in OUTPUT_NAMES}

    tensor = tf.constant(image)

    def run() -> None:
        outputs = forward(tensor)
        for value in outputs.values():
            value.numpy()  # results on the host, as the session returns them

    return run


def frozen_graph_runner(model, image: np.ndarray) -> tuple[Callable[[], None], tf.compat.v1.Session]:
    graph_def = tf.compat.v1.GraphDef()
    graph_def.ParseFromString(freeze(model, "image_tensor").SerializeToString())
    graph = tf.Graph()
    with graph.as_default():
        tf.import_graph_def(graph_def, name="")
    session = tf.compat.v1.Session(graph=graph)
    fetches = [f"{name}:0" for name in OUTPUT_NAMES]

    def run() -> None:
        session.run(fetches, feed_dict={"image_tensor:0": image})

    return run, session


def seconds(run: Callable[[], None]) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--iterations", type=int, default=100, help="images per runner")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--depth_multiplier", type=float, default=1.0)
    parser.add_argument("--size", type=int, default=300, help="fixed_shape_resizer size")
    args = parser.parse_args()

    model = build_model(args.depth_multiplier, args.size)
    image = np.random.default_rng(1).integers(0, 256, [1, 300, 300, 3], dtype=np.uint8)
    bare = bare_model_runner(model, image)
    frozen, session = frozen_graph_runner(model, image)
    for _ in range(args.warmup):
        bare()
        frozen()
    times: dict[str, list[float]] = {"bare model (tf.function)": [],
                                     "frozen graph (Session)": []}
    rates = []
    for index in range(args.iterations):
        if index % max(1, args.iterations // 5) == 0:
            rates.append(matmul_rate())
        times["bare model (tf.function)"].append(seconds(bare))
        times["frozen graph (Session)"].append(seconds(frozen))
    session.close()

    print(f"batch 1, 300x300 uint8, depth_multiplier {args.depth_multiplier}, "
          f"resizer {args.size}, {args.iterations} images each, alternating, "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    rate = {}
    for name, values in times.items():
        rate[name] = 1.0 / statistics.median(values)
        quartiles = statistics.quantiles(values, n=4)
        print(f"  {name:26s} {rate[name]:6.1f} images/s  (median {1000 / rate[name]:.1f} ms, "
              f"quartiles {1000 * quartiles[0]:.1f}-{1000 * quartiles[2]:.1f} ms)")
    ratio = rate["frozen graph (Session)"] / rate["bare model (tf.function)"]
    print(f"  ratio frozen / bare: {ratio:.3f} (goal >= 0.9)")
    flops = forward_flops(model, args.size, args.size)
    matmul = statistics.median(rates)
    achieved = rate["frozen graph (Session)"] * flops / 1e9
    print(f"  roofline: {flops / 1e9:.2f} GFLOP per image (cost model) x "
          f"{rate['frozen graph (Session)']:.1f} images/s = {achieved:.1f} GFLOP/s; float32 "
          f"matmul {matmul:.0f} GFLOP/s (median of {len(rates)}): {achieved / matmul:.0%} "
          "(goal >= 40 %)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
