#!/usr/bin/env python3
"""Batch-1 speed and file size of each deployed format against the frozen graph, one process.

Baseline: ``frozen_inference_graph.pb`` in a ``tf.compat.v1.Session`` (the tutorial's client).
Candidates: the SavedModel's signature, ``model.tflite`` and ``model_int8.tflite`` in LiteRT's
interpreter (XNNPACK), ``model.onnx`` in ONNX Runtime (CPU).  Each runs through its
``odflow.detect`` runner on the same uint8 image, so a call includes what a client must do for
that format (TFLite: resize, normalise, quantise; all: outputs to numpy, clip, sort).  Calls go
round-robin over the runners, each timed alone, so load from other processes hits all alike;
img/s = 1 / median seconds per image.  Threads: ``--threads`` for LiteRT and ONNX Runtime; the
TF session uses its defaults (all cores).

    python benchmarks/deploy.py [--export_dir exported_model] [--iterations 100]

Without ``--export_dir`` the demo model of ``tests/fixtures/demo_model`` is exported and
converted into a temporary folder first.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from odflow import config as config_lib
from odflow.data import synthetic
from odflow.detect.runners import (
    FrozenGraphDetector,
    OnnxDetector,
    SavedModelDetector,
    TFLiteDetector,
)
from odflow.export import formats
from odflow.export.exporter import export_model

FIXTURE = REPO / "tests" / "fixtures" / "demo_model"
FILES = {"frozen_graph": "frozen_inference_graph.pb", "saved_model": "saved_model",
         "tflite": "model.tflite", "tflite_int8": "model_int8.tflite", "onnx": "model.onnx"}


def prepare(root: Path) -> Path:
    export = root / "exported_model"
    export_model(config_lib.load(FIXTURE / "pipeline.config"), str(FIXTURE / "model.ckpt"),
                 export, label_map_path=FIXTURE / "label_map.pbtxt", use_moving_averages="false")
    records = root / "train.record"
    synthetic.generate_records(records, split="train", num_images=100, seed=1,
                               label_map_path=FIXTURE / "label_map.pbtxt")
    formats.export_tflite(export, export / FILES["tflite"])
    formats.export_tflite(export, export / FILES["tflite_int8"], int8=True,
                          calibration_records=[str(records)], calibration_images=100)
    formats.export_onnx(export, export / FILES["onnx"])
    return export


def size_of(path: Path) -> int:
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--export_dir", default=None,
                        help="an export with model.tflite, model_int8.tflite and model.onnx")
    parser.add_argument("--iterations", type=int, default=100, help="images per runner")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="odflow-deploy-bench-") as tmp:
        export = Path(args.export_dir) if args.export_dir else prepare(Path(tmp))
        runners = {
            "frozen_graph": FrozenGraphDetector(export / FILES["frozen_graph"]),
            "saved_model": SavedModelDetector(export / FILES["saved_model"]),
            "tflite": TFLiteDetector(export / FILES["tflite"], args.threads),
            "tflite_int8": TFLiteDetector(export / FILES["tflite_int8"], args.threads),
            "onnx": OnnxDetector(export / FILES["onnx"], args.threads),
        }
        size = runners["tflite"].size
        image = synthetic.generate_example(
            synthetic.split_rng(1, "val", 0),
            synthetic.SyntheticConfig(height=size[0], width=size[1])).image
        for _ in range(args.warmup):
            for runner in runners.values():
                runner.detect(image)
        times: dict[str, list[float]] = {name: [] for name in runners}
        for _ in range(args.iterations):
            for name, runner in runners.items():
                start = time.perf_counter()
                runner.detect(image)
                times[name].append(time.perf_counter() - start)
        sizes = {name: size_of(export / FILES[name]) for name in runners}

    base = statistics.median(times["frozen_graph"])
    print(f"batch 1, {size[0]}x{size[1]} uint8 image, {args.iterations} calls each, "
          f"round-robin; LiteRT/ONNX Runtime threads {args.threads}; load average "
          f"{os.getloadavg()[0]:.1f}")
    print("| runtime | median ms | img/s | speed vs frozen graph | file size (KiB) |"
          " size vs frozen graph |")
    print("|---|---|---|---|---|---|")
    for name in runners:
        median = statistics.median(times[name])
        print(f"| {name} | {median * 1000:.2f} | {1 / median:.1f} | {base / median:.2f} | "
              f"{sizes[name] / 1024:.0f} | {sizes[name] / sizes['frozen_graph']:.2f} |")
    print(f"int8 / float TFLite size: 1/{sizes['tflite'] / sizes['tflite_int8']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
