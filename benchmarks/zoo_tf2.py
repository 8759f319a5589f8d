#!/usr/bin/env python3
"""Train-step and frozen-graph speed of the TF2 Detection Model Zoo's 18 SSD configs on CPU.

For each config in ``tests/fixtures/tf2_zoo/configs/`` (the zoo's own files), patched to 1 class
as the workflow patches them (``odflow.config.patch_config(num_classes=1)``), at its zoo input
size (the ``fixed_shape_resizer`` size, or the padded square of a ``keep_aspect_ratio_resizer``):

* **train img/s**: ``odflow train``'s step function (``odflow.train.step.build_train_step`` over
  a ``TrainingState``: forward, anchors, targets, the config's losses, regularisation,
  gradients, the config's optimiser update and EMA) on a synthetic in-memory batch (random
  pixels, 1-10 boxes per image); the input pipeline is not in it (``train_step.md`` measures
  the whole loop).  Batch 1 by default: the large models do not fit more on 2 cores in time.
* **frozen-graph img/s**: the weights after those steps written as a name-based checkpoint,
  exported with ``odflow.export.exporter.export_model`` (frozen graph + SavedModel), and
  ``frozen_inference_graph.pb`` run as the tutorial's TF1 client runs it (``import_graph_def``
  + ``tf.compat.v1.Session`` fed ``image_tensor:0``), batch 1, a uint8 image at the model's
  input size, post-processing included (the configs' NMS score threshold 1e-8 keeps every
  box, as the zoo's exports do).
* **matmul GFLOP/s**: a 1024-square float32 matmul timed before each round in the same
  process (``benchmarks/roofline.py``): the machine's speed under the load of that moment, so
  rows measured at different times can be compared per matmul GFLOP/s.
* **forward GFLOP/image**: TF's cost model on ``preprocess -> predict`` (no NMS).

Each model first runs its train rounds (a matmul, then a step), is exported, and is dropped
before the frozen graph is loaded for its own rounds (a matmul, then the inferences): with
both in memory EfficientDet-D5 to D7 needed more than 23 GB.  Each model runs in a
child process of its own (a model's memory is returned before the next one; a model over
``--timeout`` seconds is recorded as such).  Results go to ``--results`` (JSON lines, one per
model, appended as each finishes, so a long run that is stopped keeps what it measured) and,
with ``--output``, to a Markdown table rendered from all the results in that file.

    python benchmarks/zoo_tf2.py [--models NAME,...] [--rounds 3] [--batch 1] \
        [--results benchmarks/zoo_tf2.jsonl] [--output benchmarks/zoo_tf2.md]
    python benchmarks/zoo_tf2.py --render --results benchmarks/zoo_tf2.jsonl --output benchmarks/zoo_tf2.md
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

CONFIGS = REPO / "tests/fixtures/tf2_zoo/configs"
ZOO_TABLE = REPO / "tests/fixtures/tf2_zoo/zoo_table.md"
READING = "## Reading"
# The zoo's order of families, smallest model of each first (the order a short run measures).
ORDER = (
    "ssd_mobilenet_v2_320x320_coco17_tpu-8",
    "ssd_mobilenet_v2_fpnlite_320x320_coco17_tpu-8",
    "ssd_efficientdet_d0_512x512_coco17_tpu-8",
    "ssd_mobilenet_v1_fpn_640x640_coco17_tpu-8",
    "ssd_resnet50_v1_fpn_640x640_coco17_tpu-8",
    "ssd_mobilenet_v2_fpnlite_640x640_coco17_tpu-8",
    "ssd_efficientdet_d1_640x640_coco17_tpu-8",
    "ssd_resnet101_v1_fpn_640x640_coco17_tpu-8",
    "ssd_efficientdet_d2_768x768_coco17_tpu-8",
    "ssd_resnet152_v1_fpn_640x640_coco17_tpu-8",
    "ssd_efficientdet_d3_896x896_coco17_tpu-32",
    "ssd_resnet50_v1_fpn_1024x1024_coco17_tpu-8",
    "ssd_efficientdet_d4_1024x1024_coco17_tpu-32",
    "ssd_resnet101_v1_fpn_1024x1024_coco17_tpu-8",
    "ssd_resnet152_v1_fpn_1024x1024_coco17_tpu-8",
    "ssd_efficientdet_d5_1280x1280_coco17_tpu-32",
    "ssd_efficientdet_d6_1408x1408_coco17_tpu-32",
    "ssd_efficientdet_d7_1536x1536_coco17_tpu-32",
)


def zoo_ms() -> dict[str, float]:
    """The zoo page's "Speed (ms)" by config name, from the fixture copy of its table."""
    speeds = {}
    for line in ZOO_TABLE.read_text(encoding="utf-8").splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) >= 4 and cells[1].startswith("`ssd_"):
            speeds[cells[1].strip("`")] = float(cells[3])
    return speeds


def input_size(model_config) -> tuple[int, int]:
    """(height, width) the model runs at: the fixed size, or the padded square."""
    resizer = model_config.ssd.image_resizer
    if resizer.HasField("fixed_shape_resizer"):
        return resizer.fixed_shape_resizer.height, resizer.fixed_shape_resizer.width
    keep = resizer.keep_aspect_ratio_resizer
    return keep.max_dimension, keep.max_dimension


def synthetic_batch(batch: int, height: int, width: int, max_boxes: int = 10):
    import numpy as np
    import tensorflow as tf

    rng = np.random.default_rng(0)
    counts = rng.integers(1, max_boxes + 1, size=batch)
    centres = rng.uniform(0.15, 0.85, size=(batch, max_boxes, 2))
    sizes = rng.uniform(0.05, 0.5, size=(batch, max_boxes, 2))
    boxes = np.concatenate([centres - sizes / 2, centres + sizes / 2], axis=-1).clip(0, 1)
    valid = np.arange(max_boxes)[None, :] < counts[:, None]
    return {
        "image": tf.constant(rng.uniform(0, 255, size=(batch, height, width, 3)), tf.float32),
        "groundtruth_boxes": tf.constant(boxes * valid[..., None], tf.float32),
        "groundtruth_classes": tf.constant(valid.astype(np.int32), tf.int32),
        "num_groundtruth_boxes": tf.constant(counts, tf.int32),
    }


def train_and_export(cfg, name: str, batch_size: int, height: int, width: int, rounds: int,
                     export_dir: Path) -> tuple[float, list[float], list[float]]:
    """Forward FLOPs, train-step seconds and matmul GFLOP/s per round; the trained weights
    exported to ``export_dir``.  A function of its own so that the model, its optimiser state
    and its traced step are freed on return, before the frozen graph is loaded.  With
    ``rounds`` 0 nothing is trained (``--infer-only``: the initial weights are exported)."""
    import tensorflow as tf
    from _step_timing import forward_flops, matmul_rate, time_call

    from odflow import checkpoints
    from odflow.export.exporter import export_model
    from odflow.model import builder
    from odflow.train.state import TrainingState
    from odflow.train.step import build_train_step

    model = builder.build(cfg.model, is_training=True)
    flops = forward_flops(model, height, width)
    state = TrainingState(model, cfg.train_config.optimizer, cfg.train_config)
    step = build_train_step(state, tf.distribute.get_strategy(),
                            clip_norm=cfg.train_config.gradient_clipping_by_norm,
                            add_regularization=cfg.train_config.add_regularization_loss)
    batch = synthetic_batch(batch_size, height, width)

    def train_once() -> None:
        losses, _, finite = step(batch)
        if not bool(finite):
            raise SystemExit(f"{name}: non-finite loss {losses}")

    if rounds:
        print(f"{name}: tracing the train step", file=sys.stderr, flush=True)
        train_once()
    train_times, rates = [], []
    for index in range(rounds):
        print(f"{name}: train round {index + 1}/{rounds}", file=sys.stderr, flush=True)
        rates.append(matmul_rate())
        train_times.append(time_call(train_once))
    prefix = export_dir.parent / "ckpt" / "model.ckpt-1"
    checkpoints.write_bundle(prefix, state.named_tensors())
    print(f"{name}: exporting", file=sys.stderr, flush=True)
    export_model(cfg, str(prefix), export_dir)
    return flops, train_times, rates


def measure(name: str, batch_size: int, rounds: int, infer_per_round: int,
            infer_only: bool = False) -> dict:
    """Every figure of one config, in this process (see the module docstring)."""
    import numpy as np
    import tensorflow as tf
    from _step_timing import matmul_rate, time_call

    from odflow import config as config_lib
    from odflow.config.patch import patch_config
    from odflow.export.exporter import FROZEN_GRAPH
    from odflow.export.frozen_graph import load_frozen_graph
    from odflow.export.signature import OUTPUT_NAMES

    cfg = patch_config(config_lib.load(CONFIGS / f"{name}.config"), num_classes=1)
    height, width = input_size(cfg.model)
    with tempfile.TemporaryDirectory() as tmp:
        exported = Path(tmp) / "exported"
        flops, train_times, rates = train_and_export(
            cfg, name, batch_size, height, width, 0 if infer_only else rounds, exported)
        gc.collect()
        tf.keras.backend.clear_session()
        graph = load_frozen_graph(exported / FROZEN_GRAPH)
    session = tf.compat.v1.Session(graph=graph)
    fetches = [f"{output}:0" for output in OUTPUT_NAMES]
    image = np.random.default_rng(1).integers(0, 256, [1, height, width, 3], dtype=np.uint8)
    infer = lambda: session.run(fetches, feed_dict={"image_tensor:0": image})
    infer()  # first run: graph optimisation, allocations
    infer_times = []
    for index in range(rounds):
        print(f"{name}: frozen-graph round {index + 1}/{rounds}", file=sys.stderr, flush=True)
        rates.append(matmul_rate())
        infer_times.extend(time_call(infer) for _ in range(infer_per_round))
    session.close()
    return {
        "config": name, "height": height, "width": width, "batch": batch_size,
        "feature_extractor": cfg.model.ssd.feature_extractor.type,
        "forward_gflop": flops / 1e9,
        "train_s": train_times, "infer_s": infer_times, "matmul_gflops": rates,
        "matmul_median": statistics.median(rates),
        "tf": tf.__version__,
    }


def append_result(path: Path, result: dict) -> None:
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(result) + "\n")


def load_results(path: Path) -> dict[str, dict]:
    """The last result of each config in ``path`` (a later run replaces an earlier row)."""
    results: dict[str, dict] = {}
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                row = json.loads(line)
                results[row["config"]] = row
    return results


def rates(row: dict) -> dict[str, float]:
    """Images/s of a measured row: by the fastest round (the least disturbed by other jobs)
    and by the median round, for the train step and the frozen graph."""
    trained = bool(row["train_s"])  # not with --infer-only
    return {"train_best": row["batch"] / min(row["train_s"]) if trained else float("nan"),
            "train_median": (row["batch"] / statistics.median(row["train_s"]) if trained
                             else float("nan")),
            "infer_best": 1 / min(row["infer_s"]),
            "infer_median": 1 / statistics.median(row["infer_s"])}


def roofline(row: dict, train_img_s: float) -> float:
    """The train step's float ops per second over the matmul's: 3x the forward GFLOP per
    image (a convolution's backward pass is two convolutions of its size) x img/s."""
    return 3 * row["forward_gflop"] * train_img_s / row["matmul_median"]


def render(results: dict[str, dict]) -> str:
    """The Markdown table, in the zoo page's order; unmeasured configs say why."""
    speeds = zoo_ms()
    lines = [("| config | input | batch | forward GFLOP/img | train img/s, fastest / median round "
              "| frozen graph img/s, fastest / median | frozen graph ms, fastest | zoo ms "
              "| matmul GFLOP/s (median) | train img/s (fastest) per 100 matmul GFLOP/s "
              "| frozen graph img/s (fastest) per 100 matmul GFLOP/s "
              "| train GFLOP/s over matmul's | rounds (train s; frozen graph s) |"),
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for name in sorted(ORDER, key=list(speeds).index):
        row = results.get(name)
        if row is None or "error" in row:
            why = row["error"] if row else "not measured"
            lines.append(f"| `{name}` | | | | {why} | | | {speeds[name]:g} | | | | | |")
            continue
        rate = rates(row)
        train = ", ".join(f"{t:.2f}" for t in row["train_s"]) or "-"
        infer = ", ".join(f"{t:.2f}" for t in row["infer_s"])
        if row["train_s"]:
            train_rate = f"{rate['train_best']:.3g} / {rate['train_median']:.3g}"
            train_per_matmul = f"{100 * rate['train_best'] / row['matmul_median']:.3g}"
            train_roofline = f"{roofline(row, rate['train_best']):.0%}"
        else:
            train_rate = row.get("train_note", "not trained")
            train_per_matmul = train_roofline = ""
        lines.append(
            f"| `{name}` | {row['height']}x{row['width']} | {row['batch']} | "
            f"{row['forward_gflop']:.1f} | {train_rate} "
            f"| {rate['infer_best']:.3g} / {rate['infer_median']:.3g} | "
            f"{1000 / rate['infer_best']:.0f} | {speeds[name]:g} | {row['matmul_median']:.0f} | "
            f"{train_per_matmul} | "
            f"{100 * rate['infer_best'] / row['matmul_median']:.3g} | "
            f"{train_roofline} | {train}; {infer} |")
    return "\n".join(lines)


def header(results: dict[str, dict]) -> str:
    """The Markdown report's title, what each column is, and the machine."""
    versions = sorted({row["tf"] for row in results.values() if "tf" in row})
    return (
        "# TF2 Detection Model Zoo: train step and frozen graph speed on CPU\n\n"
        "`python benchmarks/zoo_tf2.py` (see its docstring for the options used in each run)\n\n"
        f"CPU: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, shared with "
        f"other jobs; TensorFlow {', '.join(versions) or '?'}; float32.  Each config patched to "
        "1 class, at its zoo input size.  Train img/s: batch / seconds of "
        "`odflow train`'s step function (forward, targets, losses, gradients, optimiser, EMA) on "
        "an in-memory batch.  Frozen graph: batch 1, uint8 image at the input size, NMS "
        "included.  Both by the fastest round (the least disturbed by the other jobs) and the median "
        "round.  Matmul: a 1024-square float32 matmul in the same "
        "process before each round, the median; the per-matmul column divides out the load of "
        "the moment, and the train step's GFLOP/s (3x forward GFLOP x img/s) over it says how "
        "much of the CPU's practical peak the step reaches.  Forward GFLOP: TF's cost model on preprocess + predict.\n\n")


def run_children(names: list[str], args: argparse.Namespace) -> None:
    """Each config in a child process, its result (or its failure) appended to the results."""
    for name in names:
        command = [sys.executable, __file__, "--one", name, "--batch", str(args.batch),
                   "--rounds", str(args.rounds), "--infer-per-round", str(args.infer_per_round),
                   *(["--infer-only", "--train-note", args.train_note] if args.infer_only else []),
                   "--results", str(args.results)]
        print(f"== {name}", file=sys.stderr, flush=True)
        try:
            done = subprocess.run(command, timeout=args.timeout, check=False)
            if done.returncode != 0:
                append_result(args.results, {"config": name,
                                             "error": f"failed (exit {done.returncode})"})
        except subprocess.TimeoutExpired:
            append_result(args.results, {"config": name,
                                         "error": f"over the {args.timeout:.0f} s limit"})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(ORDER),
                        help="comma-separated config names (default: all 18, smallest first)")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--infer-per-round", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds per model")
    parser.add_argument("--results", type=Path, default=REPO / "benchmarks/zoo_tf2.jsonl")
    parser.add_argument("--output", type=Path, help="write the Markdown table here")
    parser.add_argument("--render", action="store_true", help="only render --results")
    parser.add_argument("--infer-only", action="store_true",
                        help="no train step: time the frozen graph of the initial weights "
                             "(for configs whose train step does not fit in memory)")
    parser.add_argument("--train-note", default="not trained (--infer-only)",
                        help="with --infer-only: what the train columns say")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        result = measure(args.one, args.batch, args.rounds, args.infer_per_round,
                         args.infer_only)
        if args.infer_only:
            result["train_note"] = args.train_note
        append_result(args.results, result)
        return 0
    if not args.render:
        names = [name for name in args.models.split(",") if name]
        unknown = sorted(set(names) - set(ORDER))
        if unknown:
            parser.error(f"unknown config(s) {', '.join(unknown)}; known: {', '.join(ORDER)}")
        run_children(names, args)
    table = render(load_results(args.results))
    print(table)
    if args.output:
        from odflow.utils.atomic import atomic_write_text

        notes = ""  # a hand-written "## Reading" section of an earlier report is kept
        if args.output.exists():
            previous = args.output.read_text(encoding="utf-8")
            if READING in previous:
                notes = "\n" + previous[previous.index(READING):]
        atomic_write_text(args.output,
                          header(load_results(args.results)) + table + "\n" + notes)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"load average {os.getloadavg()[0]:.1f}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
