"""EfficientDet's BiFPN as the TF2 API builds it (``KerasBiFpnFeatureMaps``).

Facts (tensorflow/models ``research/object_detection/models/
bidirectional_feature_pyramid_generators.py`` and ``utils/bifpn_utils.py``):

- Inputs are the backbone levels ``min_level..input_max_level`` (nodes ``0_up_lvl_<l>``);
  levels above come from the one below by resampling only (no combine, no post-combine).
- Each iteration ``i`` (1-based) has a top-down pass ``i_dn_lvl_<l>`` for l = max-1 .. min
  (inputs: the level's node of the previous bottom-up pass, except the min level after the
  first iteration, which takes the previous top-down node, and the node just made) and a
  bottom-up pass ``i_up_lvl_<l>`` for l = min+1 .. max (inputs: the previous bottom-up node of
  the level, this pass's top-down node of the level except at max, and the node just made).
- An input is resampled to the node's level: a 1x1 conv (bias as the hyperparams say) and
  batch norm, no activation, *before* resampling, whenever its channels differ from
  ``num_filters`` (backbone inputs always count as different); then max-pooling (kernel
  stride + 1, 'same') down, or nearest-neighbour up.
- Several inputs are combined by ``fast_attention`` (``relu(w) / (sum relu(w) + 1e-4)``
  weighted sum, w initialised to 1), ``attention`` (``tf.nn.softmax`` of the ``[inputs, 1]``
  weights over their *last* axis, as ``BiFPNCombineLayer`` calls it: every weight is 1, a
  plain sum), ``weighted_sum`` or ``sum``; then swish, a 3x3 separable conv and batch norm
  (the activation comes first).
- The outputs are the last ``max - min + 1`` nodes, levels min..max.

Checkpoint paths of the layers (``KerasBiFpnFeatureMaps`` attributes, for the TF2 key
mapping): ``node_input_blocks/<node>/<input>/1/<0 conv | 1 batch norm>``,
``node_combine_op/<node>/bifpn_combine_weights``, ``node_post_combine_block/<node>/<1 conv | 2
batch norm>``; Keras names ``<scope>/node_<NN>/<node name>/...``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import tensorflow as tf

from odflow.model.hyperparams import ConvHyperparams
from odflow.model.keras_layers import KerasBatchNorm, KerasConv, activate, keras_l2

FAST_ATTENTION_EPSILON = 1e-4
COMBINE_METHODS = ("fast_attention", "attention", "weighted_sum", "sum")


@dataclass
class NodeSpec:
    name: str
    level: int
    inputs: list[str]
    combine: bool = True  # False for the extra input levels (one input, no post-combine)


def node_specs(num_iterations: int, min_level: int, max_level: int,
               input_max_level: int) -> list[NodeSpec]:
    """The BiFPN's nodes in creation (and evaluation) order."""
    nodes: list[NodeSpec] = []
    for level in range(input_max_level + 1, max_level + 1):
        nodes.append(NodeSpec(f"0_up_lvl_{level}", level, [f"0_up_lvl_{level - 1}"], False))
    for i in range(1, num_iterations + 1):
        for level in reversed(range(min_level, max_level)):
            first = (f"{i - 1}_up_lvl_{level}" if level > min_level or i == 1
                     else f"{i - 1}_dn_lvl_{level}")
            # The node just made: upstream takes the last extra level node, which does not
            # exist when the backbone gives every level (max_level <= 5; upstream fails
            # there); the max-level input is that node's place.
            last = nodes[-1].name if nodes else f"0_up_lvl_{max_level}"
            nodes.append(NodeSpec(f"{i}_dn_lvl_{level}", level, [first, last]))
        for level in range(min_level + 1, max_level + 1):
            inputs = [f"{i - 1}_up_lvl_{level}"]
            if level < max_level:
                inputs.append(f"{i}_dn_lvl_{level}")
            inputs.append(nodes[-1].name)
            nodes.append(NodeSpec(f"{i}_up_lvl_{level}", level, inputs))
    return nodes


def nearest_upsample(x: tf.Tensor, scale: int) -> tf.Tensor:
    """Each pixel repeated ``scale`` x ``scale`` times (the API's reshape-and-broadcast
    ``nearest_neighbor_upsampling``)."""
    shape = tf.shape(x)
    h, w, c = x.shape[1], x.shape[2], x.shape[3]
    h = shape[1] if h is None else h
    w = shape[2] if w is None else w
    y = tf.reshape(x, [shape[0], h, 1, w, 1, c]) * tf.ones([1, 1, scale, 1, scale, 1], x.dtype)
    return tf.reshape(y, [shape[0], h * scale, w * scale, c])


@dataclass
class _InputBlock:
    source: int  # index into the list of all nodes (backbone inputs first)
    from_level: int
    to_level: int
    conv: KerasConv | None = None
    norm: KerasBatchNorm | None = None

    def __call__(self, x: tf.Tensor, bn_training: bool) -> tf.Tensor:
        if self.conv is not None:
            x = self.conv(x)
            if self.norm is not None:
                x = self.norm(x, bn_training)
        if self.to_level > self.from_level:
            stride = 2 ** (self.to_level - self.from_level)
            x = tf.nn.max_pool2d(x, stride + 1, stride, "SAME")
        elif self.to_level < self.from_level:
            x = nearest_upsample(x, 2 ** (self.from_level - self.to_level))
        return x


@dataclass
class _Node:
    spec: NodeSpec
    inputs: list[_InputBlock] = field(default_factory=list)
    combine_weights: tf.Variable | None = None
    conv: KerasConv | None = None
    norm: KerasBatchNorm | None = None


class BiFpn(tf.Module):
    """``__call__({level: backbone map}, bn_training) -> [maps of levels min..max]``."""

    def __init__(self, scope: str, input_depths: dict[int, int], min_level: int,
                 max_level: int, num_iterations: int, num_filters: int, combine_method: str,
                 hyperparams: ConvHyperparams) -> None:
        super().__init__(name=None)
        if combine_method not in COMBINE_METHODS:
            raise ValueError(f"unknown BiFPN combine method {combine_method!r}")
        self.scope = scope
        self.min_level, self.max_level = min_level, max_level
        self.combine_method = combine_method
        self.num_filters = num_filters
        input_max_level = max(input_depths)
        self.input_levels = list(range(min_level, min(max_level, input_max_level) + 1))
        names = [f"0_up_lvl_{level}" for level in self.input_levels]
        levels = list(self.input_levels)
        channels: list[int | None] = [None] * len(names)  # backbone maps: always projected
        init = hyperparams.initializer.make()
        reg = keras_l2(hyperparams)
        use_bias = hyperparams.batch_norm is None or hyperparams.force_use_bias
        self.nodes: list[_Node] = []
        for index, spec in enumerate(node_specs(num_iterations, min_level, max_level,
                                                input_max_level)):
            node = _Node(spec)
            prefix = f"{scope}/node_{index:02d}/{spec.name}"
            for input_name in spec.inputs:
                source = names.index(input_name)
                block = _InputBlock(source, levels[source], spec.level)
                if channels[source] != num_filters:
                    name = f"{prefix}/input_{input_name}/1x1_pre_sample"
                    in_depth = channels[source] or input_depths[levels[source]]
                    block.conv = KerasConv(f"{name}/conv", "conv", 1, in_depth, num_filters,
                                           use_bias=use_bias, initializer=init,
                                           regularizer_weight=reg)
                    if hyperparams.batch_norm is not None:
                        block.norm = KerasBatchNorm(f"{name}/batchnorm", num_filters,
                                                    hyperparams.batch_norm)
                node.inputs.append(block)
            if spec.combine and len(spec.inputs) > 1 and combine_method != "sum":
                node.combine_weights = tf.Variable(
                    tf.ones([len(spec.inputs), 1]),
                    name=f"{prefix}/combine/bifpn_combine_weights")
            if spec.combine:
                node.conv = KerasConv(f"{prefix}/post_combine/separable_conv", "separable", 3,
                                      num_filters, num_filters, use_bias=use_bias,
                                      initializer=init, regularizer_weight=reg)
                if hyperparams.batch_norm is not None:
                    node.norm = KerasBatchNorm(f"{prefix}/post_combine/batchnorm", num_filters,
                                               hyperparams.batch_norm)
            self.nodes.append(node)
            names.append(spec.name)
            levels.append(spec.level)
            channels.append(num_filters)
        self.activation = hyperparams.activation

    def units(self) -> list:
        units: list = []
        for node in self.nodes:
            for block in node.inputs:
                units += [u for u in (block.conv, block.norm) if u is not None]
            units += [u for u in (node.conv, node.norm) if u is not None]
        return units

    def _combine(self, node: _Node, maps: list[tf.Tensor]) -> tf.Tensor:
        if len(maps) == 1:
            return maps[0]
        if self.combine_method == "sum":
            return tf.add_n(maps)
        w = node.combine_weights
        if self.combine_method == "fast_attention":
            w = tf.nn.relu(w)
            w = w / (tf.reduce_sum(w) + FAST_ATTENTION_EPSILON)
        elif self.combine_method == "attention":
            # Upstream's softmax runs over the last axis, of size 1: each weight becomes 1
            # whatever its value (kept so that its checkpoints give its outputs).
            w = tf.nn.softmax(w, axis=-1)
        return tf.squeeze(tf.linalg.matmul(tf.stack(maps, axis=-1), w), axis=[-1])

    def __call__(self, features: dict[int, tf.Tensor], bn_training: bool = False
                 ) -> list[tf.Tensor]:
        maps = [features[level] for level in self.input_levels]
        for node in self.nodes:
            x = self._combine(node, [block(maps[block.source], bn_training)
                                     for block in node.inputs])
            if node.conv is not None:
                x = self.conv_after(node, x, bn_training)
            maps.append(x)
        return maps[-(self.max_level - self.min_level + 1):]

    def conv_after(self, node: _Node, x: tf.Tensor, bn_training: bool) -> tf.Tensor:
        x = node.conv(activate(x, self.activation))
        return node.norm(x, bn_training) if node.norm is not None else x
