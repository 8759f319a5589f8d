"""Region similarity calculators: how well each groundtruth box fits each anchor.

A calculator is a function ``(groundtruth [..., N, 4], anchors [..., M, 4]) -> [..., N, M]``;
the matcher reads the result with higher meaning better.
"""

from __future__ import annotations

from collections.abc import Callable

import tensorflow as tf

from odflow.errors import OdflowError
from odflow.model import box_ops

SimilarityFn = Callable[[tf.Tensor, tf.Tensor], tf.Tensor]

_CALCULATORS: dict[str, SimilarityFn] = {
    "iou_similarity": box_ops.iou,
    "ioa_similarity": box_ops.ioa,
    "neg_sq_dist_similarity": box_ops.neg_sq_dist,
}


def build_similarity_calculator(config) -> SimilarityFn:
    """From a ``RegionSimilarityCalculator`` message.

    ``thresholded_iou_similarity`` is not offered: it scores by groundtruth confidences, which
    odflow's datasets do not carry.
    """
    which = config.WhichOneof("region_similarity")
    if which not in _CALCULATORS:
        raise OdflowError(
            f"similarity_calculator: {which or 'nothing'} is set; odflow supports "
            + ", ".join(sorted(_CALCULATORS))
        )
    return _CALCULATORS[which]
