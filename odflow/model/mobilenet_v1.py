"""The ``ssd_mobilenet_v1`` feature extractor: MobileNet v1 plus the four extra SSD layers.

Names follow the TF1 checkpoints exactly (``FeatureExtractor/MobilenetV1/Conv2d_0``,
``..._depthwise``, ``..._pointwise``, ``Conv2d_13_pointwise_1_Conv2d_2_1x1_256``, ...), so the
zoo's checkpoint (and an ImageNet ``MobilenetV1/...`` one) restores by name.
"""

from __future__ import annotations

import tensorflow as tf

from odflow.model.feature_maps import ExtractorOptions, ExtraFeatureMaps
from odflow.model.hyperparams import ConvHyperparams
from odflow.model.layers import ConvUnit, named_variables_of

SCOPE = "FeatureExtractor/MobilenetV1"

# (kind, stride, depth) for Conv2d_0 .. Conv2d_13, as in the MobileNet v1 paper.
_CONV_DEFS: tuple[tuple[str, int, int], ...] = (
    ("conv", 2, 32),
    ("sep", 1, 64), ("sep", 2, 128), ("sep", 1, 128), ("sep", 2, 256), ("sep", 1, 256),
    ("sep", 2, 512), ("sep", 1, 512), ("sep", 1, 512), ("sep", 1, 512), ("sep", 1, 512),
    ("sep", 1, 512), ("sep", 2, 1024), ("sep", 1, 1024),
)
# The SSD feature-map layout: two base layers, then extra layers of these (3x3) depths.
_FROM_LAYERS = ("Conv2d_11_pointwise", "Conv2d_13_pointwise")
_EXTRA_DEPTHS = (512, 256, 256, 128)


class SSDMobileNetV1FeatureExtractor(tf.Module):
    """``__call__(images [B,H,W,3] in [-1,1], training) -> list of feature maps``.

    ``base_hyperparams`` apply to Conv2d_0..13, ``extra_hyperparams`` to the extra layers
    (the builder decides which, as TF1 did with override_base_feature_extractor_hyperparams).
    """

    def __init__(self, options: ExtractorOptions, base_hyperparams: ConvHyperparams,
                 extra_hyperparams: ConvHyperparams) -> None:
        super().__init__(name=None)
        self.options = options
        pad = options.use_explicit_padding
        self.base: list[tuple[str, ConvUnit]] = []
        in_depth = 3
        for index, (kind, stride, depth) in enumerate(_CONV_DEFS):
            out = self.depth(depth)
            if kind == "conv":
                name = f"Conv2d_{index}"
                self.base.append((name, ConvUnit(f"{SCOPE}/{name}", 3, in_depth, out, stride,
                                                 base_hyperparams, explicit_padding=pad)))
            else:
                dw = f"Conv2d_{index}_depthwise"
                pw = f"Conv2d_{index}_pointwise"
                self.base.append((dw, ConvUnit(f"{SCOPE}/{dw}", 3, in_depth, None, stride,
                                               base_hyperparams, depthwise=True,
                                               explicit_padding=pad)))
                self.base.append((pw, ConvUnit(f"{SCOPE}/{pw}", 1, in_depth, out, 1,
                                               base_hyperparams)))
            in_depth = out

        self.num_base_maps = min(options.num_layers, len(_FROM_LAYERS))
        self.feature_depths = [self.depth(_CONV_DEFS[11][2]), self.depth(_CONV_DEFS[13][2])]
        self.feature_depths = self.feature_depths[:self.num_base_maps]
        base_name = _FROM_LAYERS[self.num_base_maps - 1]
        num_extras = max(0, options.num_layers - len(_FROM_LAYERS))
        self.extras = ExtraFeatureMaps(
            SCOPE, base_name, len(_FROM_LAYERS), in_depth, _EXTRA_DEPTHS[:num_extras],
            self.depth, extra_hyperparams, use_depthwise=options.use_depthwise,
            use_explicit_padding=options.use_explicit_padding)
        self.feature_depths += self.extras.depths

    def depth(self, d: int) -> int:
        return max(int(d * self.options.depth_multiplier), self.options.min_depth)

    def units(self) -> list[ConvUnit]:
        return [unit for _, unit in self.base] + self.extras.units()

    def named_variables(self) -> dict[str, tf.Variable]:
        return named_variables_of(self.units())

    def base_endpoints(self, images: tf.Tensor, training: bool = False) -> dict[str, tf.Tensor]:
        """MobileNet v1's layers by name (``Conv2d_5_pointwise``, ...), as slim's end points;
        the FPN extractor takes its pyramid inputs from here."""
        x = pad_to_multiple(images, self.options.pad_to_multiple)
        endpoints: dict[str, tf.Tensor] = {}
        for name, unit in self.base:
            x = unit(x, training)
            endpoints[name] = x
        return endpoints

    def __call__(self, images: tf.Tensor, training: bool = False) -> list[tf.Tensor]:
        endpoints = self.base_endpoints(images, training)
        features = [endpoints[name] for name in _FROM_LAYERS[:self.num_base_maps]]
        return features + self.extras(features[-1], training)

    def feature_map_shapes(self, height: int, width: int) -> list[tuple[int, int]]:
        """Spatial sizes of the feature maps for an input size (SAME or fixed padding both
        give ceil(n / stride))."""
        def halve(n: int) -> int:
            return -(-n // 2)
        m = self.options.pad_to_multiple
        h, w = -(-height // m) * m, -(-width // m) * m
        shapes = []
        for name, unit in self.base:
            if unit.stride == 2:
                h, w = halve(h), halve(w)
            if name in _FROM_LAYERS[:self.num_base_maps]:
                shapes.append((h, w))
        h, w = shapes[-1]
        for _ in self.extras.layers:
            h, w = halve(h), halve(w)
            shapes.append((h, w))
        return shapes


def pad_to_multiple(images: tf.Tensor, multiple: int) -> tf.Tensor:
    """Zero-pad bottom/right so height and width are multiples of ``multiple`` (TF1's
    ``ops.pad_to_multiple``)."""
    if multiple <= 1:
        return images
    shape = tf.shape(images)
    height = (shape[1] + multiple - 1) // multiple * multiple
    width = (shape[2] + multiple - 1) // multiple * multiple
    return tf.image.pad_to_bounding_box(images, 0, 0, height, width)
