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


def _corners(yc, xc, h, w):
    return [yc - h / 2, xc - w / 2, yc + h / 2, xc + w / 2]


def test_multiscale_from_config_hand_computed():
    """Levels 2-3 on a 10 x 16 image.  Offsets: stride/2 only along a side the stride divides
    (10 % 4 != 0 -> y offset 0, 16 % 4 == 0 -> x offset 2; level 3: 0 and 4).  Per cell, ratios
    outer and octave scales inner: (ar 1, s 1), (1, sqrt 2), (4, 1), (4, sqrt 2) of base
    anchor_scale * stride = 8 px at level 2 (h = s base / sqrt ar, w = s base sqrt ar)."""
    config = pipeline_pb2.AnchorGenerator()
    multi = config.multiscale_anchor_generator
    multi.min_level, multi.max_level, multi.anchor_scale = 2, 3, 2.0
    multi.aspect_ratios.extend([1.0, 4.0])
    multi.scales_per_octave = 2
    multi.normalize_coordinates = True
    gen = anchors_mod.build_anchor_generator(config)
    assert gen.num_anchors_per_location() == [4, 4]
    boxes = gen.generate([(3, 4), (2, 2)], 10, 16).numpy()
    assert boxes.shape == ((12 + 4) * 4, 4)
    scale = np.array([10, 16, 10, 16])
    r2 = math.sqrt(2)
    expected_cell0 = [_corners(0, 2, 8, 8), _corners(0, 2, 8 * r2, 8 * r2),
                      _corners(0, 2, 4, 16), _corners(0, 2, 4 * r2, 16 * r2)]
    np.testing.assert_allclose(boxes[:4] * scale, expected_cell0, atol=1e-4)
    np.testing.assert_allclose(boxes[4] * scale, _corners(0, 6, 8, 8), atol=1e-4)  # cell (0, 1)
    np.testing.assert_allclose(boxes[16] * scale, _corners(4, 2, 8, 8), atol=1e-4)  # cell (1, 0)
    np.testing.assert_allclose(boxes[48] * scale, _corners(0, 4, 16, 16), atol=1e-4)  # level 3
    np.testing.assert_allclose(boxes[52] * scale, _corners(0, 12, 16, 16), atol=1e-4)

    multi.normalize_coordinates = False
    pixels = anchors_mod.build_anchor_generator(config).generate([(3, 4), (2, 2)], 10, 16)
    np.testing.assert_allclose(pixels.numpy(), boxes * scale, atol=1e-4)
    with pytest.raises(ValueError, match="im_height"):
        gen.generate([(3, 4), (2, 2)])


def test_multiscale_square_image_offsets_and_errors():
    gen = anchors_mod.MultiscaleAnchorGenerator(min_level=1, max_level=1, anchor_scale=1.0,
                                                aspect_ratios=[1.0], scales_per_octave=1,
                                                normalize_coordinates=False)
    boxes = gen.generate([(2, 2)], 4, 4).numpy()  # stride 2 divides 4: offset 1 on both sides
    np.testing.assert_allclose(boxes, [_corners(1, 1, 2, 2), _corners(1, 3, 2, 2),
                                       _corners(3, 1, 2, 2), _corners(3, 3, 2, 2)], atol=1e-6)
    with pytest.raises(OdflowError, match="max_level 2 < min_level 3"):
        anchors_mod.MultiscaleAnchorGenerator(min_level=3, max_level=2)
    with pytest.raises(OdflowError, match="scales_per_octave"):
        anchors_mod.MultiscaleAnchorGenerator(scales_per_octave=0)
    with pytest.raises(OdflowError, match="aspect_ratios"):
        anchors_mod.MultiscaleAnchorGenerator(aspect_ratios=[])
    with pytest.raises(OdflowError, match="multiscale_anchor_generator describes 5"):
        anchors_mod.MultiscaleAnchorGenerator().generate([(2, 2)], 64, 64)


def test_flexible_grid_from_config_hand_computed():
    """Base sizes 10 and 20 px with ratios 1 and 0.25 (h = b / sqrt ar, w = b sqrt ar), strides
    (5, 10) and offsets (1, 3) px, on a 20 x 40 image; cell (i, j) centre (1 + 5 i, 3 + 10 j)."""
    config = pipeline_pb2.AnchorGenerator()
    flexible = config.flexible_grid_anchor_generator
    grid = flexible.anchor_grid.add()
    grid.base_sizes.extend([10.0, 20.0])
    grid.aspect_ratios.extend([1.0, 0.25])
    grid.height_stride, grid.width_stride = 5, 10
    grid.height_offset, grid.width_offset = 1, 3
    flexible.normalize_coordinates = True
    gen = anchors_mod.build_anchor_generator(config)
    assert gen.num_anchors_per_location() == [2]
    boxes = gen.generate([(2, 2)], 20, 40).numpy() * np.array([20, 40, 20, 40])
    np.testing.assert_allclose(boxes, [
        _corners(1, 3, 10, 10), _corners(1, 3, 40, 10),
        _corners(1, 13, 10, 10), _corners(1, 13, 40, 10),
        _corners(6, 3, 10, 10), _corners(6, 3, 40, 10),
        _corners(6, 13, 10, 10), _corners(6, 13, 40, 10)], atol=1e-4)
    flexible.normalize_coordinates = False
    pixels = anchors_mod.build_anchor_generator(config).generate([(2, 2)], 20, 40).numpy()
    np.testing.assert_allclose(pixels, boxes, atol=1e-4)
    with pytest.raises(ValueError, match="im_height"):
        gen.generate([(2, 2)])


def test_flexible_grid_errors_name_the_field():
    with pytest.raises(OdflowError, match="at least one anchor_grid"):
        anchors_mod.build_anchor_generator(pipeline_pb2.AnchorGenerator(
            flexible_grid_anchor_generator=pipeline_pb2.FlexibleGridAnchorGenerator()))
    config = pipeline_pb2.AnchorGenerator()
    grid = config.flexible_grid_anchor_generator.anchor_grid.add(base_sizes=[1.0],
                                                                 aspect_ratios=[1.0])
    grid.height_stride = 4
    with pytest.raises(OdflowError, match=r"anchor_grid\[0\]: set height_stride and width_stride"):
        anchors_mod.build_anchor_generator(config)
    with pytest.raises(OdflowError, match=r"anchor_grid\[0\]: base_sizes and aspect_ratios"):
        anchors_mod.FlexibleGridAnchorGenerator([[1.0, 2.0]], [[1.0]], [(1, 1)], [(0, 0)])
    with pytest.raises(OdflowError, match="flexible_grid_anchor_generator describes 1"):
        anchors_mod.FlexibleGridAnchorGenerator([[1.0]], [[1.0]], [(1, 1)], [(0, 0)]).generate(
            [(1, 1), (1, 1)], 4, 4)


def test_ssd_from_config_errors_and_single_layer_scale():
    with pytest.raises(OdflowError, match="height_stride and width_stride"):
        anchors_mod.SsdAnchorGenerator.from_config(pipeline_pb2.SsdAnchorGenerator(
            num_layers=1, height_stride=[8], width_stride=[]))
    with pytest.raises(OdflowError, match="height_offset and width_offset"):
        anchors_mod.SsdAnchorGenerator.from_config(pipeline_pb2.SsdAnchorGenerator(
            num_layers=1, height_offset=[8], width_offset=[]))
    with pytest.raises(OdflowError, match="expected ssd_anchor_generator"):
        anchors_mod.SsdAnchorGenerator.from_config(pipeline_pb2.AnchorGenerator(
            multiscale_anchor_generator=pipeline_pb2.MultiscaleAnchorGenerator()))
    with pytest.raises(OdflowError, match="num_layers must be >= 1"):
        anchors_mod.SsdAnchorGenerator(num_layers=0)
    with pytest.raises(OdflowError, match="anchor_strides has 1 entries"):
        anchors_mod.SsdAnchorGenerator(num_layers=2, anchor_strides=[(1, 1)])
    with pytest.raises(OdflowError, match="layer 0 no anchors"):
        anchors_mod.SsdAnchorGenerator(num_layers=1, aspect_ratios=[],
                                       reduce_boxes_in_lowest_layer=False,
                                       interpolated_scale_aspect_ratio=0.0)
    # One layer: min_scale itself; the interpolated anchor pairs it with s_1 = 1.
    gen = anchors_mod.SsdAnchorGenerator(num_layers=1, min_scale=0.36, aspect_ratios=[1.0],
                                         reduce_boxes_in_lowest_layer=False)
    assert gen.box_specs == [[(0.36, 1.0), (pytest.approx(0.6), 1.0)]]
    with pytest.raises(ValueError, match="strides are in pixels"):
        anchors_mod.SsdAnchorGenerator(num_layers=1, anchor_strides=[(8, 8)]).generate([(1, 1)])


def test_ssd_unequal_strides_offsets_and_base_on_a_non_square_image():
    """Pixel strides (8, 16), offsets (2, 6), base anchor 1 x 2, image 40 x 80, scale 0.5,
    ratio 1: base shrinks along the longer side (min side 40: (40/40 * 1, 40/80 * 2) = (1, 1)),
    so h = w = 0.5 (normalised); cell (i, j) centre ((2 + 8 i) / 40, (6 + 16 j) / 80)."""
    gen = anchors_mod.SsdAnchorGenerator(
        num_layers=1, scales=[0.5], aspect_ratios=[1.0], interpolated_scale_aspect_ratio=0.0,
        reduce_boxes_in_lowest_layer=False, base_anchor_size=(1.0, 2.0),
        anchor_strides=[(8, 16)], anchor_offsets=[(2, 6)])
    yc, xc, h, w = _center_size(gen.generate([(2, 2)], 40, 80).numpy())
    np.testing.assert_allclose(yc, [2 / 40, 2 / 40, 10 / 40, 10 / 40], atol=1e-6)
    np.testing.assert_allclose(xc, [6 / 80, 22 / 80, 6 / 80, 22 / 80], atol=1e-6)
    np.testing.assert_allclose(h, 0.5, rtol=1e-5)
    np.testing.assert_allclose(w, 0.5, rtol=1e-5)
    # Without strides: 1 / grid size, offset half of it, per axis (grid 2 x 4).
    gen = anchors_mod.SsdAnchorGenerator(
        num_layers=1, scales=[0.5], aspect_ratios=[1.0], interpolated_scale_aspect_ratio=0.0,
        reduce_boxes_in_lowest_layer=False)
    yc, xc, _, _ = _center_size(gen.generate([(2, 4)]).numpy())
    np.testing.assert_allclose(yc[:5], [0.25] * 4 + [0.75], atol=1e-6)
    np.testing.assert_allclose(xc[:4], [0.125, 0.375, 0.625, 0.875], atol=1e-6)
    with pytest.raises(ValueError, match="strides are in pixels"):
        anchors_mod.SsdAnchorGenerator(num_layers=1, anchor_strides=[(8, 8)]).generate(
            [(1, 1)], 1, 40)


def test_defaults_are_the_zoo_and_api_defaults():
    default, zoo = anchors_mod.SsdAnchorGenerator().box_specs, _zoo_generator().box_specs
    assert [len(specs) for specs in default] == [3, 6, 6, 6, 6, 6]
    for mine, theirs in zip(default, zoo):
        np.testing.assert_allclose(np.array(mine), np.array(theirs), atol=1e-4)
    multi = anchors_mod.MultiscaleAnchorGenerator()
    assert multi.levels == [3, 4, 5, 6, 7] and multi.anchor_scale == 4.0
    assert multi.ratios == [1.0, 1.0, 2.0, 2.0, 0.5, 0.5]
    assert multi.scales == pytest.approx([1.0, 2 ** 0.5] * 3)
    # Pixel anchors without an image size: the offset is stride / 2 (the image size 1 case).
    pixels = anchors_mod.MultiscaleAnchorGenerator(
        min_level=2, max_level=2, aspect_ratios=[1.0], scales_per_octave=1,
        normalize_coordinates=False).generate([(1, 1)]).numpy()
    np.testing.assert_allclose(pixels, [_corners(2, 2, 16, 16)], atol=1e-5)
    flex = anchors_mod.FlexibleGridAnchorGenerator([[4.0]], [[1.0]], [(2, 2)], [(1, 1)],
                                                   normalize_coordinates=False)
    np.testing.assert_allclose(flex.generate([(1, 1)]).numpy(), [_corners(1, 1, 4, 4)])
    with pytest.raises(ValueError):  # one ratio list for two layers
        anchors_mod.FlexibleGridAnchorGenerator([[4.0], [8.0]], [[1.0]], [(2, 2)] * 2,
                                                [(1, 1)] * 2)


def test_flexible_grid_two_layers_concatenate_in_order():
    flex = anchors_mod.FlexibleGridAnchorGenerator([[4.0], [8.0]], [[1.0], [1.0]],
                                                   [(2, 2), (4, 4)], [(1, 1), (2, 2)],
                                                   normalize_coordinates=False)
    boxes = flex.generate([(1, 2), (1, 1)]).numpy()
    np.testing.assert_allclose(boxes, [_corners(1, 1, 4, 4), _corners(1, 3, 4, 4),
                                       _corners(2, 2, 8, 8)], atol=1e-6)


def test_builder_messages_and_dispatch():
    with pytest.raises(OdflowError, match="anchor_generator: nothing is set; odflow supports "
                       "ssd_anchor_generator, multiscale_anchor_generator and "
                       "flexible_grid_anchor_generator"):
        anchors_mod.build_anchor_generator(pipeline_pb2.AnchorGenerator())
    config = pipeline_pb2.AnchorGenerator()
    config.multiscale_anchor_generator.aspect_ratios.append(1.0)
    assert isinstance(anchors_mod.build_anchor_generator(config),
                      anchors_mod.MultiscaleAnchorGenerator)


def test_tile_anchors_takes_python_ints_as_numbers():
    """Sizes, strides and offsets typed as ints (valid where floats are expected) give float
    anchors: scale 2, ratio 4 -> h = 2 / sqrt 4 = 1, w = 2 sqrt 4 = 4; grid 1 x 2 with stride
    (3, 5) and offset (1, 2) -> centres (1, 2) and (1, 7)."""
    boxes = anchors_mod.tile_anchors(1, 2, [2], [4], (1, 1), (3, 5), (1, 2)).numpy()
    assert boxes.dtype == np.float32
    np.testing.assert_allclose(boxes, [_corners(1, 2, 1, 4), _corners(1, 7, 1, 4)], atol=1e-6)


def test_ssd_messages_name_the_field_and_the_fix():
    def message(call):
        with pytest.raises((OdflowError, ValueError)) as error:
            call()
        return str(error.value)

    assert message(lambda: anchors_mod.SsdAnchorGenerator(
        num_layers=2, anchor_offsets=[(1, 1)])) == (
        "ssd_anchor_generator anchor_offsets has 1 entries but num_layers is 2; give one per layer")
    assert message(lambda: anchors_mod.SsdAnchorGenerator(
        num_layers=1, aspect_ratios=[], reduce_boxes_in_lowest_layer=False,
        interpolated_scale_aspect_ratio=0.0)) == (
        "ssd_anchor_generator gives layer 0 no anchors: set aspect_ratios or a positive "
        "interpolated_scale_aspect_ratio")
    assert message(lambda: anchors_mod.SsdAnchorGenerator.from_config(
        pipeline_pb2.AnchorGenerator(
            multiscale_anchor_generator=pipeline_pb2.MultiscaleAnchorGenerator()))) == (
        "anchor_generator: expected ssd_anchor_generator")
    assert message(lambda: anchors_mod.SsdAnchorGenerator.from_config(
        pipeline_pb2.SsdAnchorGenerator(num_layers=1, height_stride=[8], width_stride=[]))) == (
        "ssd_anchor_generator.height_stride and width_stride must have the same length")
    assert message(lambda: anchors_mod.SsdAnchorGenerator.from_config(
        pipeline_pb2.SsdAnchorGenerator(num_layers=1, height_offset=[8], width_offset=[]))) == (
        "ssd_anchor_generator.height_offset and width_offset must have the same length")
    assert message(lambda: anchors_mod.SsdAnchorGenerator(num_layers=6).generate([(3, 3)])) == (
        "ssd_anchor_generator describes 6 anchor layers but the feature extractor gives 1 "
        "feature maps; set its num_layers (or list lengths) to 1")
    strided = anchors_mod.SsdAnchorGenerator(num_layers=1, anchor_strides=[(8, 8)])
    for size in ((40, 1), (1, 40)):
        assert message(lambda size=size: strided.generate([(1, 1)], *size)) == (
            "anchor strides are in pixels: pass im_height and im_width")


def test_ssd_from_an_anchor_generator_message_reads_its_scales():
    """The AnchorGenerator wrapper is unwrapped; min and max scale (not the defaults 0.2 and
    0.95) give the layer scales 0.3, 0.4, 0.5 (linear over three layers)."""
    config = pipeline_pb2.AnchorGenerator(ssd_anchor_generator=pipeline_pb2.SsdAnchorGenerator(
        num_layers=3, min_scale=0.3, max_scale=0.5, aspect_ratios=[2.0],
        interpolated_scale_aspect_ratio=0.0, reduce_boxes_in_lowest_layer=False))
    gen = anchors_mod.SsdAnchorGenerator.from_config(config)
    assert gen.box_specs == [[(pytest.approx(0.3), 2.0)], [(pytest.approx(0.4), 2.0)],
                             [(pytest.approx(0.5), 2.0)]]


def test_multiscale_messages_octaves_from_config_and_offsets_along_x():
    with pytest.raises(OdflowError) as error:
        anchors_mod.MultiscaleAnchorGenerator(scales_per_octave=0)
    assert str(error.value) == (
        "multiscale_anchor_generator needs scales_per_octave >= 1 and aspect_ratios")
    config = pipeline_pb2.MultiscaleAnchorGenerator(
        min_level=2, max_level=2, anchor_scale=1.0, aspect_ratios=[1.0], scales_per_octave=3,
        normalize_coordinates=True)
    gen = anchors_mod.MultiscaleAnchorGenerator.from_config(config)
    assert gen.num_anchors_per_location() == [3]
    assert gen.scales == pytest.approx([1.0, 2 ** (1 / 3), 2 ** (2 / 3)])
    # One side given, the other left at 1: normalising is impossible.
    for size in ((10, 1), (1, 16)):
        with pytest.raises(ValueError) as error:
            gen.generate([(1, 1)], *size)
        assert str(error.value) == "normalize_coordinates needs im_height and im_width"
    # Image 16 x 10, level 2 (stride 4, base 4 px): 4 divides 16 but not 10, so the centres
    # are offset by 2 along y and by 0 along x: (2, 0) and (2, 4).
    pixels = anchors_mod.MultiscaleAnchorGenerator(
        min_level=2, max_level=2, anchor_scale=1.0, aspect_ratios=[1.0], scales_per_octave=1,
        normalize_coordinates=False).generate([(1, 2)], 16, 10).numpy()
    np.testing.assert_allclose(pixels, [_corners(2, 0, 4, 4), _corners(2, 4, 4, 4)], atol=1e-6)


def test_flexible_grid_needs_both_image_sides_to_normalise():
    with pytest.raises(OdflowError) as error:
        anchors_mod.FlexibleGridAnchorGenerator.from_config(
            pipeline_pb2.FlexibleGridAnchorGenerator())
    assert str(error.value) == "flexible_grid_anchor_generator needs at least one anchor_grid"
    flex = anchors_mod.FlexibleGridAnchorGenerator([[4.0]], [[1.0]], [(2, 2)], [(1, 1)])
    for kwargs in ({"im_height": 20}, {"im_width": 40}, {"im_height": 20, "im_width": 1},
                   {"im_height": 1, "im_width": 40}):
        with pytest.raises(ValueError) as error:
            flex.generate([(1, 1)], **kwargs)
        assert str(error.value) == "normalize_coordinates needs im_height and im_width"
    np.testing.assert_allclose(flex.generate([(1, 1)], 20, 40).numpy(),
                               [[-1 / 20, -1 / 40, 3 / 20, 3 / 40]], atol=1e-6)
