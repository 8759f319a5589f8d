"""Anchor layout: counts, sizes, centres and order, hand-computed from the API's rules."""

import math

import numpy as np
import pytest

from odflow.errors import OdflowError
from odflow.model import anchors as anchors_mod
from odflow.protos import pipeline_pb2

GRIDS = [(19, 19), (10, 10), (5, 5), (3, 3), (2, 2), (1, 1)]


def _center_size(boxes):
    boxes = np.asarray(boxes)
    h = boxes[:, 2] - boxes[:, 0]
    w = boxes[:, 3] - boxes[:, 1]
    return boxes[:, 0] + h / 2, boxes[:, 1] + w / 2, h, w


def _zoo_generator():
    config = pipeline_pb2.AnchorGenerator()
    ssd = config.ssd_anchor_generator
    ssd.num_layers = 6
    ssd.min_scale = 0.2
    ssd.max_scale = 0.95
    ssd.aspect_ratios.extend([1.0, 2.0, 0.5, 3.0, 0.3333])
    return anchors_mod.build_anchor_generator(config)


def test_zoo_layout_counts():
    gen = _zoo_generator()
    assert gen.num_anchors_per_location() == [3, 6, 6, 6, 6, 6]
    boxes = gen.generate(GRIDS, 300, 300).numpy()
    assert boxes.shape == (1917, 4)
    assert boxes.dtype == np.float32


def test_layer0_first_cell_and_order():
    boxes = _zoo_generator().generate(GRIDS).numpy()
    yc, xc, h, w = _center_size(boxes[:3])
    np.testing.assert_allclose(yc, 0.5 / 19, atol=1e-6)
    np.testing.assert_allclose(xc, 0.5 / 19, atol=1e-6)
    np.testing.assert_allclose(h, [0.1, 0.2 / math.sqrt(2), 0.2 / math.sqrt(0.5)], atol=1e-6)
    np.testing.assert_allclose(w, [0.1, 0.2 * math.sqrt(2), 0.2 * math.sqrt(0.5)], atol=1e-6)
    # Next cell is x + 1 (row-major, anchors innermost).
    yc, xc, _, _ = _center_size(boxes[3:6])
    np.testing.assert_allclose(yc, 0.5 / 19, atol=1e-6)
    np.testing.assert_allclose(xc, 1.5 / 19, atol=1e-6)
    # Cell (row 1, col 0) starts at 19 * 3.
    yc, xc, _, _ = _center_size(boxes[57:58])
    np.testing.assert_allclose([yc[0], xc[0]], [1.5 / 19, 0.5 / 19], atol=1e-6)


def test_upper_layers_sizes_and_interpolated_anchor():
    boxes = _zoo_generator().generate(GRIDS).numpy()
    start = 19 * 19 * 3
    scales = [0.2 + 0.15 * i for i in range(6)] + [1.0]
    ratios = [1.0, 2.0, 0.5, 3.0, 0.3333]
    for layer in range(1, 6):
        grid = GRIDS[layer][0]
        cell = boxes[start:start + 6]
        yc, xc, h, w = _center_size(cell)
        s = scales[layer]
        np.testing.assert_allclose(h[:5], [s / math.sqrt(r) for r in ratios], rtol=1e-5)
        np.testing.assert_allclose(w[:5], [s * math.sqrt(r) for r in ratios], rtol=1e-5)
        inter = math.sqrt(s * scales[layer + 1])
        np.testing.assert_allclose([h[5], w[5]], [inter, inter], rtol=1e-5)
        np.testing.assert_allclose(yc, 0.5 / grid, atol=1e-6)
        np.testing.assert_allclose(xc, 0.5 / grid, atol=1e-6)
        start += grid * grid * 6
    assert start == 1917
    # Last layer: one cell centred in the image, not clipped.
    yc, _, h, _ = _center_size(boxes[-6:])
    np.testing.assert_allclose(yc, 0.5, atol=1e-6)
    assert boxes[-6:].min() < 0.0 and h[5] == pytest.approx(math.sqrt(0.95))


def test_explicit_scales_strides_offsets_and_base_size():
    config = pipeline_pb2.SsdAnchorGenerator(
        num_layers=2, scales=[0.3, 0.6], aspect_ratios=[1.0], reduce_boxes_in_lowest_layer=False,
        interpolated_scale_aspect_ratio=0.0, base_anchor_height=2.0, base_anchor_width=1.0,
        height_stride=[10, 20], width_stride=[10, 20], height_offset=[0, 5], width_offset=[0, 5])
    gen = anchors_mod.SsdAnchorGenerator.from_config(config)
    assert gen.num_anchors_per_location() == [1, 1]
    boxes = gen.generate([(2, 2), (1, 1)], 100, 100).numpy()
    yc, xc, h, w = _center_size(boxes)
    np.testing.assert_allclose(yc, [0.0, 0.0, 0.1, 0.1, 0.05], atol=1e-6)
    np.testing.assert_allclose(xc, [0.0, 0.1, 0.0, 0.1, 0.05], atol=1e-6)
    np.testing.assert_allclose(h, [0.6, 0.6, 0.6, 0.6, 1.2], rtol=1e-5)
    np.testing.assert_allclose(w, [0.3, 0.3, 0.3, 0.3, 0.6], rtol=1e-5)


def test_non_square_image_keeps_anchors_square_in_pixels():
    gen = anchors_mod.SsdAnchorGenerator(num_layers=1, aspect_ratios=[1.0],
                                         reduce_boxes_in_lowest_layer=False,
                                         interpolated_scale_aspect_ratio=0.0)
    _, _, h, w = _center_size(gen.generate([(1, 1)], 300, 600).numpy())
    assert h[0] * 300 == pytest.approx(w[0] * 600)


def test_config_errors_name_the_field():
    with pytest.raises(OdflowError, match="scales"):
        anchors_mod.SsdAnchorGenerator(num_layers=3, scales=[0.1, 0.2])
    with pytest.raises(OdflowError, match="num_layers"):
        anchors_mod.SsdAnchorGenerator(num_layers=6).generate([(3, 3)])
    with pytest.raises(OdflowError, match="grid_anchor_generator"):
        anchors_mod.build_anchor_generator(
            pipeline_pb2.AnchorGenerator(grid_anchor_generator=pipeline_pb2.GridAnchorGenerator()))


def test_multiscale_and_flexible_grid():
    multi = anchors_mod.MultiscaleAnchorGenerator(min_level=3, max_level=4, anchor_scale=4.0,
                                                  aspect_ratios=[1.0, 2.0], scales_per_octave=2)
    assert multi.num_anchors_per_location() == [4, 4]
    boxes = multi.generate([(8, 8), (4, 4)], 64, 64).numpy()
    assert boxes.shape == ((64 + 16) * 4, 4)
    yc, xc, h, w = _center_size(boxes[:4])
    np.testing.assert_allclose(yc, 4 / 64, atol=1e-6)  # offset stride/2 = 4 px
    np.testing.assert_allclose(h, np.array([32, 32 * 2**0.5, 32 / 2**0.5, 32]) / 64, rtol=1e-5)
    flex = anchors_mod.FlexibleGridAnchorGenerator([[16.0, 32.0]], [[1.0, 4.0]], [(8, 8)],
                                                   [(4, 4)])
    boxes = flex.generate([(2, 2)], 16, 16).numpy()
    yc, xc, h, w = _center_size(boxes)
    np.testing.assert_allclose(xc, [0.25, 0.25, 0.75, 0.75, 0.25, 0.25, 0.75, 0.75], atol=1e-6)
    np.testing.assert_allclose(h[:2], [1.0, 1.0], rtol=1e-5)
    np.testing.assert_allclose(w[:2], [1.0, 4.0], rtol=1e-5)
