"""An SSD feature extractor over a MobileNet v2/v3 layer spec (TF1 ``mobilenet_base`` +
``multi_resolution_feature_maps``), shared by ``mobilenet_v2`` and ``mobilenet_v3``.

The spec lists slim's layers in order (``layer_1`` is the first); SSD takes the expansion
output of one block and the output of a later layer, then grows extra maps from the latter.
Layer names follow slim's unique naming (``Conv``, ``Conv_1``, ``expanded_conv``,
``expanded_conv_1``, ...), so checkpoints restore by name.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import tensorflow as tf

from odflow.model.feature_maps import ExtractorOptions, ExtraFeatureMaps
from odflow.model.hyperparams import ConvHyperparams
from odflow.model.inverted_residual import ExpandedConv, make_divisible, with_activation
from odflow.model.layers import ConvUnit, named_variables_of
from odflow.model.mobilenet_v1 import pad_to_multiple

# Depths of the four extra maps (TF1 feature_map_layout layer_depth [-1, -1, 512, 256, 256, 128]).
EXTRA_DEPTHS = (512, 256, 256, 128)


@dataclass(frozen=True)
class Layer:
    """One entry of a slim conv_defs spec: a plain conv (``expansion is None``) or an
    ``expanded_conv`` block whose expansion is ``expansion * input depth`` (rounded to 8)."""

    out: int
    kernel: int = 3
    stride: int = 1
    expansion: float | None = 6.0
    activation: str = "relu6"
    squeeze_excite: bool = False
    expansion_divisor: int = 8  # slim's expand_input_by_factor(n, divisible_by)


def conv(out: int, kernel: int, stride: int, activation: str) -> Layer:
    return Layer(out, kernel, stride, None, activation)


class MobilenetSsdFeatureExtractor(tf.Module):
    """``__call__(images [B,H,W,3] in [-1,1], training) -> list of feature maps``.

    ``taps``: the 1-based layer whose expansion output is the first map and the layer whose
    output is the second (TF1 ``from_layer`` ``layer_15/expansion_output``, ``layer_19``).
    """

    def __init__(self, scope: str, spec: Sequence[Layer], taps: tuple[int, int],
                 options: ExtractorOptions, base_hyperparams: ConvHyperparams,
                 extra_hyperparams: ConvHyperparams) -> None:
        super().__init__(name=None)
        self.options = options
        self.taps = taps
        pad = options.use_explicit_padding
        self.layers: list[ConvUnit | ExpandedConv] = []
        in_depth, convs, blocks = 3, 0, 0
        for layer in spec[:taps[1]]:
            out = make_divisible(layer.out * options.depth_multiplier, 8, options.min_depth)
            if layer.expansion is None:
                name = f"{scope}/Conv" + (f"_{convs}" if convs else "")
                convs += 1
                unit = ConvUnit(name, layer.kernel, in_depth, out, layer.stride,
                                with_activation(base_hyperparams, layer.activation),
                                explicit_padding=pad)
            else:
                name = f"{scope}/expanded_conv" + (f"_{blocks}" if blocks else "")
                blocks += 1
                unit = ExpandedConv(name, in_depth, out,
                                    make_divisible(in_depth * layer.expansion,
                                                   layer.expansion_divisor),
                                    layer.kernel, layer.stride, layer.activation,
                                    base_hyperparams, squeeze_excite=layer.squeeze_excite,
                                    explicit_padding=pad)
            self.layers.append(unit)
            in_depth = out
        first = self.layers[taps[0] - 1]
        if not isinstance(first, ExpandedConv) or first.expand is None:
            raise ValueError(f"layer_{taps[0]} has no expansion output")
        self.num_base_maps = min(options.num_layers, 2)
        self.feature_depths = [first.expansion_depth, in_depth][:self.num_base_maps]
        num_extras = max(0, options.num_layers - 2)

        def depth(d: int) -> int:
            return max(int(d * options.depth_multiplier), options.min_depth)

        base_name = f"layer_{taps[self.num_base_maps - 1]}"
        extra_in = self.feature_depths[-1]
        self.extras = ExtraFeatureMaps(scope, base_name, 2, extra_in,
                                       EXTRA_DEPTHS[:num_extras], depth, extra_hyperparams,
                                       use_depthwise=options.use_depthwise,
                                       use_explicit_padding=pad)
        self.feature_depths += self.extras.depths

    def units(self) -> list[ConvUnit]:
        units: list[ConvUnit] = []
        for layer in self.layers:
            units += layer.units() if isinstance(layer, ExpandedConv) else [layer]
        return units + self.extras.units()

    def named_variables(self) -> dict[str, tf.Variable]:
        return named_variables_of(self.units())

    def base_endpoints(self, images: tf.Tensor, training: bool = False) -> dict[str, tf.Tensor]:
        """Every base layer's output by slim's end point name (``layer_1`` .. ``layer_<taps[1]>``);
        the FPN extractors take their pyramid inputs from here."""
        x = pad_to_multiple(images, self.options.pad_to_multiple)
        endpoints: dict[str, tf.Tensor] = {}
        for number, layer in enumerate(self.layers, start=1):
            if isinstance(layer, ExpandedConv):
                x, _ = layer(x, training)
            else:
                x = layer(x, training)
            endpoints[f"layer_{number}"] = x
        return endpoints

    def __call__(self, images: tf.Tensor, training: bool = False) -> list[tf.Tensor]:
        x = pad_to_multiple(images, self.options.pad_to_multiple)
        features: list[tf.Tensor] = []
        for number, layer in enumerate(self.layers, start=1):
            if isinstance(layer, ExpandedConv):
                x, expansion_output = layer(x, training)
                if number == self.taps[0]:
                    features.append(expansion_output)
            else:
                x = layer(x, training)
        if self.num_base_maps == 2:
            features.append(x)
        return features + self.extras(features[-1], training)

    def feature_map_shapes(self, height: int, width: int) -> list[tuple[int, int]]:
        """Spatial sizes of the maps (SAME or fixed padding both give ceil(n / stride))."""
        m = self.options.pad_to_multiple
        h, w = -(-height // m) * m, -(-width // m) * m
        shapes = []
        for number, layer in enumerate(self.layers, start=1):
            if number == self.taps[0]:
                shapes.append((h, w))  # the expansion output comes before the stride
            if layer.stride == 2:
                h, w = -(-h // 2), -(-w // 2)
        shapes.append((h, w))
        shapes = shapes[:self.num_base_maps]
        for _ in self.extras.layers:
            h, w = shapes[-1]
            shapes.append((-(-h // 2), -(-w // 2)))
        return shapes
