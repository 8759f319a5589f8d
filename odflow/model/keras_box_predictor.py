"""The TF2 API's Keras weight-shared box predictor (EfficientDet's head).

Facts (tensorflow/models ``predictors/convolutional_keras_box_predictor.py``,
``predictors/heads/keras_{box,class}_head.py``, TF2 version): a box tower and a class tower of
``num_layers_before_predictor`` convs (separable with ``use_depthwise``), each *shared* by all
levels, each followed by a batch norm *per level* and the hyperparams' activation (swish for
EfficientDet; the TF1 predictor hard-coded ReLU6); then ``BoxPredictor`` (anchors x 4) and
``ClassPredictor`` (anchors x class slots, bias initialised to ``class_prediction_bias_init``)
convs with biases, reshaped to ``[B, H*W*anchors, ...]`` and concatenated over levels.  Conv
biases follow the hyperparams (``force_use_bias``).

Checkpoint paths (for the TF2 key mapping, ``tower_paths`` / ``head_paths``):
``_head_scope_conv_layers/{Box,Class}PredictionTower/<i>``, the batch norms
``_base_tower_layers_for_heads/{box_encodings,class_predictions_with_background}/<level>/
<3 i + 1>``, ``_box_prediction_head/_box_encoder_layers/0`` and
``_prediction_heads/class_predictions_with_background/_class_predictor_layers/0``.
"""

from __future__ import annotations

from dataclasses import dataclass

import tensorflow as tf

from odflow.model.hyperparams import ConvHyperparams
from odflow.model.keras_layers import KerasBatchNorm, KerasConv, activate, keras_l2

SCOPE = "WeightSharedConvolutionalBoxPredictor"
BOX, CLASS = "box_encodings", "class_predictions_with_background"


@dataclass(frozen=True)
class KerasWeightSharedOptions:
    num_class_slots: int  # num_classes (+ 1 with a background column)
    depth: int
    num_layers_before_predictor: int
    kernel_size: int = 3
    box_code_size: int = 4
    class_prediction_bias_init: float = 0.0
    use_depthwise: bool = False
    use_dropout: bool = False
    dropout_keep_probability: float = 0.8
    box_encodings_clip_range: tuple[float, float] | None = None


class _Tower(tf.Module):
    def __init__(self, name: str, in_depth: int, options: KerasWeightSharedOptions,
                 num_levels: int, hyperparams: ConvHyperparams) -> None:
        super().__init__(name=None)
        kind = "separable" if options.use_depthwise else "conv"
        init = hyperparams.initializer.make()
        use_bias = hyperparams.batch_norm is None or hyperparams.force_use_bias
        self.convs: list[KerasConv] = []
        self.norms: list[list[KerasBatchNorm]] = []
        depth = in_depth
        for i in range(options.num_layers_before_predictor):
            layer = f"{SCOPE}/{name}/conv2d_{i}"
            self.convs.append(KerasConv(layer, kind, options.kernel_size, depth, options.depth,
                                        use_bias=use_bias, initializer=init,
                                        regularizer_weight=keras_l2(hyperparams)))
            bn = hyperparams.batch_norm
            self.norms.append([] if bn is None else [
                KerasBatchNorm(f"{layer}/BatchNorm/feature_{j}", options.depth, bn)
                for j in range(num_levels)])
            depth = options.depth
        self.out_depth = depth
        self.activation = hyperparams.activation

    def __call__(self, x: tf.Tensor, level: int, bn_training: bool) -> tf.Tensor:
        for conv, norms in zip(self.convs, self.norms):
            x = conv(x)
            if norms:
                x = norms[level](x, bn_training)
            x = activate(x, self.activation)
        return x


class KerasWeightSharedBoxPredictor(tf.Module):
    """``__call__(feature_maps, training, batch_norm_training) -> (box_encodings [B,A,4],
    class_logits [B,A,num_class_slots])``."""

    def __init__(self, options: KerasWeightSharedOptions, in_depths: list[int],
                 num_anchors_per_location: list[int], hyperparams: ConvHyperparams) -> None:
        super().__init__(name=None)
        if len(set(in_depths)) != 1 or len(set(num_anchors_per_location)) != 1:
            raise ValueError("a weight-shared predictor needs one depth and one anchor count "
                             "on every feature map")
        self.options = options
        self.num_class_slots = options.num_class_slots
        levels = len(in_depths)
        self.box_tower = _Tower("BoxPredictionTower", in_depths[0], options, levels, hyperparams)
        self.class_tower = _Tower("ClassPredictionTower", in_depths[0], options, levels,
                                  hyperparams)
        anchors = num_anchors_per_location[0]
        kind = "separable" if options.use_depthwise else "conv"
        init = hyperparams.initializer.make()
        reg = keras_l2(hyperparams)
        self.box_head = KerasConv(f"{SCOPE}/WeightSharedConvolutionalBoxHead/BoxPredictor", kind,
                                  options.kernel_size, self.box_tower.out_depth,
                                  anchors * options.box_code_size, initializer=init,
                                  regularizer_weight=reg)
        self.class_head = KerasConv(
            f"{SCOPE}/WeightSharedConvolutionalClassHead/ClassPredictor", kind,
            options.kernel_size, self.class_tower.out_depth, anchors * options.num_class_slots,
            initializer=init, bias_init=options.class_prediction_bias_init,
            regularizer_weight=reg)

    def units(self) -> list:
        units: list = []
        for tower in (self.box_tower, self.class_tower):
            units += tower.convs + [n for norms in tower.norms for n in norms]
        return units + [self.box_head, self.class_head]

    def named_variables(self) -> dict[str, tf.Variable]:
        named: dict[str, tf.Variable] = {}
        for unit in self.units():
            named.update(unit.named_variables())
        return named

    def checkpoint_layers(self) -> list[tuple[str, object, str]]:
        """(TF2 checkpoint path under ``model/_box_predictor``, layer, name) for every
        weighted layer."""
        out = []
        for head, tower, scope in ((BOX, self.box_tower, "BoxPredictionTower"),
                                   (CLASS, self.class_tower, "ClassPredictionTower")):
            for i, conv in enumerate(tower.convs):
                out.append((f"_head_scope_conv_layers/{scope}/{i}", conv))
                for level, norm in enumerate(tower.norms[i]):
                    out.append((f"_base_tower_layers_for_heads/{head}/{level}/{3 * i + 1}",
                                norm))
        out.append(("_box_prediction_head/_box_encoder_layers/0", self.box_head))
        out.append((f"_prediction_heads/{CLASS}/_class_predictor_layers/0", self.class_head))
        return [(path, layer, layer.layer_name) for path, layer in out]

    def __call__(self, feature_maps: list[tf.Tensor], training: bool = False,
                 batch_norm_training: bool | None = None) -> tuple[tf.Tensor, tf.Tensor]:
        opts = self.options
        bn_training = training if batch_norm_training is None else batch_norm_training
        boxes, classes = [], []
        for level, x in enumerate(feature_maps):
            batch = x.shape[0] if x.shape[0] is not None else tf.shape(x)[0]
            box = tf.reshape(self.box_head(self.box_tower(x, level, bn_training)),
                             [batch, -1, opts.box_code_size])
            if opts.box_encodings_clip_range is not None:
                box = tf.clip_by_value(box, *opts.box_encodings_clip_range)
            class_net = self.class_tower(x, level, bn_training)
            if opts.use_dropout and training:
                class_net = tf.nn.dropout(class_net, rate=1.0 - opts.dropout_keep_probability)
            classes.append(tf.reshape(self.class_head(class_net),
                                      [batch, -1, self.num_class_slots]))
            boxes.append(box)
        return tf.concat(boxes, axis=1), tf.concat(classes, axis=1)
