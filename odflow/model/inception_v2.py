"""The ``ssd_inception_v2`` feature extractor: slim's Inception v2 up to Mixed_5c, then the
four extra SSD layers.

Layer order, depths, strides and scope names follow TF1 slim's ``inception_v2_base`` (the
version with ``use_separable_conv``: the 7x7 stem is a separable conv whose depthwise part
multiplies the 3 input channels by ``min(int(depth(64) / 3), 8)``) and the TF1 API's
``SSDInceptionV2FeatureExtractor`` (feature maps from Mixed_4c and Mixed_5c, extra layers of
depths 512, 256, 256, 128 built by ``multi_resolution_feature_maps``).  So the zoo's
``ssd_inception_v2_coco`` checkpoint restores by name, and an ImageNet ``InceptionV2/...``
one restores as a classification checkpoint.

All convolutions and pools pad SAME, as slim's arg scope set them; only the extra layers
honour ``use_explicit_padding`` (the base network had no such option).  The TF1 API used the
config's ``conv_hyperparams`` for the base network as well (Inception v2 had no arg scope of
its own there), so there is one set of hyperparameters; slim's per-layer initialiser
overrides (truncated normal of stddev 1.0, 0.1 or 0.09) are kept for the starting values.
"""

from __future__ import annotations

import dataclasses

import tensorflow as tf

from odflow.model.feature_maps import ExtractorOptions, ExtraFeatureMaps
from odflow.model.hyperparams import ConvHyperparams, InitializerParams
from odflow.model.layers import ConvUnit, named_variables_of
from odflow.model.mobilenet_v1 import pad_to_multiple

SCOPE = "FeatureExtractor/InceptionV2"

# Mixed blocks as in slim: (name, stride-1 block depths or stride-2 reduction depths).
# Stride-1 blocks: b0 1x1; b1 1x1 -> 3x3; b2 1x1 -> 3x3 -> 3x3; b3 pool -> 1x1.
# ``pool`` is the pooling of branch 3 (slim used max pooling in Mixed_5c only).
_MIXED = (
    ("Mixed_3b", (64, (64, 64), (64, 96, 96), ("avg", 32))),
    ("Mixed_3c", (64, (64, 96), (64, 96, 96), ("avg", 64))),
    ("Mixed_4a", ((128, 160), (64, 96, 96))),
    ("Mixed_4b", (224, (64, 96), (96, 128, 128), ("avg", 128))),
    ("Mixed_4c", (192, (96, 128), (96, 128, 128), ("avg", 128))),
    ("Mixed_4d", (160, (128, 160), (128, 160, 160), ("avg", 96))),
    ("Mixed_4e", (96, (128, 192), (160, 192, 192), ("avg", 96))),
    ("Mixed_5a", ((128, 192), (192, 256, 256))),
    ("Mixed_5b", (352, (192, 320), (160, 224, 224), ("avg", 128))),
    ("Mixed_5c", (352, (192, 320), (192, 224, 224), ("max", 128))),
)
_FROM_LAYERS = ("Mixed_4c", "Mixed_5c")
_EXTRA_DEPTHS = (512, 256, 256, 128)


def _with_stddev(hyperparams: ConvHyperparams, stddev: float) -> ConvHyperparams:
    """slim's explicit ``weights_initializer=trunc_normal(stddev)`` on one layer."""
    return dataclasses.replace(hyperparams,
                               initializer=InitializerParams("truncated_normal", stddev=stddev))


class SeparableConvUnit(ConvUnit):
    """slim's ``separable_conv2d`` with a depthwise multiplier: ``depthwise_weights``
    ``[k,k,in,multiplier]`` (strided), then ``pointwise_weights`` ``[1,1,in*multiplier,out]``,
    then batch norm and activation.  Both weights are regularised, as slim did."""

    def __init__(self, scope: str, kernel_size: int, in_depth: int, out_depth: int,
                 multiplier: int, stride: int, hyperparams: ConvHyperparams) -> None:
        super().__init__(scope, 1, in_depth * multiplier, out_depth, 1, hyperparams)
        init = hyperparams.initializer.make()
        del self._named[self.weights_name]
        self.weights_name = f"{scope}/pointwise_weights"
        self.weights = tf.Variable(self.weights.read_value(), name=self.weights_name)
        self._named[self.weights_name] = self.weights
        name = f"{scope}/depthwise_weights"
        self.depthwise_weights = tf.Variable(
            init([kernel_size, kernel_size, in_depth, multiplier]), name=name)
        self._named[name] = self.depthwise_weights
        self.spatial_stride = stride

    def regularization(self) -> tf.Tensor | None:
        terms = [self.hyperparams.regularization(w)
                 for w in (self.depthwise_weights, self.weights)]
        terms = [t for t in terms if t is not None]
        return tf.add_n(terms) if terms else None

    def __call__(self, x: tf.Tensor, training: bool = False) -> tf.Tensor:
        s = self.spatial_stride
        x = tf.nn.depthwise_conv2d(x, self.depthwise_weights, [1, s, s, 1], "SAME")
        return super().__call__(x, training)


def _pool(kind: str, x: tf.Tensor, stride: int) -> tf.Tensor:
    # SAME average pooling counts only the valid pixels, as slim's (tf.nn's) did.
    pool = tf.nn.max_pool2d if kind == "max" else tf.nn.avg_pool2d
    return pool(x, 3, stride, "SAME")


class _Mixed(tf.Module):
    """One Inception block: parallel branches concatenated on channels."""

    def __init__(self, name: str, spec: tuple, in_depth: int, depth, hp: ConvHyperparams
                 ) -> None:
        super().__init__(name=None)
        self.block = name
        scope = f"{SCOPE}/{name}"
        self.reduction = len(spec) == 2
        hp09, hp01 = _with_stddev(hp, 0.09), _with_stddev(hp, 0.1)
        self.branches: list[list[ConvUnit]] = []
        if self.reduction:
            (b0_in, b0_out), (b1_in, b1_mid, b1_out) = spec
            self.branches.append([
                ConvUnit(f"{scope}/Branch_0/Conv2d_0a_1x1", 1, in_depth, depth(b0_in), 1, hp09),
                ConvUnit(f"{scope}/Branch_0/Conv2d_1a_3x3", 3, depth(b0_in), depth(b0_out), 2,
                         hp)])
            self.branches.append([
                ConvUnit(f"{scope}/Branch_1/Conv2d_0a_1x1", 1, in_depth, depth(b1_in), 1, hp09),
                ConvUnit(f"{scope}/Branch_1/Conv2d_0b_3x3", 3, depth(b1_in), depth(b1_mid), 1,
                         hp),
                ConvUnit(f"{scope}/Branch_1/Conv2d_1a_3x3", 3, depth(b1_mid), depth(b1_out), 2,
                         hp)])
            self.pool_kind = "max"  # Branch_2/MaxPool_1a_3x3, stride 2
            self.out_depth = depth(b0_out) + depth(b1_out) + in_depth
            return
        b0, (b1_in, b1_out), (b2_in, b2_mid, b2_out), (pool_kind, b3) = spec
        self.branches.append([
            ConvUnit(f"{scope}/Branch_0/Conv2d_0a_1x1", 1, in_depth, depth(b0), 1, hp)])
        self.branches.append([
            ConvUnit(f"{scope}/Branch_1/Conv2d_0a_1x1", 1, in_depth, depth(b1_in), 1, hp09),
            ConvUnit(f"{scope}/Branch_1/Conv2d_0b_3x3", 3, depth(b1_in), depth(b1_out), 1, hp)])
        self.branches.append([
            ConvUnit(f"{scope}/Branch_2/Conv2d_0a_1x1", 1, in_depth, depth(b2_in), 1, hp09),
            ConvUnit(f"{scope}/Branch_2/Conv2d_0b_3x3", 3, depth(b2_in), depth(b2_mid), 1, hp),
            ConvUnit(f"{scope}/Branch_2/Conv2d_0c_3x3", 3, depth(b2_mid), depth(b2_out), 1,
                     hp)])
        self.pool_kind = pool_kind  # Branch_3: pool (stride 1), then this 1x1
        self.branch3 = ConvUnit(f"{scope}/Branch_3/Conv2d_0b_1x1", 1, in_depth, depth(b3), 1,
                                hp01)
        self.out_depth = depth(b0) + depth(b1_out) + depth(b2_out) + depth(b3)

    def units(self) -> list[ConvUnit]:
        units = [u for branch in self.branches for u in branch]
        return units if self.reduction else units + [self.branch3]

    def __call__(self, x: tf.Tensor, training: bool) -> tf.Tensor:
        outputs = []
        for branch in self.branches:
            y = x
            for unit in branch:
                y = unit(y, training)
            outputs.append(y)
        if self.reduction:
            outputs.append(_pool("max", x, 2))
        else:
            outputs.append(self.branch3(_pool(self.pool_kind, x, 1), training))
        return tf.concat(outputs, axis=3)


class SSDInceptionV2FeatureExtractor(tf.Module):
    """``__call__(images [B,H,W,3] in [-1,1], training) -> list of feature maps``."""

    def __init__(self, options: ExtractorOptions, hyperparams: ConvHyperparams) -> None:
        super().__init__(name=None)
        self.options = options
        depth = self.depth
        stem_depth = depth(64)
        self.stem = [
            SeparableConvUnit(f"{SCOPE}/Conv2d_1a_7x7", 7, 3, stem_depth,
                              min(int(stem_depth / 3), 8), 2, _with_stddev(hyperparams, 1.0)),
            # MaxPool_2a_3x3 (stride 2) comes here
            ConvUnit(f"{SCOPE}/Conv2d_2b_1x1", 1, stem_depth, depth(64), 1,
                     _with_stddev(hyperparams, 0.1)),
            ConvUnit(f"{SCOPE}/Conv2d_2c_3x3", 3, depth(64), depth(192), 1, hyperparams),
            # MaxPool_3a_3x3 (stride 2) comes here
        ]
        in_depth = depth(192)
        self.mixed: list[_Mixed] = []
        for name, spec in _MIXED:
            block = _Mixed(name, spec, in_depth, depth, hyperparams)
            self.mixed.append(block)
            in_depth = block.out_depth
            if name == _FROM_LAYERS[0]:
                mixed_4c_depth = in_depth

        self.num_base_maps = min(options.num_layers, len(_FROM_LAYERS))
        self.feature_depths = [mixed_4c_depth, in_depth][:self.num_base_maps]
        if self.num_base_maps == 1:
            in_depth = mixed_4c_depth
        base_name = _FROM_LAYERS[self.num_base_maps - 1]
        num_extras = max(0, options.num_layers - len(_FROM_LAYERS))
        self.extras = ExtraFeatureMaps(
            SCOPE, base_name, len(_FROM_LAYERS), in_depth, _EXTRA_DEPTHS[:num_extras], depth,
            hyperparams, use_depthwise=options.use_depthwise,
            use_explicit_padding=options.use_explicit_padding)
        self.feature_depths += self.extras.depths

    def depth(self, d: int) -> int:
        return max(int(d * self.options.depth_multiplier), self.options.min_depth)

    def _base_blocks(self) -> list[_Mixed]:
        """The Mixed blocks that are computed: up to Mixed_4c when only one map is used."""
        last = _FROM_LAYERS[self.num_base_maps - 1]
        names = [block.block for block in self.mixed]
        return self.mixed[:names.index(last) + 1]

    def units(self) -> list[ConvUnit]:
        units = list(self.stem)
        for block in self._base_blocks():
            units += block.units()
        return units + self.extras.units()

    def named_variables(self) -> dict[str, tf.Variable]:
        return named_variables_of(self.units())

    def __call__(self, images: tf.Tensor, training: bool = False) -> list[tf.Tensor]:
        x = pad_to_multiple(images, self.options.pad_to_multiple)
        x = self.stem[0](x, training)
        x = _pool("max", x, 2)
        x = self.stem[2](self.stem[1](x, training), training)
        x = _pool("max", x, 2)
        features: list[tf.Tensor] = []
        for block in self._base_blocks():
            x = block(x, training)
            if block.block in _FROM_LAYERS:
                features.append(x)
        return features + self.extras(x, training)

    def feature_map_shapes(self, height: int, width: int) -> list[tuple[int, int]]:
        """Spatial sizes of the maps: every stride-2 op pads SAME (or fixed), so each halves
        with rounding up; Mixed_4c is at 1/16 (four halvings), Mixed_5c at 1/32."""
        def halve(n: int, times: int = 1) -> int:
            for _ in range(times):
                n = -(-n // 2)
            return n
        m = self.options.pad_to_multiple
        h, w = -(-height // m) * m, -(-width // m) * m
        shapes = [(halve(h, 4), halve(w, 4)), (halve(h, 5), halve(w, 5))][:self.num_base_maps]
        h, w = shapes[-1]
        for _ in self.extras.layers:
            h, w = halve(h), halve(w)
            shapes.append((h, w))
        return shapes
