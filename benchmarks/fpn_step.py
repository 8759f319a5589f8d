"""Train-step speed of ssd_mobilenet_v1_fpn (RetinaNet-style) against Keras MobileNet baselines.

Rows, all forward + backward at the zoo's 640x640 on the same synthetic batch, interleaved in
rounds in this process (the fastest round is the least disturbed on a shared machine):

* ``keras MobileNet + trivial head``: ``keras.applications.MobileNet`` (alpha 1, no weights,
  no top) with one 1x1 conv: the nearest Keras application, i.e. the backbone's own cost.
* ``keras MobileNet + same FPN and heads``: the same pyramid and weight-shared towers (per-level
  batch norm) written with Keras layers: what the architecture costs when Keras runs it.
* ``odflow FPN full train step``: the zoo config's model, anchors, targets, focal loss.
* ``odflow FPN network only``: odflow's network with a trivial loss.

The first ratio says what the pyramid and RetinaNet heads add over the backbone (an
architecture cost: 51,150 anchors and 4+4 3x3x256 convs on five levels); the second compares
odflow's implementation with Keras running the same computation.

    python benchmarks/fpn_step.py [--batch 2] [--steps 1] [--rounds 4] \
        [--output benchmarks/fpn_step.md]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np
import tensorflow as tf
from _step_timing import gradient_step, interleaved_rounds
from google.protobuf import text_format
from model_step import ssd_losses

from odflow.model import builder
from odflow.protos import pipeline_pb2
from odflow.utils.atomic import atomic_write_text

ZOO_CONFIG = (Path(__file__).resolve().parents[1] / "tests/fixtures/reference/model_zoo"
              / "ssd_mobilenet_v1_fpn_shared_box_predictor_640x640_coco14_sync_2018_07_03"
              / "pipeline.config")
SIZE = 640
NUM_CLASSES = 90
ANCHORS = 6


def synthetic_batch(batch: int, max_boxes: int = 10) -> dict[str, tf.Tensor]:
    rng = np.random.default_rng(0)
    counts = rng.integers(1, max_boxes + 1, size=batch)
    centres = rng.uniform(0.15, 0.85, size=(batch, max_boxes, 2))
    sizes = rng.uniform(0.05, 0.5, size=(batch, max_boxes, 2))
    boxes = np.concatenate([centres - sizes / 2, centres + sizes / 2], axis=-1).clip(0, 1)
    classes = rng.integers(1, NUM_CLASSES + 1, size=(batch, max_boxes))
    valid = np.arange(max_boxes)[None, :] < counts[:, None]
    return {
        "image": tf.constant(rng.uniform(0, 255, size=(batch, SIZE, SIZE, 3)), tf.float32),
        "groundtruth_boxes": tf.constant(boxes * valid[..., None], tf.float32),
        "groundtruth_classes": tf.constant(classes * valid, tf.int32),
        "num_groundtruth_boxes": tf.constant(counts, tf.int32),
    }


def odflow_steps(batch: dict[str, tf.Tensor]):
    config = pipeline_pb2.TrainEvalPipelineConfig()
    text_format.Parse(ZOO_CONFIG.read_text(), config)
    model = builder.build(config.model, is_training=True)

    full, network = ssd_losses(model, batch)
    variables = model.trainable_variables
    return gradient_step(variables, full), gradient_step(variables, network)


def keras_trivial_step(batch: dict[str, tf.Tensor]):
    backbone = tf.keras.applications.MobileNet(weights=None, alpha=1.0, include_top=False,
                                               input_shape=(SIZE, SIZE, 3))
    head = tf.keras.layers.Conv2D(4 + NUM_CLASSES + 1, 1)
    head.build((None, SIZE // 32, SIZE // 32, 1024))

    def loss():
        images = batch["image"] * (2.0 / 255.0) - 1.0
        return tf.reduce_mean(tf.square(head(backbone(images, training=True))))

    return gradient_step(backbone.trainable_variables + head.trainable_variables, loss)


def keras_fpn_model() -> tf.keras.Model:
    """MobileNet + the same FPN (levels 3-7, depth 256) and weight-shared heads in Keras."""
    L = tf.keras.layers
    backbone = tf.keras.applications.MobileNet(weights=None, alpha=1.0, include_top=False,
                                               input_shape=(SIZE, SIZE, 3))
    c3, c4, c5 = (backbone.get_layer(f"conv_pw_{i}_relu").output for i in (5, 11, 13))

    def conv_bn(x, stride=1):
        x = L.Conv2D(256, 3, stride, padding="same", use_bias=False)(x)
        return L.ReLU(6.0)(L.BatchNormalization(epsilon=1e-3)(x))

    p5 = L.Conv2D(256, 1)(c5)
    top = L.Add()([L.UpSampling2D(2)(p5), L.Conv2D(256, 1)(c4)])
    p4 = conv_bn(top)
    top = L.Add()([L.UpSampling2D(2)(top), L.Conv2D(256, 1)(c3)])
    p3 = conv_bn(top)
    p6 = conv_bn(p5, 2)
    p7 = conv_bn(p6, 2)
    levels = [p3, p4, p5, p6, p7]
    outputs = []
    for depth in (4, NUM_CLASSES + 1):
        convs = [L.Conv2D(256, 3, padding="same", use_bias=False) for _ in range(4)]
        predictor = L.Conv2D(ANCHORS * depth, 3, padding="same")
        per_level = []
        for x in levels:
            for conv in convs:  # shared weights, batch norm per level
                x = L.ReLU(6.0)(L.BatchNormalization(epsilon=1e-3)(conv(x)))
            per_level.append(L.Reshape((-1, depth))(predictor(x)))
        outputs.append(L.Concatenate(axis=1)(per_level))
    return tf.keras.Model(backbone.input, outputs)


def keras_fpn_step(batch: dict[str, tf.Tensor]):
    model = keras_fpn_model()

    def loss():
        images = batch["image"] * (2.0 / 255.0) - 1.0
        boxes, classes = model(images, training=True)
        return tf.reduce_mean(tf.square(boxes)) + tf.reduce_mean(tf.square(classes))

    return gradient_step(model.trainable_variables, loss)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--steps", type=int, default=1, help="timed steps per round")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--output", default=None, help="write a Markdown report here")
    args = parser.parse_args(argv)
    batch = synthetic_batch(args.batch)
    full, network = odflow_steps(batch)
    baseline = "keras MobileNet + trivial head (baseline)"
    same = "keras MobileNet + same FPN and heads"
    steps = {baseline: keras_trivial_step(batch), same: keras_fpn_step(batch),
             "odflow FPN full train step": full, "odflow FPN network only, trivial loss": network}
    rounds = interleaved_rounds(steps, args.rounds, args.steps)  # a busy spell hits all
    lines = rounds.table(args.batch)
    ratio = rounds.ratio_text

    full_ratio = ratio("odflow FPN full train step", baseline)
    same_ratio = ratio("odflow FPN network only, trivial loss", same)
    lines += ["", f"- odflow FPN full step / Keras MobileNet + trivial head: **{full_ratio}**",
              f"- odflow FPN network only / Keras MobileNet + same FPN and heads: **{same_ratio}**"]
    table = "\n".join(lines)
    print(table)
    if args.output:
        text = (
            "# ssd_mobilenet_v1_fpn train step vs Keras MobileNet\n\n"
            f"`python benchmarks/fpn_step.py --batch {args.batch} --steps {args.steps} "
            f"--rounds {args.rounds} --output {args.output}`\n\n"
            f"Batch {args.batch}, {SIZE}x{SIZE}, forward + backward (gradients of all trainable "
            "variables), float32, CPU "
            f"({platform.processor() or platform.machine()}, {os.cpu_count()} cores), "
            f"TensorFlow {tf.__version__}.\n\n{table}\n"
        )
        atomic_write_text(args.output, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
