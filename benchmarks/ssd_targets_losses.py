"""Cost of the SSD training targets, losses and hard example mining vs a backbone step.

Measures, in one process and at the zoo's shapes (300x300, 1917 anchors, 90 classes):

- baseline: forward + backward of a plain Keras MobileNet v1 (alpha 1, no weights) with a
  trivial head, batch B;
- targets+losses: ``batch_assign_targets`` + sigmoid / smooth L1 losses + the hard example
  miner (3000, IoU 0.99, 3:1) on random predictions, forward + backward, batch B;
- the miner alone, and the NMS kernel per image it replaces.

Usage: ``python benchmarks/ssd_targets_losses.py [--batch 8] [--steps 5]``; writes nothing,
prints a Markdown table (copy it into ``benchmarks/ssd_targets_losses.md``).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import tensorflow as tf

from odflow.model.anchors import SsdAnchorGenerator
from odflow.model.box_coder import FasterRcnnBoxCoder
from odflow.model.hard_example_miner import HardExampleMiner
from odflow.model.losses import (
    WeightedSigmoidClassificationLoss,
    WeightedSmoothL1LocalizationLoss,
)
from odflow.model.target_assigner import batch_assign_targets

GRIDS = [(19, 19), (10, 10), (5, 5), (3, 3), (2, 2), (1, 1)]
NUM_CLASSES = 90


def _time(fn, steps: int) -> float:
    fn()  # trace + warm up
    fn()
    start = time.perf_counter()
    for _ in range(steps):
        fn()
    return (time.perf_counter() - start) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--max-boxes", type=int, default=20)
    args = parser.parse_args()
    batch = args.batch

    backbone = tf.keras.applications.MobileNet(
        input_shape=(300, 300, 3), include_top=False, weights=None)
    head = tf.keras.layers.Conv2D(4, 1)
    images = tf.random.uniform([batch, 300, 300, 3])

    @tf.function
    def backbone_step():
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(head(backbone(images, training=True)))
        variables = backbone.trainable_variables + head.trainable_variables
        return tape.gradient(loss, variables)[0]

    anchors = SsdAnchorGenerator().generate(GRIDS, 300, 300)
    rng = np.random.default_rng(0)
    yx = rng.uniform(0, 0.7, (batch, args.max_boxes, 2))
    hw = rng.uniform(0.02, 0.3, (batch, args.max_boxes, 2))
    gt_boxes = tf.constant(np.concatenate([yx, yx + hw], -1), tf.float32)
    gt_classes = tf.constant(rng.integers(1, NUM_CLASSES + 1, (batch, args.max_boxes)), tf.int32)
    num_boxes = tf.constant(rng.integers(1, args.max_boxes + 1, batch), tf.int32)
    codes = tf.Variable(tf.random.normal([batch, 1917, 4]))
    logits = tf.Variable(tf.random.normal([batch, 1917, NUM_CLASSES + 1]) - 4.0)
    coder = FasterRcnnBoxCoder()
    cls_loss = WeightedSigmoidClassificationLoss()
    loc_loss = WeightedSmoothL1LocalizationLoss()
    miner = HardExampleMiner(3000, 0.99, "cls", 1.0, 1.0, 3, 0)

    @tf.function
    def losses_step():
        with tf.GradientTape() as tape:
            targets = batch_assign_targets(anchors, gt_boxes, gt_classes, num_boxes, NUM_CLASSES)
            loc = loc_loss(codes, targets["reg_targets"], targets["reg_weights"])
            cls = cls_loss(logits, targets["cls_targets"], targets["cls_weights"])
            loc_sum, cls_sum = miner(loc, cls, coder.decode(codes, anchors), targets["match"])
            total = (loc_sum + cls_sum) / tf.maximum(tf.reduce_sum(targets["reg_weights"]), 1.0)
        return tape.gradient(total, [codes, logits])

    loc_fixed = tf.random.uniform([batch, 1917])
    cls_fixed = tf.random.uniform([batch, 1917])
    decoded = coder.decode(codes, anchors)
    match = batch_assign_targets(anchors, gt_boxes, gt_classes, num_boxes, NUM_CLASSES)["match"]

    @tf.function
    def miner_only():
        return miner(loc_fixed, cls_fixed, decoded, match)

    @tf.function
    def kernel_nms_only():
        # The straightforward alternative the miner avoids: the NMS kernel per image.
        return tf.map_fn(
            lambda a: tf.size(tf.image.non_max_suppression(a[0], a[1], 3000, 0.99)),
            (decoded, cls_fixed),
            fn_output_signature=tf.int32,
        )

    t_backbone = _time(backbone_step, args.steps)
    t_losses = _time(losses_step, args.steps)
    t_miner = _time(miner_only, args.steps)
    t_kernel = _time(kernel_nms_only, args.steps)
    print(f"| batch {batch} | seconds/step | vs backbone step |")
    print("|---|---|---|")
    print(f"| MobileNet v1 fwd+bwd (baseline) | {t_backbone:.4f} | 1.000 |")
    print(f"| targets + losses + miner fwd+bwd | {t_losses:.4f} | {t_losses / t_backbone:.3f} |")
    print(f"| hard example miner alone | {t_miner:.4f} | {t_miner / t_backbone:.3f} |")
    print(f"| (tf.image.non_max_suppression per image) | {t_kernel:.4f} "
          f"| {t_kernel / t_backbone:.3f} |")


if __name__ == "__main__":
    main()
