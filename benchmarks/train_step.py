"""Images/s of the training loop as ``odflow train`` runs it, beside a roofline figure (issue 20).

For each model (the tutorial's SSD MobileNet v1 at 300x300, batch 8, RMSProp + EMA; SSD
MobileNet v2 with the TF2 zoo's ``ssd_mobilenet_v2_320x320`` settings, 1 class, batch 8, focal
loss; the demo's starter, depth 0.25 at 256x256, batch 16, Adam) this times blocks of steps
of the loop's per-step work: ``BatchSource.next_batch`` from the real ``tf.data`` pipeline
(JPEG decode, the config's augmentations, resize, pad, batch), the training ``tf.function``
(forward, targets, hard example mining, losses, gradients, optimiser, EMA), the losses fetched
to Python, ``Progress.update`` and the TensorBoard scalars every ``--log_every`` steps.

``--baseline`` interleaves blocks of the pre-issue-20 step (``tests/support/reference_step.py``)
with today's, each with its own model and input pipeline, so both see the same load from
other processes; the ratio is of medians over blocks.  Between blocks a 1024x1024 float32
matmul measures the machine's GFLOP/s in the same process; the roofline column is the step's
FLOPs (TF's cost model on the forward graph, x3 for forward + the two backward convolutions)
per second over that matmul rate.  ``--kernels`` times every convolution of the step alone
(forward, input and filter gradients; ``roofline.kernel_times``) against the step's wall time:
the bound on any speed-up that keeps TF's kernels.  ``--trace DIR`` writes a ``tf.profiler``
trace of a few steps per model and prints where the step's op time goes, by kind of op.

    python benchmarks/train_step.py [--models tutorial,v2,demo] [--blocks 5] [--steps 4] \
        [--baseline] [--kernels] [--trace /tmp/train_step_trace]
"""

from __future__ import annotations

import argparse
import collections
import glob
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

import tensorflow as tf
from roofline import (
    DIRECTIONS,
    MATMUL_SIZE,
    conv_layers,
    forward_flops,
    kernel_times,
    matmul_rate,
)
from train_pipeline import make_records

from odflow import config as config_lib
from odflow.data.synthetic import generate_records
from odflow.inputs import build_dataset
from odflow.model import builder
from odflow.train.batches import BatchSource
from odflow.train.progress import Progress
from odflow.train.state import TrainingState
from odflow.train.step import LEARNING_RATE, build_train_step
from odflow.train.summaries import SummaryWriter
from odflow.workflow.starter import starter_pipeline_text

TUTORIAL = REPO / "tests/fixtures/reference/sample_configs/ssd_mobilenet_v1_coco.config"
V2 = REPO / "tests/fixtures/reference/tf2_zoo/configs/ssd_mobilenet_v2_320x320_coco17_tpu-8.config"

# Kinds of op for the trace's breakdown (op type -> kind); anything else is "other".
KINDS = {
    "network (conv, depthwise, batch norm, ReLU6; forward and backward)": (
        "Conv2D", "DepthwiseConv2dNative", "FusedBatchNorm", "Relu6", "BiasAdd", "FusedConv2D"),
    "optimiser updates": ("ResourceApplyRMSProp", "ResourceApplyAdam", "ResourceApplyMomentum"),
    "EMA updates": ("ResourceApplyGradientDescent", "AssignSubVariableOp"),
    "regularisation and gradient norm": ("L2Loss", "AddN"),
    "target assignment, hard example mining, losses (elementwise, argmax, top-k, NMS, gather)": (
        "Sub", "Mul", "Minimum", "Maximum", "SelectV2", "Select", "ArgMax", "TopKV2",
        "GatherV2", "Greater", "GreaterEqual", "Less", "LessEqual", "Equal", "Exp", "Log1p",
        "Sigmoid", "NonMaxSuppression", "Abs", "RealDiv", "DivNoNan", "Max", "Sum", "Pack",
        "Tile", "MatrixBandPart", "ScatterNd", "Cast", "AddV2", "Neg", "Square", "Sqrt"),
}


def _with_records(cfg, record: Path):
    reader = cfg.train_input_reader.tf_record_input_reader
    reader.ClearField("input_path")
    reader.input_path.append(str(record))
    cfg.train_config.fine_tune_checkpoint = ""
    return cfg


def model_config(name: str, tmp: Path):
    """The pipeline config of one benchmarked model, over generated records in ``tmp``."""
    if name == "demo":
        record = tmp / "demo.record"
        if not record.exists():  # the demo's own synthetic faces (256x256, config.yaml's seed)
            generate_records(record, split="train", num_images=64, seed=1)
        cfg = config_lib.loads(starter_pipeline_text(depth_multiplier=0.25, image_size=256,
                                                     num_classes=1), source="starter")
        return _with_records(cfg, record)
    record = tmp / "photos.record"
    if not record.exists():
        make_records(record, 64)  # 640x480 JPEGs with 1-6 boxes
    if name == "tutorial":
        cfg = config_lib.load(TUTORIAL)  # 300x300, flip + ssd_random_crop, RMSProp, EMA
        cfg.model.ssd.num_classes = 1
    elif name == "v2":
        cfg = config_lib.load(V2)
        cfg.model.ssd.num_classes = 1
        extractor = cfg.model.ssd.feature_extractor
        if extractor.type not in builder.FEATURE_EXTRACTORS:  # the same network, slim names
            extractor.type = extractor.type.removesuffix("_keras")
        cfg.train_config.ClearField("sync_replicas")
    else:
        raise SystemExit(f"unknown model {name!r}: tutorial, v2 or demo")
    cfg.train_config.batch_size = 8
    reader = cfg.train_input_reader
    reader.shuffle_buffer_size = min(reader.shuffle_buffer_size or 2048, 64)
    return _with_records(cfg, record)


class Loop:
    """One model, one step implementation, one input pipeline: the loop body of
    ``odflow.train.loop._Run.loop`` without checkpoints and evaluations."""

    def __init__(self, cfg, build_step: Callable, events: Path, log_every: int):
        self.batch_size = cfg.train_config.batch_size
        self.state = TrainingState(builder.build(cfg.model, is_training=True),
                                   cfg.train_config.optimizer, cfg.train_config)
        if self.state.ema is not None:
            self.state.ema.reset()
        self.step = build_step(self.state, tf.distribute.get_strategy(),
                               clip_norm=cfg.train_config.gradient_clipping_by_norm,
                               add_regularization=cfg.train_config.add_regularization_loss)
        dataset = build_dataset(cfg.train_input_reader, model_config=cfg.model,
                                augmentations=list(cfg.train_config.data_augmentation_options),
                                batch_size=self.batch_size, is_training=True,
                                max_number_of_boxes=cfg.train_config.max_number_of_boxes,
                                seed=3)
        paths = list(cfg.train_input_reader.tf_record_input_reader.input_path)
        self.batches = BatchSource(iter(dataset), paths, lambda: False)
        self.progress = Progress(0, 0, self.batch_size, log_every, show_bar=False)
        self.writer = SummaryWriter(events)

    def run(self, steps: int) -> float:
        """Images per wall second over ``steps`` steps."""
        start = time.perf_counter()
        for _ in range(steps):
            batch = self.batches.next_batch()
            losses, learning_rate, finite = self.step(batch)
            values = {k: float(v) for k, v in losses.items()}
            if not bool(finite):
                raise SystemExit(f"non-finite loss {values}")
            step, rate = self.state.step, float(learning_rate)
            if self.progress.update(step, values, rate):
                self.writer.scalars({**values, LEARNING_RATE: rate}, step)
        return steps * self.batch_size / (time.perf_counter() - start)


def train_flops_per_image(cfg) -> float:
    """3x the forward pass's float ops per image by TF's cost model: a convolution's backward
    pass is two convolutions of its size (the input's and the filter's gradients)."""
    model = builder.build(cfg.model, is_training=True)
    resizer = cfg.model.ssd.image_resizer.fixed_shape_resizer
    return 3.0 * forward_flops(model, resizer.height, resizer.width, training=True)


def trace_breakdown(loop: Loop, directory: Path, steps: int = 3) -> list[tuple[str, float]]:
    """Write a ``tf.profiler`` trace of ``steps`` steps; op milliseconds per step by kind."""
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    loop.run(1)
    tf.profiler.experimental.start(str(directory))
    loop.run(steps)
    tf.profiler.experimental.stop()
    files = sorted(glob.glob(str(directory / "**" / "*.xplane.pb"), recursive=True),
                   key=os.path.getmtime)
    space = xplane_pb2.XSpace()
    space.ParseFromString(Path(files[-1]).read_bytes())
    totals: collections.Counter = collections.Counter()
    for plane in space.planes:
        for line in plane.lines:
            if not line.name.startswith("tf_"):  # the executor's threads, not tf.data's
                continue
            for event in line.events:
                name = plane.event_metadata[event.metadata_id].name
                if ":" not in name or name.startswith("ExecutorState"):
                    continue
                op_type = name.rsplit(":", 1)[1].removeprefix("_MklNative").removeprefix("_Mkl")
                kind = next((k for k, types in KINDS.items()
                             if any(op_type.startswith(t) for t in types)), "other")
                totals[kind] += event.duration_ps / 1e9 / steps
    return totals.most_common()


def kernel_table(loop: Loop, step_ms: float, matmul: float) -> str:
    """Where the step's convolution time can go: each forward convolution of today's traced
    step timed alone (TF's kernels, random data of its shapes) forward and for both gradients,
    summed by layer kind, against the step's wall time per step measured in the same process.

    The last line is the bound on any change that keeps these kernels: with everything else
    in the step (batch norm, ReLU6, losses, optimiser, input) at zero cost, the step would take
    the convolutions' time, so ``step_ms / convolutions`` is the largest possible speed-up."""
    layers = conv_layers(loop.step.get_concrete_function(loop.batches.next_batch()).graph)
    times = kernel_times(layers)
    head = (f"| layers ({len(layers)} convolutions) | direction | ms per step | GFLOP per step "
            "| GFLOP/s | / matmul | share of the step |")
    lines = [head, "|---" * 7 + "|"]
    total = 0.0
    for kind in ("1x1", "kxk", "depthwise"):
        for direction in DIRECTIONS:
            if (kind, direction) not in times:
                continue
            seconds, flops = times[kind, direction]
            total += seconds
            rate = flops / seconds / 1e9
            lines.append(f"| {kind} | {direction} | {seconds * 1e3:.0f} | {flops / 1e9:.1f} | "
                         f"{rate:.0f} | {rate / matmul:.0%} | {seconds * 1e3 / step_ms:.0%} |")
    lines.append(f"| all convolutions | | {total * 1e3:.0f} | | | | "
                 f"**{total * 1e3 / step_ms:.0%}** of {step_ms:.0f} ms |")
    lines.append(f"\nmatmul {matmul:.0f} GFLOP/s; bound with these kernels (all else free): "
                 f"**{step_ms / (total * 1e3):.2f}x**")
    return "\n".join(lines)


def _row(name: str, cfg, flops: float, speeds: dict[str, list[float]], rates: list[float],
         baseline: bool) -> str:
    medians = {label: statistics.median(values) for label, values in speeds.items()}
    matmul = statistics.median(rates)
    cells = " | ".join(f"{value:.1f}" for value in medians.values())
    ratio = ""
    if baseline:
        per_block = [t / b for t, b in zip(speeds["today"], speeds["before"], strict=True)]
        ratio = (f"**{statistics.median(per_block):.2f}** ("
                 + ", ".join(f"{r:.2f}" for r in per_block) + ") | ")
    achieved = medians["today"] * flops / 1e9
    return (f"| {name} | {cfg.train_config.batch_size} | {flops / 1e9:.2f} | {cells} | "
            f"{ratio}{matmul:.0f} | {achieved:.0f} / {matmul:.0f} = **{achieved / matmul:.0%}** |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="tutorial,v2,demo")
    parser.add_argument("--blocks", type=int, default=5, help="blocks per variant")
    parser.add_argument("--steps", type=int, default=4, help="steps per block")
    parser.add_argument("--log_every", type=int, default=100)
    parser.add_argument("--baseline", action="store_true",
                        help="interleave the pre-issue-20 step (tests/support/reference_step)")
    parser.add_argument("--trace", type=Path, help="write tf.profiler traces here")
    parser.add_argument("--kernels", action="store_true",
                        help="time each convolution of the step alone, forward and backward")
    args = parser.parse_args()
    builds = {"today": build_train_step}
    if args.baseline:
        from tests.support.reference_step import build_reference_train_step
        builds = {"before": build_reference_train_step, **builds}

    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"TF {tf.__version__}, load average {os.getloadavg()[0]:.1f} at the start")
    labels = list(builds)
    print(f"{args.blocks} blocks of {args.steps} steps per variant, interleaved; medians; "
          f"matmul: {MATMUL_SIZE}x{MATMUL_SIZE} float32, best of 5 before each block\n")
    head = " | ".join(f"{label}, images/s" for label in labels)
    print(f"| model | batch | train GFLOP/image | {head} | "
          + ("today / before (per block) | " if args.baseline else "")
          + "matmul GFLOP/s | step GFLOP/s / matmul |")
    print("|---" * (5 + len(labels) + int(args.baseline)) + "|", flush=True)
    breakdowns, kernels = {}, {}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        for name in args.models.split(","):
            cfg = model_config(name, tmp)
            flops = train_flops_per_image(cfg)
            loops = {label: Loop(cfg, build, tmp / f"{name}-{label}", args.log_every)
                     for label, build in builds.items()}
            for loop in loops.values():
                loop.run(2)  # trace, warm up, fill the pipeline's buffers
            speeds: dict[str, list[float]] = {label: [] for label in loops}
            rates = []
            for _ in range(args.blocks):
                rates.append(matmul_rate())
                for label, loop in loops.items():
                    speeds[label].append(loop.run(args.steps))
            if args.trace is not None:
                breakdowns[name] = trace_breakdown(loops["today"], args.trace / name)
            print(_row(name, cfg, flops, speeds, rates, args.baseline), flush=True)
            if args.kernels:
                step_ms = 1e3 * loops["today"].batch_size / statistics.median(speeds["today"])
                kernels[name] = kernel_table(loops["today"], step_ms, matmul_rate())
    print(f"\nload average {os.getloadavg()[0]:.1f} at the end")
    for name, table in kernels.items():
        print(f"\n{name}: convolution kernels alone, best of 5 each, against today's step\n")
        print(table)
    for name, kinds in breakdowns.items():
        total = sum(ms for _, ms in kinds)
        print(f"\n{name}: op time per step by kind (both executor threads), {total:.0f} ms")
        for kind, ms in kinds:
            print(f"- {kind}: {ms:.1f} ms ({ms / total:.0%})")


if __name__ == "__main__":
    main()
