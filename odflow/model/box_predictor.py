"""The convolutional box predictor: per feature map, box encodings and class logits.

Scopes ``BoxPredictor_k`` with ``BoxEncodingPredictor`` and ``ClassPredictor`` (weights and
biases), optional ``Conv2d_i_1x1_d`` layers before them, as the TF1 API named them.
"""

from __future__ import annotations

from dataclasses import dataclass

import tensorflow as tf

from odflow.model.hyperparams import ConvHyperparams
from odflow.model.layers import ConvUnit, named_variables_of


@dataclass(frozen=True)
class BoxPredictorOptions:
    num_classes: int
    kernel_size: int = 1
    min_depth: int = 0
    max_depth: int = 0
    num_layers_before_predictor: int = 0
    use_dropout: bool = True
    dropout_keep_probability: float = 0.8
    box_code_size: int = 4
    apply_sigmoid_to_scores: bool = False
    class_prediction_bias_init: float = 0.0
    use_depthwise: bool = False
    box_encodings_clip_range: tuple[float, float] | None = None


class _Head(tf.Module):
    """One output conv (``BoxEncodingPredictor`` or ``ClassPredictor``), optionally
    separable (``<name>_depthwise`` then a 1x1 ``<name>``)."""

    def __init__(self, scope: str, in_depth: int, out_depth: int, options: BoxPredictorOptions,
                 hyperparams: ConvHyperparams, bias_init: float = 0.0) -> None:
        super().__init__(name=None)
        k = options.kernel_size
        self.units: list[ConvUnit] = []
        if options.use_depthwise:
            self.units.append(ConvUnit(f"{scope}_depthwise", k, in_depth, None, 1, hyperparams,
                                       depthwise=True))
            k = 1
        self.units.append(ConvUnit(scope, k, in_depth, out_depth, 1, hyperparams, head=True,
                                   bias_init=bias_init))

    def __call__(self, x: tf.Tensor, training: bool) -> tf.Tensor:
        for unit in self.units:
            x = unit(x, training)
        return x


class ConvolutionalBoxPredictor(tf.Module):
    """``__call__(feature_maps, training) -> (box_encodings [B,A,code], class_logits [B,A,C+1])``."""

    def __init__(self, options: BoxPredictorOptions, in_depths: list[int],
                 num_anchors_per_location: list[int], hyperparams: ConvHyperparams) -> None:
        super().__init__(name=None)
        if len(in_depths) != len(num_anchors_per_location):
            raise ValueError("one anchor count per feature map is needed")
        self.options = options
        self.num_class_slots = options.num_classes + 1
        self.towers: list[list[ConvUnit]] = []
        self.box_heads: list[_Head] = []
        self.class_heads: list[_Head] = []
        for k, (depth, anchors) in enumerate(zip(in_depths, num_anchors_per_location)):
            scope = f"BoxPredictor_{k}"
            tower: list[ConvUnit] = []
            mid = max(min(depth, options.max_depth), options.min_depth)
            if mid > 0 and options.num_layers_before_predictor > 0:
                for i in range(options.num_layers_before_predictor):
                    tower.append(ConvUnit(f"{scope}/Conv2d_{i}_1x1_{mid}", 1, depth, mid, 1,
                                          hyperparams))
                    depth = mid
            self.towers.append(tower)
            self.box_heads.append(_Head(f"{scope}/BoxEncodingPredictor", depth,
                                        anchors * options.box_code_size, options, hyperparams))
            self.class_heads.append(_Head(f"{scope}/ClassPredictor", depth,
                                          anchors * self.num_class_slots, options, hyperparams,
                                          bias_init=options.class_prediction_bias_init))

    def units(self) -> list[ConvUnit]:
        units = [u for tower in self.towers for u in tower]
        for box, cls in zip(self.box_heads, self.class_heads):
            units += box.units + cls.units
        return units

    def named_variables(self) -> dict[str, tf.Variable]:
        return named_variables_of(self.units())

    def __call__(self, feature_maps: list[tf.Tensor], training: bool = False,
                 batch_norm_training: bool | None = None) -> tuple[tf.Tensor, tf.Tensor]:
        """``training`` switches dropout on; ``batch_norm_training`` (default: ``training``)
        the batch norm of the layers before the heads (off with ``freeze_batchnorm``)."""
        opts = self.options
        bn_training = training if batch_norm_training is None else batch_norm_training
        boxes, classes = [], []
        for x, tower, box_head, class_head in zip(feature_maps, self.towers, self.box_heads,
                                                  self.class_heads):
            batch = x.shape[0] if x.shape[0] is not None else tf.shape(x)[0]
            for unit in tower:
                x = unit(x, bn_training)
            box = tf.reshape(box_head(x, bn_training), [batch, -1, opts.box_code_size])
            if opts.box_encodings_clip_range is not None:
                box = tf.clip_by_value(box, *opts.box_encodings_clip_range)
            net = x
            if opts.use_dropout and training:
                net = tf.nn.dropout(net, rate=1.0 - opts.dropout_keep_probability)
            cls = class_head(net, bn_training)
            if opts.apply_sigmoid_to_scores:
                cls = tf.sigmoid(cls)
            boxes.append(box)
            classes.append(tf.reshape(cls, [batch, -1, self.num_class_slots]))
        return tf.concat(boxes, axis=1), tf.concat(classes, axis=1)
