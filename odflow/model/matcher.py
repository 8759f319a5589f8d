"""Argmax matcher: each anchor (column) takes the groundtruth row it overlaps most.

``match`` returns int32 per column: ``>= 0`` the matched row, ``-1`` unmatched (a negative,
trained as background), ``-2`` ignored (no loss at all).  With thresholds, a column is matched
when its best similarity is ``>= matched_threshold``; below ``unmatched_threshold`` it is a
negative (or ignored when ``negatives_lower_than_unmatched`` is false), and in between the
other way round.  ``force_match_for_each_row`` then gives every (valid) groundtruth row its best
column even when that similarity is low, so small objects still train a detector; when two rows
want the same column the lower row index wins, as in the API.

Works on one similarity matrix ``[N, M]`` or a batch ``[B, N, M]``.  ``valid_rows`` marks the
real groundtruth of a padded batch: invalid rows never match anything, and a column with no
valid row at all is unmatched.
"""

from __future__ import annotations

import tensorflow as tf

from odflow.errors import OdflowError

UNMATCHED = -1
IGNORED = -2


class ArgMaxMatcher:
    def __init__(
        self,
        matched_threshold: float | None = 0.5,
        unmatched_threshold: float | None = None,
        negatives_lower_than_unmatched: bool = True,
        force_match_for_each_row: bool = False,
    ) -> None:
        if matched_threshold is None:
            if unmatched_threshold is not None:
                raise OdflowError(
                    "argmax_matcher: unmatched_threshold needs a matched_threshold "
                    "(ignore_thresholds is set)"
                )
        else:
            if unmatched_threshold is None:
                unmatched_threshold = matched_threshold
            if unmatched_threshold > matched_threshold:
                raise OdflowError(
                    f"argmax_matcher: unmatched_threshold {unmatched_threshold} must not exceed "
                    f"matched_threshold {matched_threshold}"
                )
            if not negatives_lower_than_unmatched and unmatched_threshold == matched_threshold:
                raise OdflowError(
                    "argmax_matcher: with negatives_lower_than_unmatched false the negatives lie "
                    "between the thresholds, so unmatched_threshold must be below "
                    "matched_threshold"
                )
        self.matched_threshold = matched_threshold
        self.unmatched_threshold = unmatched_threshold
        self.negatives_lower_than_unmatched = negatives_lower_than_unmatched
        self.force_match_for_each_row = force_match_for_each_row

    @classmethod
    def from_config(cls, config) -> ArgMaxMatcher:
        """From a ``Matcher`` message (only ``argmax_matcher``) or an ``ArgMaxMatcher`` one.

        ``use_matmul_gather`` only picks a gather implementation on TPU; it does not change
        results and is accepted.
        """
        if config.DESCRIPTOR.name == "Matcher":
            which = config.WhichOneof("matcher_oneof")
            if which != "argmax_matcher":
                raise OdflowError(
                    f"matcher: {which or 'nothing'} is set; odflow supports argmax_matcher"
                )
            config = config.argmax_matcher
        matched = unmatched = None
        if not config.ignore_thresholds:
            matched = config.matched_threshold
            unmatched = config.unmatched_threshold
        return cls(
            matched_threshold=matched,
            unmatched_threshold=unmatched,
            negatives_lower_than_unmatched=config.negatives_lower_than_unmatched,
            force_match_for_each_row=config.force_match_for_each_row,
        )

    def match(self, similarity: tf.Tensor, valid_rows: tf.Tensor | None = None) -> tf.Tensor:
        """``similarity [..., N, M]`` (+ bool ``valid_rows [..., N]``) -> int32 ``[..., M]``."""
        similarity = tf.convert_to_tensor(similarity, tf.float32)
        shape = tf.shape(similarity)
        num_rows = shape[-2]
        if valid_rows is None:
            valid_rows = tf.ones(shape[:-1], tf.bool)
        valid_rows = tf.convert_to_tensor(valid_rows, tf.bool)
        # Invalid rows get the lowest float so they never win a column that a valid row can.
        masked = tf.where(valid_rows[..., None], similarity, tf.float32.min)
        any_valid = tf.reduce_any(valid_rows, axis=-1, keepdims=True)
        col_shape = tf.concat([shape[:-2], shape[-1:]], axis=0)

        def matched() -> tf.Tensor:
            matches = tf.argmax(masked, axis=-2, output_type=tf.int32)
            if self.matched_threshold is not None:
                best = tf.reduce_max(masked, axis=-2)
                below = best < self.unmatched_threshold
                between = (best >= self.unmatched_threshold) & (best < self.matched_threshold)
                low_value = UNMATCHED if self.negatives_lower_than_unmatched else IGNORED
                mid_value = IGNORED if self.negatives_lower_than_unmatched else UNMATCHED
                matches = tf.where(below, low_value, matches)
                matches = tf.where(between, mid_value, matches)
            if self.force_match_for_each_row:
                matches = self._force_match(masked, valid_rows, matches)
            return tf.where(any_valid, matches, UNMATCHED)

        return tf.cond(
            num_rows > 0, matched, lambda: tf.fill(col_shape, UNMATCHED)  # int32, as matched()
        )

    @staticmethod
    def _force_match(
        similarity: tf.Tensor, valid_rows: tf.Tensor, matches: tf.Tensor
    ) -> tf.Tensor:
        # Each valid row claims its best column; the lowest claiming row wins a shared column.
        # A segment-min over (batch, column) ids costs O(B*N) instead of a [B, N, M] one-hot.
        shape = tf.shape(similarity)
        num_rows, num_cols = shape[-2], shape[-1]
        best_cols = tf.argmax(similarity, axis=-1, output_type=tf.int32)  # [..., N]
        flat_cols = tf.reshape(best_cols, [-1, num_rows])
        flat_valid = tf.reshape(valid_rows, [-1, num_rows])
        num_images = tf.shape(flat_cols)[0]
        image_ids = tf.range(num_images)[:, None]
        dump = num_images * num_cols  # segment for invalid rows, dropped below
        segments = tf.where(flat_valid, image_ids * num_cols + flat_cols, dump)
        rows = tf.broadcast_to(tf.range(num_rows)[None, :], tf.shape(flat_cols))
        claimed = tf.math.unsorted_segment_min(
            tf.reshape(rows, [-1]), tf.reshape(segments, [-1]), dump + 1
        )[:-1]
        claimed = tf.reshape(claimed, tf.shape(matches))
        # Empty segments hold the int32 maximum.
        return tf.where(claimed < num_rows, claimed, matches)
