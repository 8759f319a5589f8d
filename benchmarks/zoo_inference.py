#!/usr/bin/env python3
"""Frozen-graph inference speed of each TF1 zoo SSD model odflow builds, at its zoo input size.

For every zoo folder in ``tests/fixtures/reference/model_zoo/`` whose
``feature_extractor.type`` the model builder registers (``FEATURE_EXTRACTORS``), the model is
built from the zoo's own ``pipeline.config`` (90 classes, its fixed_shape_resizer size) or,
for a zoo model without a folder there, from the API's sample config it was trained from
(``SAMPLE_CONFIGS``; their score threshold 1e-8 raised to the zoo tarballs' 0.3, as the
zoo's exporter shipped them), given random weights, exported with ``odflow.export.frozen_graph.freeze`` and run as the
tutorial's client runs ``frozen_inference_graph.pb`` (``tf.import_graph_def`` +
``tf.compat.v1.Session`` fed ``image_tensor:0``), batch 1.  The image is 600x600 uint8, as in
the zoo's own timing ("per 600x600 image including pre/post-processing"); the graph resizes
it to the model's size.

No zoo weights are used (none are fetched): batch-norm statistics are kept near identity, the
class predictors' biases at -4.6 (score 0.01) and their weights small, so that, as with a trained detector on an
ordinary image, few boxes pass the configs' 0.3 score threshold and NMS does not dominate.

The models' calls alternate round by round, each timed alone, so other processes' load hits
all alike; img/s = 1 / median time.  The ratio column divides by ssd_mobilenet_v1 (the
tutorial's model, same process), beside the same ratio of the zoo's GPU milliseconds:
absolute CPU figures depend on the machine and its load, ratios much less.

    python benchmarks/zoo_inference.py [--iterations 30] [--only ssd_inception_v2_coco_2018_01_28]
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

import numpy as np
import tensorflow as tf

from odflow import config as config_lib
from odflow.export.frozen_graph import freeze
from odflow.export.signature import OUTPUT_NAMES
from odflow.model import builder

FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "reference" / "model_zoo"
SAMPLES = FIXTURES.parent / "sample_configs"
BASELINE = "ssd_mobilenet_v1_coco_2018_01_28"
# Zoo models with no folder in the fixtures: the API's sample config they were trained from.
SAMPLE_CONFIGS = {
    "ssd_resnet50_v1_fpn_shared_box_predictor_640x640_coco14_sync_2018_07_03":
        SAMPLES / "ssd_resnet50_v1_fpn_shared_box_predictor_640x640_coco14_sync.config",
    "ssd_mobilenet_v1_ppn_shared_box_predictor_300x300_coco14_sync_2018_07_03":
        SAMPLES / "ssd_mobilenet_v1_ppn_shared_box_predictor_300x300_coco14_sync.config",
}
# The zoo's own figures (tf1_detection_zoo.md at tensorflow/models@15762ae: "Speed (ms)" per
# 600x600 image on a GTX TITAN X, or "Pixel 1 latency (ms)" for the mobile models; COCO mAP).
ZOO_DOC: dict[str, tuple[str, float, float]] = {
    "ssd_mobilenet_v1_coco_2018_01_28": ("GPU", 30, 21),
    "ssd_mobilenet_v2_coco_2018_03_29": ("GPU", 31, 22),
    "ssdlite_mobilenet_v2_coco_2018_05_09": ("GPU", 27, 22),
    "ssd_inception_v2_coco_2018_01_28": ("GPU", 42, 24),
    "ssd_mobilenet_v1_fpn_shared_box_predictor_640x640_coco14_sync_2018_07_03": ("GPU", 56, 32),
    "ssd_resnet50_v1_fpn_shared_box_predictor_640x640_coco14_sync_2018_07_03": ("GPU", 76, 35),
    "ssd_mobilenet_v1_ppn_shared_box_predictor_300x300_coco14_sync_2018_07_03": ("GPU", 26, 20),
    "ssd_mobilenet_v1_quantized_300x300_coco14_sync_2018_07_18": ("GPU", 29, 18),
    "ssd_mobilenet_v2_quantized_300x300_coco_2019_01_03": ("GPU", 29, 22),
    "ssd_mobilenet_v3_large_coco_2020_01_14": ("Pixel 1", 119, 22.6),
    "ssd_mobilenet_v3_small_coco_2020_01_14": ("Pixel 1", 43, 15.4),
}


def zoo_models(only: list[str] | None) -> dict[str, Path]:
    """Zoo folders (with a pipeline.config in the fixtures) whose type odflow builds."""
    found = {}
    candidates = {path.parent.name: path for path in FIXTURES.glob("*/pipeline.config")}
    for folder, path in SAMPLE_CONFIGS.items():
        if path.exists():
            candidates.setdefault(folder, path)
    for folder, config_path in sorted(candidates.items()):
        if only and folder not in only and folder != BASELINE:
            continue
        fe_type = config_lib.load(config_path).model.ssd.feature_extractor.type
        if fe_type in builder.FEATURE_EXTRACTORS:
            found[folder] = config_path
        else:
            print(f"skipped {folder}: feature_extractor.type {fe_type!r} not registered")
    return found


def build_model(config_path: Path):
    model_config = config_lib.load(config_path).model
    if config_path.parent == SAMPLES:
        nms = model_config.ssd.post_processing.batch_non_max_suppression
        nms.score_threshold = max(nms.score_threshold, 0.3)
    model = builder.build(model_config, is_training=False)
    rng = np.random.default_rng(0)
    for name, variable in model.named_variables().items():
        shape = [int(d) for d in variable.shape]
        if name.endswith("moving_variance"):
            value = rng.uniform(0.5, 1.5, shape)
        elif name.endswith("moving_mean") or "BatchNorm/beta" in name:
            value = np.zeros(shape)
        elif "BatchNorm/gamma" in name:
            value = np.ones(shape)
        elif "ClassPredictor" in name and name.endswith("biases"):
            value = np.full(shape, -4.6)
        else:
            # fan-in scaled, so activations stay in range through the depth of the network
            fan_in = int(np.prod(shape[:-1])) if len(shape) > 1 else 1
            value = rng.normal(0.0, 1.0 / np.sqrt(max(fan_in, 1)), shape)
            if "ClassPredictor" in name:  # deep residual nets grow activations: keep the
                value *= 0.01             # scores near the biases' 0.01 whatever the input
        variable.assign(value.astype(np.float32))
    return model, model_config.ssd.image_resizer.fixed_shape_resizer


def frozen_graph_runner(model, image: np.ndarray
                        ) -> tuple[Callable[[], None], tf.compat.v1.Session, int]:
    graph_def = freeze(model, "image_tensor")
    graph = tf.Graph()
    with graph.as_default():
        tf.import_graph_def(graph_def, name="")
    session = tf.compat.v1.Session(graph=graph)
    fetches = [f"{name}:0" for name in OUTPUT_NAMES]
    detections = session.run(fetches, feed_dict={"image_tensor:0": image})
    num = int(detections[OUTPUT_NAMES.index("num_detections")][0])

    def run() -> None:
        session.run(fetches, feed_dict={"image_tensor:0": image})

    return run, session, num


def seconds(run: Callable[[], None]) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--iterations", type=int, default=30, help="images per model")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--only", nargs="*", help="zoo folders to measure (plus the baseline)")
    args = parser.parse_args()

    image = np.random.default_rng(1).integers(0, 256, [1, 600, 600, 3], dtype=np.uint8)
    runners: dict[str, Callable[[], None]] = {}
    sizes, detections, sessions = {}, {}, []
    for folder, config_path in zoo_models(args.only).items():
        model, resizer = build_model(config_path)
        run, session, num = frozen_graph_runner(model, image)
        runners[folder], sizes[folder], detections[folder] = run, resizer, num
        sessions.append(session)
        del model
    for _ in range(args.warmup):
        for run in runners.values():
            run()
    times: dict[str, list[float]] = {folder: [] for folder in runners}
    for _ in range(args.iterations):
        for folder, run in runners.items():
            times[folder].append(seconds(run))
    for session in sessions:
        session.close()

    print(f"frozen graph, batch 1, 600x600 uint8 input, {args.iterations} images per model "
          f"(alternating), {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    rate = {folder: 1.0 / statistics.median(values) for folder, values in times.items()}
    base_rate = rate.get(BASELINE)
    print("| zoo model | input | CPU img/s | ms | x ssd_mobilenet_v1 time | zoo ms | zoo x "
          "ssd_mobilenet_v1 | detections |")
    print("|---|---|---|---|---|---|---|---|")
    for folder in runners:
        where, zoo_ms, _ = ZOO_DOC.get(folder, ("?", float("nan"), float("nan")))
        relative = base_rate / rate[folder] if base_rate else float("nan")
        zoo_relative = zoo_ms / ZOO_DOC[BASELINE][1] if where == "GPU" else float("nan")
        print(f"| {folder} | {sizes[folder].height}x{sizes[folder].width} | {rate[folder]:.1f} "
              f"| {1000 / rate[folder]:.0f} | {relative:.2f} | {zoo_ms:g} ({where}) "
              f"| {zoo_relative:.2f} | {detections[folder]} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
