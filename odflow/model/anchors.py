"""Anchor generators: the fixed prior boxes the box predictor's outputs are relative to.

The order of the anchors is part of the checkpoint contract: the box predictor reshapes its
``[B, h, w, anchors * 4]`` output to ``[B, h * w * anchors, 4]``, so anchor ``i`` must be the
one that output row ``i`` was trained against.  Like the TF Object Detection API we emit, per
feature map (layer), the cells in row-major order (y, then x) with the anchors of a cell
innermost, and concatenate the layers.  Anchors are normalised ``[ymin, xmin, ymax, xmax]`` and
never clipped (boxes of the coarse layers reach outside the image).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import tensorflow as tf

from odflow.errors import OdflowError

FeatureMapShapes = Sequence[tuple[int, int]]


def tile_anchors(
    grid_height: int,
    grid_width: int,
    scales: Sequence[float],
    aspect_ratios: Sequence[float],
    base_anchor_size: tuple[float, float],
    anchor_stride: tuple[float, float],
    anchor_offset: tuple[float, float],
) -> tf.Tensor:
    """One layer's anchors ``[grid_height * grid_width * len(scales), 4]``.

    ``scales`` and ``aspect_ratios`` are paired (anchor ``k`` of a cell has ``scales[k]`` and
    ``aspect_ratios[k]``): height ``s / sqrt(ar) * base_h``, width ``s * sqrt(ar) * base_w``,
    centred at ``offset + index * stride``.
    """
    ratio_sqrts = tf.sqrt(tf.constant(aspect_ratios, tf.float32))
    scales_t = tf.constant(scales, tf.float32)
    heights = scales_t / ratio_sqrts * base_anchor_size[0]
    widths = scales_t * ratio_sqrts * base_anchor_size[1]
    y_centers = tf.range(grid_height, dtype=tf.float32) * anchor_stride[0] + anchor_offset[0]
    x_centers = tf.range(grid_width, dtype=tf.float32) * anchor_stride[1] + anchor_offset[1]
    num = len(scales)
    # [gh, gw, num] grids, then flattened with the anchor index innermost.
    yc = tf.broadcast_to(y_centers[:, None, None], [grid_height, grid_width, num])
    xc = tf.broadcast_to(x_centers[None, :, None], [grid_height, grid_width, num])
    hh = tf.broadcast_to(heights[None, None, :], [grid_height, grid_width, num])
    ww = tf.broadcast_to(widths[None, None, :], [grid_height, grid_width, num])
    boxes = tf.stack([yc - 0.5 * hh, xc - 0.5 * ww, yc + 0.5 * hh, xc + 0.5 * ww], axis=-1)
    return tf.reshape(boxes, [-1, 4])


def _check_layers(name: str, expected: int, shapes: FeatureMapShapes) -> None:
    if len(shapes) != expected:
        raise OdflowError(
            f"{name} describes {expected} anchor layers but the feature extractor gives "
            f"{len(shapes)} feature maps; set its num_layers (or list lengths) to {len(shapes)}"
        )


def _static_shape(shape: tuple[int, int]) -> tuple[int, int]:
    height, width = (int(v) for v in shape)
    return height, width


class SsdAnchorGenerator:
    """``ssd_anchor_generator``: per-layer scales interpolated between min and max scale.

    Layer 0 with ``reduce_boxes_in_lowest_layer`` has (0.1, 1.0), (s0, 2.0), (s0, 0.5); every
    other layer has each aspect ratio at scale ``s_k`` and, when
    ``interpolated_scale_aspect_ratio > 0``, one more anchor of scale ``sqrt(s_k * s_{k+1})``
    (``s_{num_layers} = 1``).  ``generate(..., im_height, im_width)`` shrinks the base anchor
    along the longer image side so anchors stay square in pixels on non-square inputs, and
    converts pixel strides/offsets to normalised units, as the API does.
    """

    def __init__(
        self,
        num_layers: int = 6,
        min_scale: float = 0.2,
        max_scale: float = 0.95,
        scales: Sequence[float] | None = None,
        aspect_ratios: Sequence[float] = (1.0, 2.0, 0.5, 3.0, 1.0 / 3),
        interpolated_scale_aspect_ratio: float = 1.0,
        reduce_boxes_in_lowest_layer: bool = True,
        base_anchor_size: tuple[float, float] = (1.0, 1.0),
        anchor_strides: Sequence[tuple[float, float]] | None = None,
        anchor_offsets: Sequence[tuple[float, float]] | None = None,
    ) -> None:
        if num_layers < 1:
            raise OdflowError(f"ssd_anchor_generator.num_layers must be >= 1, got {num_layers}")
        if scales:
            if len(scales) != num_layers:
                raise OdflowError(
                    f"ssd_anchor_generator.scales has {len(scales)} values but num_layers is "
                    f"{num_layers}; give one scale per layer"
                )
            layer_scales = [float(s) for s in scales]
        elif num_layers == 1:
            layer_scales = [float(min_scale)]
        else:
            layer_scales = [
                min_scale + (max_scale - min_scale) * i / (num_layers - 1) for i in range(num_layers)
            ]
        layer_scales.append(1.0)
        for field, values in (("anchor_strides", anchor_strides), ("anchor_offsets", anchor_offsets)):
            if values is not None and len(values) != num_layers:
                raise OdflowError(
                    f"ssd_anchor_generator {field} has {len(values)} entries but num_layers is "
                    f"{num_layers}; give one per layer"
                )
        self.box_specs: list[list[tuple[float, float]]] = []
        for layer in range(num_layers):
            scale, scale_next = layer_scales[layer], layer_scales[layer + 1]
            if layer == 0 and reduce_boxes_in_lowest_layer:
                specs = [(0.1, 1.0), (scale, 2.0), (scale, 0.5)]
            else:
                specs = [(scale, float(ar)) for ar in aspect_ratios]
                if interpolated_scale_aspect_ratio > 0.0:
                    specs.append((math.sqrt(scale * scale_next), interpolated_scale_aspect_ratio))
            if not specs:
                raise OdflowError(
                    f"ssd_anchor_generator gives layer {layer} no anchors: set aspect_ratios or a "
                    "positive interpolated_scale_aspect_ratio"
                )
            self.box_specs.append(specs)
        self.base_anchor_size = (float(base_anchor_size[0]), float(base_anchor_size[1]))
        self.anchor_strides = list(anchor_strides) if anchor_strides is not None else None
        self.anchor_offsets = list(anchor_offsets) if anchor_offsets is not None else None

    @classmethod
    def from_config(cls, config) -> SsdAnchorGenerator:
        """From an ``SsdAnchorGenerator`` message (or an ``AnchorGenerator`` holding one)."""
        if config.DESCRIPTOR.name == "AnchorGenerator":
            if config.WhichOneof("anchor_generator_oneof") != "ssd_anchor_generator":
                raise OdflowError("anchor_generator: expected ssd_anchor_generator")
            config = config.ssd_anchor_generator
        strides = offsets = None
        if len(config.height_stride) != len(config.width_stride):
            raise OdflowError(
                "ssd_anchor_generator.height_stride and width_stride must have the same length"
            )
        if len(config.height_offset) != len(config.width_offset):
            raise OdflowError(
                "ssd_anchor_generator.height_offset and width_offset must have the same length"
            )
        if config.height_stride:
            strides = list(zip(config.height_stride, config.width_stride, strict=True))
        if config.height_offset:
            offsets = list(zip(config.height_offset, config.width_offset, strict=True))
        return cls(
            num_layers=config.num_layers,
            min_scale=config.min_scale,
            max_scale=config.max_scale,
            scales=list(config.scales),
            aspect_ratios=list(config.aspect_ratios),
            interpolated_scale_aspect_ratio=config.interpolated_scale_aspect_ratio,
            reduce_boxes_in_lowest_layer=config.reduce_boxes_in_lowest_layer,
            base_anchor_size=(config.base_anchor_height, config.base_anchor_width),
            anchor_strides=strides,
            anchor_offsets=offsets,
        )

    def num_anchors_per_location(self) -> list[int]:
        return [len(specs) for specs in self.box_specs]

    def generate(
        self, feature_map_shapes: FeatureMapShapes, im_height: int = 1, im_width: int = 1
    ) -> tf.Tensor:
        """Anchors ``[A, 4]`` for static ``(height, width)`` feature map shapes."""
        _check_layers("ssd_anchor_generator", len(self.box_specs), feature_map_shapes)
        if self.anchor_strides is not None and (im_height == 1 or im_width == 1):
            raise ValueError("anchor strides are in pixels: pass im_height and im_width")
        min_side = float(min(im_height, im_width))
        base = (
            min_side / im_height * self.base_anchor_size[0],
            min_side / im_width * self.base_anchor_size[1],
        )
        layers = []
        for index, (shape, specs) in enumerate(zip(feature_map_shapes, self.box_specs, strict=True)):
            height, width = _static_shape(shape)
            if self.anchor_strides is None:
                stride = (1.0 / height, 1.0 / width)
            else:
                stride = (
                    self.anchor_strides[index][0] / im_height,
                    self.anchor_strides[index][1] / im_width,
                )
            if self.anchor_offsets is None:
                offset = (0.5 * stride[0], 0.5 * stride[1])
            else:
                offset = (
                    self.anchor_offsets[index][0] / im_height,
                    self.anchor_offsets[index][1] / im_width,
                )
            scales = [s for s, _ in specs]
            ratios = [r for _, r in specs]
            layers.append(tile_anchors(height, width, scales, ratios, base, stride, offset))
        return tf.concat(layers, axis=0)


class MultiscaleAnchorGenerator:
    """``multiscale_anchor_generator`` (RetinaNet-style): levels ``min_level..max_level``.

    Level ``l`` has stride ``2**l`` pixels and, per cell, for each aspect ratio (outer) and each
    octave scale ``2**(i / scales_per_octave)`` (inner), an anchor of base size
    ``anchor_scale * 2**l`` pixels.  Needs the image size to normalise.
    """

    def __init__(
        self,
        min_level: int = 3,
        max_level: int = 7,
        anchor_scale: float = 4.0,
        aspect_ratios: Sequence[float] = (1.0, 2.0, 0.5),
        scales_per_octave: int = 2,
        normalize_coordinates: bool = True,
    ) -> None:
        if max_level < min_level:
            raise OdflowError(
                f"multiscale_anchor_generator: max_level {max_level} < min_level {min_level}"
            )
        if scales_per_octave < 1 or not aspect_ratios:
            raise OdflowError(
                "multiscale_anchor_generator needs scales_per_octave >= 1 and aspect_ratios"
            )
        self.levels = list(range(min_level, max_level + 1))
        self.anchor_scale = float(anchor_scale)
        octave_scales = [2.0 ** (i / scales_per_octave) for i in range(scales_per_octave)]
        self.scales = [s for _ in aspect_ratios for s in octave_scales]
        self.ratios = [float(r) for r in aspect_ratios for _ in octave_scales]
        self.normalize_coordinates = normalize_coordinates

    @classmethod
    def from_config(cls, config) -> MultiscaleAnchorGenerator:
        return cls(
            min_level=config.min_level,
            max_level=config.max_level,
            anchor_scale=config.anchor_scale,
            aspect_ratios=list(config.aspect_ratios),
            scales_per_octave=config.scales_per_octave,
            normalize_coordinates=config.normalize_coordinates,
        )

    def num_anchors_per_location(self) -> list[int]:
        return [len(self.scales)] * len(self.levels)

    def generate(
        self, feature_map_shapes: FeatureMapShapes, im_height: int = 1, im_width: int = 1
    ) -> tf.Tensor:
        _check_layers("multiscale_anchor_generator", len(self.levels), feature_map_shapes)
        if self.normalize_coordinates and (im_height == 1 or im_width == 1):
            raise ValueError("normalize_coordinates needs im_height and im_width")
        layers = []
        for level, shape in zip(self.levels, feature_map_shapes, strict=True):
            height, width = _static_shape(shape)
            stride = 2.0**level
            offset = (
                stride / 2.0 if im_height % stride == 0 or im_height == 1 else 0.0,
                stride / 2.0 if im_width % stride == 0 or im_width == 1 else 0.0,
            )
            base = self.anchor_scale * stride
            grid = tile_anchors(
                height, width, self.scales, self.ratios, (base, base), (stride, stride), offset
            )
            if self.normalize_coordinates:
                grid = grid / tf.constant([im_height, im_width, im_height, im_width], tf.float32)
            layers.append(grid)
        return tf.concat(layers, axis=0)


class FlexibleGridAnchorGenerator:
    """``flexible_grid_anchor_generator``: explicit pixel base sizes, ratios, strides, offsets."""

    def __init__(
        self,
        base_sizes: Sequence[Sequence[float]],
        aspect_ratios: Sequence[Sequence[float]],
        anchor_strides: Sequence[tuple[float, float]],
        anchor_offsets: Sequence[tuple[float, float]],
        normalize_coordinates: bool = True,
    ) -> None:
        for index, (sizes, ratios) in enumerate(zip(base_sizes, aspect_ratios, strict=True)):
            if len(sizes) != len(ratios) or not sizes:
                raise OdflowError(
                    f"flexible_grid_anchor_generator.anchor_grid[{index}]: base_sizes and "
                    "aspect_ratios must be non-empty lists of the same length (one pair per anchor)"
                )
        self.base_sizes = [list(map(float, s)) for s in base_sizes]
        self.aspect_ratios = [list(map(float, r)) for r in aspect_ratios]
        self.anchor_strides = list(anchor_strides)
        self.anchor_offsets = list(anchor_offsets)
        self.normalize_coordinates = normalize_coordinates

    @classmethod
    def from_config(cls, config) -> FlexibleGridAnchorGenerator:
        if not config.anchor_grid:
            raise OdflowError("flexible_grid_anchor_generator needs at least one anchor_grid")
        for index, grid in enumerate(config.anchor_grid):
            if not grid.HasField("height_stride") or not grid.HasField("width_stride"):
                raise OdflowError(
                    f"flexible_grid_anchor_generator.anchor_grid[{index}]: set height_stride "
                    "and width_stride"
                )
        return cls(
            base_sizes=[list(g.base_sizes) for g in config.anchor_grid],
            aspect_ratios=[list(g.aspect_ratios) for g in config.anchor_grid],
            anchor_strides=[(g.height_stride, g.width_stride) for g in config.anchor_grid],
            anchor_offsets=[(g.height_offset, g.width_offset) for g in config.anchor_grid],
            normalize_coordinates=config.normalize_coordinates,
        )

    def num_anchors_per_location(self) -> list[int]:
        return [len(s) for s in self.base_sizes]

    def generate(
        self, feature_map_shapes: FeatureMapShapes, im_height: int = 1, im_width: int = 1
    ) -> tf.Tensor:
        _check_layers("flexible_grid_anchor_generator", len(self.base_sizes), feature_map_shapes)
        if self.normalize_coordinates and (im_height == 1 or im_width == 1):
            raise ValueError("normalize_coordinates needs im_height and im_width")
        layers = []
        for index, shape in enumerate(feature_map_shapes):
            height, width = _static_shape(shape)
            grid = tile_anchors(
                height,
                width,
                self.base_sizes[index],
                self.aspect_ratios[index],
                (1.0, 1.0),
                tuple(map(float, self.anchor_strides[index])),
                tuple(map(float, self.anchor_offsets[index])),
            )
            if self.normalize_coordinates:
                grid = grid / tf.constant([im_height, im_width, im_height, im_width], tf.float32)
            layers.append(grid)
        return tf.concat(layers, axis=0)


AnchorGeneratorType = SsdAnchorGenerator | MultiscaleAnchorGenerator | FlexibleGridAnchorGenerator


def build_anchor_generator(config) -> AnchorGeneratorType:
    """From an ``AnchorGenerator`` message; ``grid_anchor_generator`` is Faster R-CNN's, not ours."""
    which = config.WhichOneof("anchor_generator_oneof")
    if which == "ssd_anchor_generator":
        return SsdAnchorGenerator.from_config(config.ssd_anchor_generator)
    if which == "multiscale_anchor_generator":
        return MultiscaleAnchorGenerator.from_config(config.multiscale_anchor_generator)
    if which == "flexible_grid_anchor_generator":
        return FlexibleGridAnchorGenerator.from_config(config.flexible_grid_anchor_generator)
    raise OdflowError(
        f"anchor_generator: {which or 'nothing'} is set; odflow supports ssd_anchor_generator, "
        "multiscale_anchor_generator and flexible_grid_anchor_generator"
    )
