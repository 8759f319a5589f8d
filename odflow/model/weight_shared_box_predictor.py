"""The weight-shared convolutional box predictor (RetinaNet's heads), named as in TF1.

One box tower and one class tower of ``num_layers_before_predictor`` 3x3 convs
(``WeightSharedConvolutionalBoxPredictor/{Box,Class}PredictionTower/conv2d_i``, no biases),
then ``BoxPredictor`` and ``ClassPredictor`` convs (biases; the class one starts at
``class_prediction_bias_init``), all applied to every feature map with the same weights.
Batch norm is the exception: each tower conv has its own statistics per level
(``conv2d_i/BatchNorm/feature_j``), and the activation after it is ReLU6 whatever the
hyperparams say, as TF1 hard-coded it; the TF2 API's Keras predictor (the ``*_keras`` feature
extractors) applies the hyperparams' activation there instead (``tower_activation``).  ``share_prediction_tower`` uses one
``PredictionTower`` for both heads.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import tensorflow as tf

from odflow.model.hyperparams import ConvHyperparams
from odflow.model.layers import BatchNorm, ConvUnit, SeparableConvUnit, _activate, flat_units

SCOPE = "WeightSharedConvolutionalBoxPredictor"


@dataclass(frozen=True)
class WeightSharedOptions:
    num_classes: int
    depth: int
    num_layers_before_predictor: int = 0
    kernel_size: int = 3
    box_code_size: int = 4
    class_prediction_bias_init: float = 0.0
    use_dropout: bool = False
    dropout_keep_probability: float = 0.8
    share_prediction_tower: bool = False
    # Separable (depthwise kxk, then 1x1) tower convs and heads: the TF2 zoo's FPNLite.
    use_depthwise: bool = False
    box_encodings_clip_range: tuple[float, float] | None = None
    # After each tower batch norm: TF1's slim predictor hard-coded ReLU6; the TF2 API's Keras
    # one builds the conv_hyperparams' activation layer (convolutional_keras_box_predictor).
    tower_activation: str = "relu6"


class _Tower(tf.Module):
    """Shared conv weights, per-level batch norm, ``options.tower_activation``."""

    def __init__(self, scope: str, in_depth: int, options: WeightSharedOptions, num_levels: int,
                 hyperparams: ConvHyperparams) -> None:
        super().__init__(name=None)
        bn = hyperparams.batch_norm
        # The conv itself: no normaliser, no activation, and (as slim's conv with
        # normalizer_fn=tf.identity) no biases when batch norm follows.
        conv_params = replace(hyperparams, activation="none", batch_norm=None)
        use_biases = bn is None or hyperparams.force_use_bias
        self.convs: list[ConvUnit] = []
        self.norms: list[list[BatchNorm]] = []
        depth = in_depth
        for i in range(options.num_layers_before_predictor):
            name = f"{scope}/conv2d_{i}"
            conv_type = SeparableConvUnit if options.use_depthwise else ConvUnit
            conv = conv_type(name, options.kernel_size, depth, options.depth, 1, conv_params,
                             biases=use_biases)
            self.convs.append(conv)
            self.norms.append([] if bn is None else [
                BatchNorm(f"{name}/BatchNorm/feature_{j}", options.depth, bn)
                for j in range(num_levels)])
            depth = options.depth
        self.out_depth = depth
        self.activation = options.tower_activation

    def units(self) -> list[ConvUnit]:
        return flat_units(self.convs)

    def named_variables(self) -> dict[str, tf.Variable]:
        named: dict[str, tf.Variable] = {}
        for conv, norms in zip(self.convs, self.norms):
            named.update(conv.named_variables())
            for norm in norms:
                named.update(norm.named_variables())
        return named

    def __call__(self, x: tf.Tensor, level: int, training: bool) -> tf.Tensor:
        for conv, norms in zip(self.convs, self.norms):
            x = conv(x, training)
            if norms:
                x = norms[level](x, training)
            x = _activate(x, self.activation)
        return x


class WeightSharedConvolutionalBoxPredictor(tf.Module):
    """``__call__(feature_maps, training) -> (box_encodings [B,A,code], class_logits [B,A,C+1])``."""

    def __init__(self, options: WeightSharedOptions, in_depths: list[int],
                 num_anchors_per_location: list[int], hyperparams: ConvHyperparams) -> None:
        super().__init__(name=None)
        if len(set(in_depths)) != 1 or len(set(num_anchors_per_location)) != 1:
            raise ValueError("a weight-shared predictor needs the same depth and the same "
                             "number of anchors on every feature map")
        if len(in_depths) != len(num_anchors_per_location):
            raise ValueError("one anchor count per feature map is needed")
        self.options = options
        self.num_class_slots = options.num_classes + 1
        levels = len(in_depths)
        anchors = num_anchors_per_location[0]
        if options.share_prediction_tower:
            self.box_tower = _Tower(f"{SCOPE}/PredictionTower", in_depths[0], options, levels,
                                    hyperparams)
            self.class_tower = self.box_tower
        else:
            self.box_tower = _Tower(f"{SCOPE}/BoxPredictionTower", in_depths[0], options,
                                    levels, hyperparams)
            self.class_tower = _Tower(f"{SCOPE}/ClassPredictionTower", in_depths[0], options,
                                      levels, hyperparams)
        k = options.kernel_size
        head_type = SeparableConvUnit if options.use_depthwise else ConvUnit
        self.box_head = head_type(f"{SCOPE}/BoxPredictor", k, self.box_tower.out_depth,
                                  anchors * options.box_code_size, 1, hyperparams, head=True)
        self.class_head = head_type(f"{SCOPE}/ClassPredictor", k, self.class_tower.out_depth,
                                    anchors * self.num_class_slots, 1, hyperparams, head=True,
                                    bias_init=options.class_prediction_bias_init)

    def _towers(self) -> list[_Tower]:
        if self.class_tower is self.box_tower:
            return [self.box_tower]
        return [self.box_tower, self.class_tower]

    def units(self) -> list[ConvUnit]:
        units = [u for tower in self._towers() for u in tower.units()]
        return units + flat_units([self.box_head, self.class_head])

    def named_variables(self) -> dict[str, tf.Variable]:
        named: dict[str, tf.Variable] = {}
        for tower in self._towers():
            named.update(tower.named_variables())
        named.update(self.box_head.named_variables())
        named.update(self.class_head.named_variables())
        return named

    def __call__(self, feature_maps: list[tf.Tensor], training: bool = False,
                 batch_norm_training: bool | None = None) -> tuple[tf.Tensor, tf.Tensor]:
        """``training`` switches dropout on; ``batch_norm_training`` (default: ``training``)
        the towers' batch norm (off with ``freeze_batchnorm``)."""
        opts = self.options
        bn_training = training if batch_norm_training is None else batch_norm_training
        boxes, classes = [], []
        for level, x in enumerate(feature_maps):
            batch = x.shape[0] if x.shape[0] is not None else tf.shape(x)[0]
            box_net = self.box_tower(x, level, bn_training)
            class_net = (box_net if self.class_tower is self.box_tower
                         else self.class_tower(x, level, bn_training))
            box = tf.reshape(self.box_head(box_net), [batch, -1, opts.box_code_size])
            if opts.box_encodings_clip_range is not None:
                box = tf.clip_by_value(box, *opts.box_encodings_clip_range)
            if opts.use_dropout and training:
                class_net = tf.nn.dropout(class_net, rate=1.0 - opts.dropout_keep_probability)
            cls = self.class_head(class_net)
            boxes.append(box)
            classes.append(tf.reshape(cls, [batch, -1, self.num_class_slots]))
        return tf.concat(boxes, axis=1), tf.concat(classes, axis=1)
