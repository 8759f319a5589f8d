"""``faster_rcnn_box_coder``: boxes <-> regression targets relative to anchors.

``ty = sy * (yc - ya) / ha``, ``tx = sx * (xc - xa) / wa``, ``th = sh * ln(h / ha)``,
``tw = sw * ln(w / wa)`` with scale factors ``(sy, sx, sh, sw)`` = (10, 10, 5, 5) in the zoo
config.  The scale factors bring the targets to roughly unit variance; they are part of what
the zoo checkpoint's box predictor learnt, so they must match the config exactly.

Both directions work on ``[..., 4]`` and broadcast: ``decode(codes [B, A, 4], anchors [A, 4])``
decodes a whole batch.
"""

from __future__ import annotations

from collections.abc import Sequence

import tensorflow as tf

from odflow.errors import OdflowError
from odflow.model import box_ops

# Added to every size before the logarithm, as the API does, so a degenerate box (zero height
# or width, common in WIDER FACE) encodes to a large finite target instead of -inf.
EPSILON = 1e-8


class FasterRcnnBoxCoder:
    code_size = 4

    def __init__(self, scale_factors: Sequence[float] | None = (10.0, 10.0, 5.0, 5.0)) -> None:
        if scale_factors is not None:
            if len(scale_factors) != 4 or any(s <= 0 for s in scale_factors):
                raise OdflowError(
                    "faster_rcnn_box_coder: y_scale, x_scale, height_scale and width_scale must "
                    f"all be positive, got {list(scale_factors)}"
                )
            scale_factors = tuple(float(s) for s in scale_factors)
        self.scale_factors = scale_factors

    def encode(self, boxes: tf.Tensor, anchors: tf.Tensor) -> tf.Tensor:
        ycenter_a, xcenter_a, ha, wa = box_ops.center_size(anchors)
        ycenter, xcenter, h, w = box_ops.center_size(boxes)
        ha += EPSILON
        wa += EPSILON
        h += EPSILON
        w += EPSILON
        ty = (ycenter - ycenter_a) / ha
        tx = (xcenter - xcenter_a) / wa
        th = tf.math.log(h / ha)
        tw = tf.math.log(w / wa)
        if self.scale_factors:
            ty *= self.scale_factors[0]
            tx *= self.scale_factors[1]
            th *= self.scale_factors[2]
            tw *= self.scale_factors[3]
        return tf.stack([ty, tx, th, tw], axis=-1)

    def decode(self, codes: tf.Tensor, anchors: tf.Tensor) -> tf.Tensor:
        ycenter_a, xcenter_a, ha, wa = box_ops.center_size(anchors)
        ty, tx, th, tw = tf.unstack(codes, num=4, axis=-1)
        if self.scale_factors:
            ty /= self.scale_factors[0]
            tx /= self.scale_factors[1]
            th /= self.scale_factors[2]
            tw /= self.scale_factors[3]
        h = tf.exp(th) * ha
        w = tf.exp(tw) * wa
        return box_ops.corners(ty * ha + ycenter_a, tx * wa + xcenter_a, h, w)


def build_box_coder(config) -> FasterRcnnBoxCoder:
    """From a ``BoxCoder`` message."""
    which = config.WhichOneof("box_coder_oneof")
    if which != "faster_rcnn_box_coder":
        raise OdflowError(
            f"box_coder: {which or 'nothing'} is set; odflow supports faster_rcnn_box_coder"
        )
    proto = config.faster_rcnn_box_coder
    return FasterRcnnBoxCoder(
        (proto.y_scale, proto.x_scale, proto.height_scale, proto.width_scale)
    )
