"""Online hard example mining (the SSD paper's 3:1 negatives-to-positives rule).

Without it the ~1900 background anchors of an image swamp the few matched ones.  Per image:

1. rank the anchors by loss (classification, localization, or the weighted sum: ``loss_type``);
2. NMS over the *decoded predicted* boxes in that order (``iou_threshold``, up to
   ``num_hard_examples``) so near-duplicate predictions are not all counted as hard;
3. of the selected anchors keep every positive (matched) one and the hardest negatives up to
   ``max(min_negatives_per_image, max_negatives_per_positive * positives)``;
4. sum the per-anchor localization and classification losses over the kept anchors.

As in the API, "negatives" in step 3 are counted among unmatched anchors (match -1); ignored
anchors (-2) that rank before the negative quota is used up stay selected (their weighted
losses are zero), and they are counted in ``NumNegatives``.  ``max_negatives_per_positive``
of ``None`` keeps everything NMS selected.

Steps 2-3 run per image in ``tf.map_fn`` (see ``_select_sorted``: NMS only over the
loss-ranked prefix that can hold the quota, with ``greedy_nms_keep`` instead of the NMS
kernel: the same result as ``tf.image.non_max_suppression``, ~50x faster at the zoo's shapes
on CPU, see ``benchmarks/ssd_targets_losses.md``); the rest is vectorised over the batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import tensorflow as tf

from odflow.errors import OdflowError

LOSS_TYPES = ("both", "cls", "loc")


@dataclass(frozen=True)
class MiningResult:
    localization_loss: tf.Tensor  # scalar, summed over the kept anchors of the batch
    classification_loss: tf.Tensor  # scalar
    num_positives: tf.Tensor  # [B] float32, kept positives per image
    num_negatives: tf.Tensor  # [B] float32, kept non-positives per image


class HardExampleMiner:
    def __init__(
        self,
        num_hard_examples: int | None = 64,
        iou_threshold: float = 0.7,
        loss_type: str = "both",
        cls_weight: float = 0.05,
        loc_weight: float = 0.06,
        max_negatives_per_positive: float | None = None,
        min_negatives_per_image: int = 0,
    ) -> None:
        if loss_type not in LOSS_TYPES:
            raise ValueError(f"loss_type must be one of {LOSS_TYPES}, got {loss_type!r}")
        self.num_hard_examples = num_hard_examples
        self.iou_threshold = float(iou_threshold)
        self.loss_type = loss_type
        self.cls_weight = float(cls_weight)
        self.loc_weight = float(loc_weight)
        self.max_negatives_per_positive = (
            None if max_negatives_per_positive is None else float(max_negatives_per_positive)
        )
        self.min_negatives_per_image = int(min_negatives_per_image)
        self._last: MiningResult | None = None

    def __call__(
        self,
        location_losses: tf.Tensor,
        cls_losses: tf.Tensor,
        decoded_boxes: tf.Tensor,
        match: tf.Tensor,
    ) -> tuple[tf.Tensor, tf.Tensor]:
        """``[B, A]`` losses, ``decoded_boxes [B, A, 4]``, ``match [B, A]`` ->
        (localization loss sum, classification loss sum) over the kept anchors."""
        result = self.mine(location_losses, cls_losses, decoded_boxes, match)
        self._last = result
        return result.localization_loss, result.classification_loss

    def summary(self) -> dict[str, tf.Tensor]:
        """Average kept positives/negatives per image of the last call, under the API's tags.

        Read it in the same ``tf.function`` (or eager step) as the call it describes.
        """
        if self._last is None:
            return {}
        return {
            "Loss/HardExampleMiner/NumPositives": tf.reduce_mean(self._last.num_positives),
            "Loss/HardExampleMiner/NumNegatives": tf.reduce_mean(self._last.num_negatives),
        }

    def mine(
        self,
        location_losses: tf.Tensor,
        cls_losses: tf.Tensor,
        decoded_boxes: tf.Tensor,
        match: tf.Tensor,
    ) -> MiningResult:
        location_losses = tf.convert_to_tensor(location_losses, tf.float32)
        cls_losses = tf.convert_to_tensor(cls_losses, tf.float32)
        if self.loss_type == "cls":
            ranking = cls_losses
        elif self.loss_type == "loc":
            ranking = location_losses
        else:
            ranking = cls_losses * self.cls_weight + location_losses * self.loc_weight
        # The ranking only picks anchors; gradients flow through the gathered losses.
        ranking = tf.stop_gradient(ranking)
        decoded_boxes = tf.stop_gradient(tf.convert_to_tensor(decoded_boxes, tf.float32))
        match = tf.cast(match, tf.int32)
        # Everything below works in descending-loss order (ties: lower anchor index first, as
        # the NMS kernel breaks them), then the kept mask is scattered back to anchor order.
        order = tf.argsort(ranking, direction="DESCENDING", stable=True)  # per image
        sorted_boxes = tf.gather(decoded_boxes, order, batch_dims=1)
        sorted_match = tf.gather(match, order, batch_dims=1)
        keep = tf.map_fn(
            lambda args: self._select_sorted(args[0], args[1]),
            (sorted_boxes, sorted_match),
            fn_output_signature=tf.TensorSpec([None], tf.bool),
        )
        keep = tf.ensure_shape(keep, ranking.shape)
        selected_mask = tf.gather(
            tf.cast(keep, tf.float32), tf.argsort(order), batch_dims=1
        )
        positives = tf.cast(match >= 0, tf.float32) * selected_mask
        num_positives = tf.reduce_sum(positives, axis=1)
        num_negatives = tf.reduce_sum(selected_mask, axis=1) - num_positives
        return MiningResult(
            localization_loss=tf.reduce_sum(location_losses * selected_mask),
            classification_loss=tf.reduce_sum(cls_losses * selected_mask),
            num_positives=num_positives,
            num_negatives=num_negatives,
        )

    def _apply_quota(
        self, keep: tf.Tensor, match: tf.Tensor, num_positives: tf.Tensor | None = None
    ) -> tf.Tensor:
        """NMS-kept mask (loss order) -> finally kept: the cap, all positives, the hardest
        negatives.  ``num_positives`` (kept positives of the whole image) defaults to those
        in ``keep``."""
        if self.num_hard_examples is not None:
            keep &= tf.cumsum(tf.cast(keep, tf.int32)) <= self.num_hard_examples
        if self.max_negatives_per_positive is None:
            return keep
        is_positive = keep & (match >= 0)
        is_negative = keep & (match == -1)
        if num_positives is None:
            num_positives = tf.reduce_sum(tf.cast(is_positive, tf.int32))
        max_negatives = tf.maximum(
            self.min_negatives_per_image,
            tf.cast(self.max_negatives_per_positive * tf.cast(num_positives, tf.float32), tf.int32),
        )
        # A running count of negatives in loss order keeps the hardest ones first.
        within_quota = tf.cumsum(tf.cast(is_negative, tf.int32)) <= max_negatives
        return keep & (is_positive | within_quota)

    def _select_full(self, boxes: tf.Tensor, match: tf.Tensor) -> tf.Tensor:
        return self._apply_quota(greedy_nms_keep(boxes, self.iou_threshold), match)

    def _select_sorted(self, boxes: tf.Tensor, match: tf.Tensor) -> tf.Tensor:
        """Kept mask of one image's anchors in loss order (``boxes``/``match`` sorted).

        NMS keeps a box iff no better kept box overlaps it, so the decisions for a prefix of
        the ranking depend on that prefix only.  Usually only the top few hundred anchors can
        be kept (all positives plus 3 negatives each), so this runs NMS on a prefix long
        enough to hold the negative quota, then checks each positive beyond it against the
        prefix.  When that cannot be decided exactly (the quota is not filled inside the
        prefix, or a positive beyond it overlaps another box beyond it, or a cap below the
        anchor count) it falls back to NMS over all anchors: same result either way.
        """
        num_anchors = tf.shape(match)[0]
        if self.max_negatives_per_positive is None or (
            self.num_hard_examples is not None
            and (match.shape[0] is None or self.num_hard_examples < match.shape[0])
        ):
            return self._select_full(boxes, match)
        is_positive = match >= 0
        total_positives = tf.reduce_sum(tf.cast(is_positive, tf.int32))
        max_quota = tf.maximum(
            self.min_negatives_per_image,
            tf.cast(
                self.max_negatives_per_positive * tf.cast(total_positives, tf.float32), tf.int32
            ),
        )
        wanted = total_positives + max_quota
        prefix = tf.minimum(num_anchors, wanted + wanted // 4 + 64)

        def fast() -> tuple[tf.Tensor, tf.Tensor]:
            prefix_keep = greedy_nms_keep(boxes[:prefix], self.iou_threshold)
            prefix_match = match[:prefix]
            kept_negatives = tf.reduce_sum(tf.cast(prefix_keep & (prefix_match == -1), tf.int32))
            # Positives beyond the prefix, and every box that ranks above each of them.
            outside = tf.cast(tf.where(is_positive[prefix:])[:, 0], tf.int32) + prefix
            over = tf.transpose(
                iou_above(boxes, tf.gather(boxes, outside), self.iou_threshold)
            )  # [P_out, A]
            above = tf.range(num_anchors)[None, :] < outside[:, None]
            over &= above
            undecided = tf.reduce_any(over[:, prefix:])
            suppressed = tf.reduce_any(over[:, :prefix] & prefix_keep[None, :], axis=1)
            outside_keep = tf.scatter_nd(
                outside[:, None] - prefix, tf.logical_not(suppressed), [num_anchors - prefix]
            )
            exact = (prefix >= num_anchors) | (
                (kept_negatives > max_quota) & tf.logical_not(undecided)
            )
            num_positives = tf.reduce_sum(
                tf.cast(prefix_keep & (prefix_match >= 0), tf.int32)
            ) + tf.reduce_sum(tf.cast(outside_keep, tf.int32))
            kept = tf.concat(
                [self._apply_quota(prefix_keep, prefix_match, num_positives), outside_keep], 0
            )
            return kept, exact

        kept, exact = fast()
        return tf.cond(exact, lambda: kept, lambda: self._select_full(boxes, match))


def iou_above(boxes1: tf.Tensor, boxes2: tf.Tensor, iou_threshold: float) -> tf.Tensor:
    """Pairwise ``IoU > iou_threshold`` ``[N, M]`` without a division.

    ``IoU > t  <=>  inter > t (a1 + a2 - inter)  <=>  inter > c a1 + c a2`` with
    ``c = t / (1 + t)``; pairs of empty boxes compare ``0 > 0``: never overlapping, as in the
    NMS kernel.  Boxes are canonicalised (min/max corners) like the kernel does.
    """
    ymin1, xmin1, ymax1, xmax1 = _canonical(boxes1)
    ymin2, xmin2, ymax2, xmax2 = _canonical(boxes2)
    c = iou_threshold / (1.0 + iou_threshold)
    heights = tf.nn.relu(
        tf.minimum(ymax1[:, None], ymax2[None, :]) - tf.maximum(ymin1[:, None], ymin2[None, :])
    )
    widths = tf.nn.relu(
        tf.minimum(xmax1[:, None], xmax2[None, :]) - tf.maximum(xmin1[:, None], xmin2[None, :])
    )
    area1 = (ymax1 - ymin1) * (xmax1 - xmin1) * c
    area2 = (ymax2 - ymin2) * (xmax2 - xmin2) * c
    return heights * widths > area1[:, None] + area2[None, :]


def _canonical(boxes: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor]:
    ymin, xmin, ymax, xmax = tf.unstack(boxes, num=4, axis=-1)
    return tf.minimum(ymin, ymax), tf.minimum(xmin, xmax), tf.maximum(ymin, ymax), tf.maximum(xmin, xmax)


def greedy_nms_keep(sorted_boxes: tf.Tensor, iou_threshold: float) -> tf.Tensor:
    """Greedy NMS over boxes already sorted best-first: bool ``[A]``, True where kept.

    Same result as ``tf.image.non_max_suppression`` with no output cap (a box is dropped when
    its IoU with a better *kept* box exceeds the threshold), but computed from one overlap
    matrix and a few matrix-vector products instead of the kernel's scalar O(A^2) loop, which
    cost ~80 ms per 1917-anchor image on CPU.  ``keep[j] = not any(over[i, j] and keep[i],
    i < j)`` has exactly one solution (by induction on ``j``); iterating it from all-True
    reaches it in as many steps as the longest chain of overlapping boxes, 1-3 in practice.
    """
    over = tf.cast(iou_above(sorted_boxes, sorted_boxes, iou_threshold), tf.float32)
    # Only better boxes (rows i < column j) suppress: keep the upper triangle and subtract
    # the diagonal (a non-empty box overlaps itself) per box rather than masking it.
    over = tf.linalg.band_part(over, 0, -1)
    self_overlap = tf.linalg.diag_part(over)

    def step(keep: tf.Tensor) -> tf.Tensor:
        return tf.linalg.matvec(over, keep, transpose_a=True) - self_overlap * keep == 0.0

    def body(keep: tf.Tensor, _previous: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        return tf.cast(step(keep), tf.float32), keep

    first = tf.cast(step(tf.ones_like(self_overlap)), tf.float32)
    keep, _ = tf.while_loop(
        lambda keep, previous: tf.reduce_any(keep != previous),
        body,
        (tf.cast(step(first), tf.float32), first),
        maximum_iterations=tf.shape(sorted_boxes)[0],
    )
    return keep > 0.0


def build_hard_example_miner(
    config, classification_weight: float = 1.0, localization_weight: float = 1.0
) -> HardExampleMiner:
    """From a ``HardExampleMiner`` message; the weights come from the enclosing ``Loss``."""
    loss_types = {0: "both", 1: "cls", 2: "loc"}
    if config.loss_type not in loss_types:
        raise OdflowError(f"loss.hard_example_miner.loss_type {config.loss_type} is unknown")
    if not 0.0 < config.iou_threshold <= 1.0:
        raise OdflowError(
            f"loss.hard_example_miner.iou_threshold must lie in (0, 1], got {config.iou_threshold}"
        )
    if config.min_negatives_per_image < 0:
        raise OdflowError("loss.hard_example_miner.min_negatives_per_image must not be negative")
    return HardExampleMiner(
        num_hard_examples=config.num_hard_examples if config.num_hard_examples > 0 else None,
        iou_threshold=config.iou_threshold,
        loss_type=loss_types[config.loss_type],
        cls_weight=classification_weight,
        loc_weight=localization_weight,
        max_negatives_per_positive=(
            config.max_negatives_per_positive if config.max_negatives_per_positive > 0 else None
        ),
        min_negatives_per_image=config.min_negatives_per_image,
    )
