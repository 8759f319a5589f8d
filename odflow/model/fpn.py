"""The top-down feature pyramid (FPN) of the TF1 API's ``fpn_top_down_feature_maps``.

From the finest to the coarsest backbone map ``C_1..C_n``: the coarsest is projected by a 1x1
conv (``projection_n``: biases, no batch norm, no activation) and is itself the top pyramid
level; going down, the running map is upsampled 2x by nearest neighbour (each value repeated
in a 2x2 block, as TF1's reshape-and-multiply ``nearest_neighbor_upsampling``), the level's
``projection_k`` is added, and a 3x3 ``smoothing_k`` conv (the config's hyperparams: batch
norm and activation) gives the level's map.  The names are the zoo checkpoint's
(``.../fpn/projection_1``, ``.../fpn/smoothing_1``, ...).
"""

from __future__ import annotations

import tensorflow as tf

from odflow.model.hyperparams import ConvHyperparams
from odflow.model.layers import ConvUnit


def nearest_neighbor_upsampling(x: tf.Tensor, scale: int = 2) -> tf.Tensor:
    """``[B,H,W,C] -> [B,H*scale,W*scale,C]``, each value repeated in a scale x scale block."""
    return tf.repeat(tf.repeat(x, scale, axis=1), scale, axis=2)


class FpnTopDown(tf.Module):
    """``__call__([C_1 finest .. C_n coarsest], training) -> [P_1 .. P_n]``, all ``depth``
    channels; ``P_k`` has the spatial size of ``C_k`` (each ``C_k`` must be exactly twice
    ``C_{k+1}``, which the builder checks through the image size)."""

    def __init__(self, scope: str, in_depths: list[int], depth: int,
                 hyperparams: ConvHyperparams, *, explicit_padding: bool = False) -> None:
        super().__init__(name=None)
        n = len(in_depths)
        self.projections = [ConvUnit(f"{scope}/projection_{k + 1}", 1, in_depths[k], depth, 1,
                                     hyperparams, head=True) for k in range(n)]
        self.smoothings = [ConvUnit(f"{scope}/smoothing_{k + 1}", 3, depth, depth, 1,
                                    hyperparams, explicit_padding=explicit_padding)
                           for k in range(n - 1)]

    def units(self) -> list[ConvUnit]:
        return self.projections + self.smoothings

    def __call__(self, features: list[tf.Tensor], training: bool = False) -> list[tf.Tensor]:
        top_down = self.projections[-1](features[-1], training)
        outputs = [top_down]
        for k in reversed(range(len(features) - 1)):
            top_down = nearest_neighbor_upsampling(top_down, 2)
            top_down = top_down + self.projections[k](features[k], training)
            outputs.append(self.smoothings[k](top_down, training))
        return outputs[::-1]
