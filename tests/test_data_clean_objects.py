"""``clean_objects``: the box cleaning and ``--drop-empty`` step the COCO, VOC and YOLO
converters share.  Expected boxes are worked by hand on a 100 x 50 (width x height) image."""

from __future__ import annotations

import numpy as np

from odflow.data.convert import LoadedImage, clean_objects
from odflow.data.summary import DatasetSummary

IMAGE = LoadedImage(encoded=b"", image_format="jpeg", height=50, width=100)


def test_keeps_the_objects_whose_boxes_survive_in_order() -> None:
    summary = DatasetSummary()
    objects = ["inside", "zero-sized", "clipped"]
    boxes = [(10, 10, 20, 20), (5, 5, 5, 9), (-10, 0, 30, 60)]
    kept, normalised = clean_objects(objects, boxes, IMAGE, 1.0, summary, drop_empty=True)
    assert kept == ["inside", "clipped"]
    # [ymin, xmin, ymax, xmax] / (height, width): 10/50, 10/100, 20/50, 20/100; the clipped
    # box is x 0..30, y 0..50.
    np.testing.assert_allclose(normalised, [[0.2, 0.1, 0.4, 0.2], [0.0, 0.0, 1.0, 0.3]])
    assert summary.dropped_boxes == {"zero width or height": 1}
    assert summary.adjusted_boxes == {"clipped to the image": 1}
    assert not summary.dropped_images


def test_an_image_left_without_boxes_is_dropped_only_with_drop_empty() -> None:
    summary = DatasetSummary()
    assert clean_objects(["tiny"], [(0, 0, 2, 2)], IMAGE, 4.0, summary, drop_empty=True) is None
    assert summary.dropped_images == {"no boxes left (--drop-empty)": 1}
    assert summary.dropped_boxes == {"smaller than --min-size": 1}

    kept, normalised = clean_objects([], [], IMAGE, 4.0, summary, drop_empty=False)
    assert kept == [] and normalised.shape == (0, 4)
    assert summary.dropped_images == {"no boxes left (--drop-empty)": 1}  # unchanged
