"""COCO JSON -> records, on hand-made files: every rule of odflow.data.coco_source.

Expected boxes are worked by hand from the pixel boxes and image sizes written here
(``[x, y, w, h]`` on a W x H image -> ``[y/H, x/W, (y+h)/H, (x+w)/W]``).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from odflow import label_map as label_map_lib
from odflow.data.cli import main as data_main
from odflow.data.coco_source import convert_coco
from odflow.data.records import iter_examples
from odflow.errors import OdflowError
from tests.test_data_csv import write_image

CATEGORIES = [{"id": 3, "name": "cat"}, {"id": 7, "name": "dog"}]


def coco_file(tmp_path: Path, *, images=None, annotations=None, categories=None,
              name: str = "instances.json") -> Path:
    """Three images (a 100x50 with two boxes, a 40x40 with a crowd box, c a negative)."""
    data = {
        "info": {"description": "hand-made"},
        "licenses": [],
        "images": images if images is not None else [
            {"id": 10, "file_name": "a.jpg", "width": 100, "height": 50},
            {"id": 11, "file_name": "sub/b.png", "width": 40, "height": 40},
            {"id": 12, "file_name": "c.jpg", "width": 60, "height": 30},
        ],
        "annotations": annotations if annotations is not None else [
            {"id": 1, "image_id": 10, "category_id": 3, "bbox": [10, 5, 20, 40],
             "iscrowd": 0, "area": 800, "segmentation": [[10, 5, 30, 5, 30, 45]]},
            {"id": 2, "image_id": 10, "category_id": 7, "bbox": [50, 0, 50, 50]},
            {"id": 3, "image_id": 11, "category_id": 7, "bbox": [0, 0, 40, 20], "iscrowd": 1,
             "segmentation": {"counts": [0, 800, 800], "size": [40, 40]}},
        ],
        "categories": categories if categories is not None else CATEGORIES,
    }
    path = tmp_path / name
    path.write_text(json.dumps(data, indent=1))
    return path


def images_and_label_map(tmp_path: Path, names=("dog", "cat")) -> tuple[Path, Path]:
    folder = tmp_path / "images"
    write_image(folder / "a.jpg", 100, 50, 0)
    write_image(folder / "sub" / "b.png", 40, 40, 1)
    write_image(folder / "c.jpg", 60, 30, 2)
    label_map = tmp_path / "label_map.pbtxt"
    label_map_lib.write(label_map, list(names))
    return folder, label_map


def test_boxes_classes_by_name_crowd_and_negatives(tmp_path):
    json_path = coco_file(tmp_path)
    folder, label_map = images_and_label_map(tmp_path)
    before = json_path.read_bytes()
    output = tmp_path / "out.record"
    summary = convert_coco(json_path, folder, output, label_map_path=label_map)
    a, b, c = iter_examples(str(output))
    assert (a.source_id, a.filename, a.width, a.height) == ("10", "a.jpg", 100, 50)
    np.testing.assert_allclose(a.boxes, [[0.1, 0.1, 0.9, 0.3], [0.0, 0.5, 1.0, 1.0]])
    # By name: cat is id 2 and dog id 1 in this label map, whatever COCO's 3 and 7 say.
    assert a.classes.tolist() == [2, 1] and a.class_texts == ["cat", "dog"]
    assert a.is_crowd.tolist() == [0, 0]
    assert b.filename == "sub/b.png" and b.image_format == "png"
    np.testing.assert_allclose(b.boxes, [[0.0, 0.0, 0.5, 1.0]])
    assert b.is_crowd.tolist() == [1]
    assert c.num_boxes == 0  # no annotation: kept as a negative
    assert summary.images == 3 and summary.images_without_boxes == 1
    data = json.loads((tmp_path / "out.record.summary.json").read_text())
    assert data["options"]["source"] == "coco" and data["boxes_per_class"] == {"cat": 1,
                                                                               "dog": 2}
    assert json_path.read_bytes() == before


def test_roboflow_layout(tmp_path):
    """train/_annotations.coco.json with the images beside it, ids from 0, a supercategory
    entry (id 0) no annotation uses: ignored; no --images needed."""
    train = tmp_path / "train"
    write_image(train / "x_jpg.rf.123.jpg", 64, 32, 3)
    json_path = coco_file(train, name="_annotations.coco.json", images=[
        {"id": 0, "license": 1, "file_name": "x_jpg.rf.123.jpg", "height": 32, "width": 64,
         "date_captured": "2024-01-01T00:00:00+00:00"}],
        annotations=[{"id": 0, "image_id": 0, "category_id": 1, "bbox": [16, 8, 32, 16],
                      "area": 512, "segmentation": [], "iscrowd": 0}],
        categories=[{"id": 0, "name": "faces", "supercategory": "none"},
                    {"id": 1, "name": "face", "supercategory": "faces"}])
    label_map = tmp_path / "label_map.pbtxt"
    label_map_lib.write(label_map, ["face"])
    output = tmp_path / "out.record"
    assert data_main(["coco", "--json", str(json_path), "--label-map", str(label_map),
                      "-o", str(output)]) == 0
    [x] = iter_examples(str(output))
    np.testing.assert_allclose(x.boxes, [[0.25, 0.25, 0.75, 0.75]])
    assert x.class_texts == ["face"]
    summary = json.loads((tmp_path / "out.record.summary.json").read_text())
    assert summary["ignored_categories"] == ["faces"]


def test_unknown_category_is_an_error_listing_both_sets(tmp_path):
    json_path = coco_file(tmp_path)
    folder, label_map = images_and_label_map(tmp_path, names=("cat", "bird"))
    with pytest.raises(OdflowError) as caught:
        convert_coco(json_path, folder, tmp_path / "out.record", label_map_path=label_map)
    message = str(caught.value)
    assert "[dog]" in message and "[cat, bird]" in message
    assert "coco.skip_unknown_classes" in message
    assert not (tmp_path / "out.record").exists()


def test_unknown_category_dropped_and_counted_when_asked(tmp_path):
    json_path = coco_file(tmp_path)
    folder, label_map = images_and_label_map(tmp_path, names=("cat",))
    output = tmp_path / "out.record"
    summary = convert_coco(json_path, folder, output, label_map_path=label_map,
                           skip_unknown_classes=True)
    a, b, c = iter_examples(str(output))
    assert a.class_texts == ["cat"] and b.num_boxes == 0
    np.testing.assert_allclose(a.boxes, [[0.1, 0.1, 0.9, 0.3]])
    assert summary.to_dict()["dropped_boxes"] == {
        "class 'dog' not in classes (skip_unknown_classes)": 2}


def test_no_class_in_common_gives_the_line_to_paste(tmp_path):
    json_path = coco_file(tmp_path, categories=[{"id": 3, "name": "cat"},
                                                {"id": 7, "name": "traffic light"}])
    folder, label_map = images_and_label_map(tmp_path, names=("face",))
    with pytest.raises(OdflowError, match=r"classes: \[cat, traffic light\]"):
        convert_coco(json_path, folder, tmp_path / "out.record", label_map_path=label_map)


def test_malformed_json_names_line_and_column(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text('{"images": [\n  {"id": 1, "file_name": "a.jpg"}\n  {"id": 2}\n]}')
    folder, label_map = images_and_label_map(tmp_path)
    with pytest.raises(OdflowError, match=r"bad\.json:3:3: not valid JSON"):
        convert_coco(path, folder, tmp_path / "out.record", label_map_path=label_map)


@pytest.mark.parametrize(("annotation", "expected"), [
    ({"image_id": 10, "category_id": 3, "bbox": [1, 2, 3]},
     r"annotations\[1\]\.bbox: expected \[x, y, width, height\]"),
    ({"image_id": 10, "category_id": 3, "bbox": [1, "2", 3, 4]},
     r"annotations\[1\]\.bbox\[1\]: expected a number, found \"2\""),
    ({"image_id": 10, "category_id": "cat", "bbox": [1, 2, 3, 4]},
     r"annotations\[1\]\.category_id: expected an integer"),
    ({"image_id": 10, "bbox": [1, 2, 3, 4]}, r"annotations\[1\]: missing 'category_id'"),
    ({"image_id": 10, "category_id": 3, "bbox": [1, 2, -3, 4]},
     r"annotations\[1\]\.bbox: negative width"),
    ({"image_id": 99, "category_id": 3, "bbox": [1, 2, 3, 4]},
     r"annotations\[1\]\.image_id: no image has the id 99"),
    ({"image_id": 10, "category_id": 5, "bbox": [1, 2, 3, 4]},
     r"annotations\[1\]\.category_id: 5 is not the id"),
    ({"image_id": 10, "category_id": 3, "bbox": [100, 2, 3, 4]},
     r"annotations\[1\]\.bbox: box .* lies outside the 100x50 image"),
    ({"image_id": 10, "category_id": 3, "bbox": [1, 2, 3, 4], "iscrowd": 2},
     r"annotations\[1\]\.iscrowd: expected 0 or 1"),
], ids=["short-bbox", "string-coordinate", "category-name", "no-category", "negative-size",
        "unknown-image", "unknown-category-id", "outside-image", "bad-iscrowd"])
def test_bad_annotation_names_its_json_path(tmp_path, annotation, expected):
    good = {"image_id": 11, "category_id": 7, "bbox": [0, 0, 4, 4]}
    json_path = coco_file(tmp_path, annotations=[good, annotation])
    folder, label_map = images_and_label_map(tmp_path)
    with pytest.raises(OdflowError, match=expected):
        convert_coco(json_path, folder, tmp_path / "out.record", label_map_path=label_map)
    assert not (tmp_path / "out.record").exists()


def test_skip_bad_leaves_out_the_image_of_a_bad_annotation(tmp_path):
    bad = {"image_id": 10, "category_id": 3, "bbox": [1, 2, 3]}
    json_path = coco_file(tmp_path, annotations=[
        {"image_id": 10, "category_id": 3, "bbox": [10, 5, 20, 40]}, bad,
        {"image_id": 11, "category_id": 7, "bbox": [0, 0, 40, 20]}])
    folder, label_map = images_and_label_map(tmp_path)
    (folder / "c.jpg").unlink()  # a missing image too
    output = tmp_path / "out.record"
    summary = convert_coco(json_path, folder, output, label_map_path=label_map,
                           skip_bad=True)
    [b] = iter_examples(str(output))
    assert b.source_id == "11"
    data = summary.to_dict()
    assert data["dropped_images"] == {"malformed annotation": 1, "bad image or box": 1}
    assert data["num_warnings"] == 2 and "c.jpg not found" in data["warnings"][1]


@pytest.mark.parametrize(("images", "expected"), [
    ([{"id": 10, "file_name": "a.jpg", "width": 100, "height": 50},
      {"id": 10, "file_name": "c.jpg"}], r"images\[1\]\.id: duplicate image id 10"),
    ([{"id": 10, "file_name": 5}], r"images\[0\]\.file_name: expected a file name"),
    ([{"id": 10, "file_name": "a.jpg", "width": "100"}],
     r"images\[0\]\.width: expected an integer"),
    ([{"id": 10, "file_name": "a.jpg", "width": 99, "height": 50}],
     r"the JSON gives a\.jpg the size 99x50 but the image is 100x50"),
    ([{"id": 10, "file_name": "missing.jpg"}], r"images\[0\]: image .*missing\.jpg not found"),
], ids=["duplicate-id", "file-name-type", "width-type", "size-mismatch", "missing-image"])
def test_bad_image_entry(tmp_path, images, expected):
    json_path = coco_file(tmp_path, images=images, annotations=[])
    folder, label_map = images_and_label_map(tmp_path)
    with pytest.raises(OdflowError, match=expected):
        convert_coco(json_path, folder, tmp_path / "out.record", label_map_path=label_map)


def test_structure_errors(tmp_path):
    folder, label_map = images_and_label_map(tmp_path)
    cases = {"[]": "the file is a JSON list", '{"images": {}, "annotations": [], '
             '"categories": []}': "'images' must be a list",
             '{"images": []}': "no 'annotations' list",
             '{"images": [], "annotations": [], "categories": 3}': "'categories' must be a list"}
    for text, expected in cases.items():
        path = tmp_path / "x.json"
        path.write_text(text)
        with pytest.raises(OdflowError, match=expected):
            convert_coco(path, folder, tmp_path / "out.record", label_map_path=label_map)


def test_box_crossing_the_border_is_clipped_and_counted(tmp_path):
    json_path = coco_file(tmp_path, annotations=[
        {"image_id": 10, "category_id": 3, "bbox": [90, 40, 20, 20]}])
    folder, label_map = images_and_label_map(tmp_path)
    output = tmp_path / "out.record"
    summary = convert_coco(json_path, folder, output, label_map_path=label_map)
    a = next(iter(iter_examples(str(output))))
    np.testing.assert_allclose(a.boxes, [[0.8, 0.9, 1.0, 1.0]])
    assert summary.to_dict()["adjusted_boxes"] == {"clipped to the image": 1}


def test_crowd_box_reaches_the_evaluators_ground_truth(tmp_path):
    """iscrowd from the JSON -> image/object/is_crowd -> COCO's iscrowd in the ground truth
    the evaluator builds (odflow.detect.evaluate feeds it from the records). A detection on
    a crowd box is neither a hit nor a false positive, and with no other box there is
    nothing to find: AP is -1. Had the flag been lost, the same detection would score 1."""
    from types import SimpleNamespace

    from odflow.detect.evaluate import evaluate

    json_path = coco_file(tmp_path, images=[
        {"id": 11, "file_name": "sub/b.png", "width": 40, "height": 40}], annotations=[
        {"image_id": 11, "category_id": 7, "bbox": [0, 0, 40, 20], "iscrowd": 1}])
    folder, label_map = images_and_label_map(tmp_path)
    output = tmp_path / "out.record"
    convert_coco(json_path, folder, output, label_map_path=label_map)
    [crowd] = iter_examples(str(output))
    assert crowd.is_crowd.tolist() == [1]

    class OnTheBox:
        format = "fake"

        def detect(self, image):
            assert image.shape == (40, 40, 3)
            return SimpleNamespace(boxes=np.array([[0.0, 0.0, 0.5, 1.0]]),
                                   scores=np.array([0.9]), classes=np.array([1]))

    evaluator = evaluate(OnTheBox(), [str(output)], [{"id": 1, "name": "dog"},
                                                     {"id": 2, "name": "cat"}])
    ground_truth = evaluator._groundtruth_dataset()
    assert [a["iscrowd"] for a in ground_truth["annotations"]] == [1]
    assert evaluator.evaluate()["DetectionBoxes_Precision/mAP@.50IOU"] == -1.0
