"""YOLO txt datasets -> records, on hand-made files: every rule of odflow.data.yolo_source.

Expected boxes are worked by hand: ``cx cy w h`` on a W x H image ->
``[cy - h/2, cx - w/2, cy + h/2, cx + w/2]`` (already normalised).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest

from odflow import label_map as label_map_lib
from odflow.data.cli import main as data_main
from odflow.data.records import iter_examples
from odflow.data.yolo_source import convert_yolo, label_path, load_data_yaml
from odflow.errors import OdflowError
from tests.test_data_csv import write_image


def dataset(root: Path, split: str = "train") -> Path:
    """root/images/<split>/{a.jpg (two boxes), sub/b.png (one), c.jpg (no label file)}."""
    images = root / "images" / split
    labels = root / "labels" / split
    write_image(images / "a.jpg", 100, 50, 0)
    write_image(images / "sub" / "b.png", 40, 40, 1)
    write_image(images / "c.jpg", 60, 30, 2)
    (labels / "sub").mkdir(parents=True, exist_ok=True)
    (labels / "a.txt").write_text("1 0.2 0.5 0.2 0.8\n0 0.75 0.5 0.5 1.0\n")
    (labels / "sub" / "b.txt").write_text("0 0.5 0.25 1.0 0.5\n")
    return images


def label_map_file(tmp_path: Path, names=("dog", "cat")) -> Path:
    path = tmp_path / "label_map.pbtxt"
    label_map_lib.write(path, list(names))
    return path


def test_label_path_replaces_the_last_images_component():
    assert label_path(Path("/d/images/x/images/train/a.b.jpg")) == \
        Path("/d/images/x/labels/train/a.b.txt")
    with pytest.raises(OdflowError, match="no 'images' folder"):
        label_path(Path("/d/pictures/a.jpg"))


def test_data_yaml_names_dict_boxes_and_negatives(tmp_path):
    root = tmp_path / "ds"
    dataset(root, "train")
    dataset(root, "val")
    (root / "data.yaml").write_text("path: .\ntrain: images/train\nval: images/val\n"
                                    "names:\n  0: cat\n  1: dog\n")
    label_map = label_map_file(tmp_path)  # dog is 1, cat is 2: mapped by name
    output = tmp_path / "train.record"
    assert data_main(["yolo", "--data", str(root / "data.yaml"), "--split", "train",
                      "--label-map", str(label_map), "-o", str(output)]) == 0
    a, c, b = iter_examples(str(output))  # sorted paths: a.jpg, c.jpg, sub/b.png
    assert (a.filename, a.width, a.height) == ("a.jpg", 100, 50)
    np.testing.assert_allclose(a.boxes, [[0.1, 0.1, 0.9, 0.3], [0.0, 0.5, 1.0, 1.0]],
                               atol=1e-6)
    assert a.class_texts == ["dog", "cat"] and a.classes.tolist() == [1, 2]
    assert c.filename == "c.jpg" and c.num_boxes == 0
    assert b.filename == "sub/b.png"
    np.testing.assert_allclose(b.boxes, [[0.0, 0.0, 0.5, 1.0]], atol=1e-6)
    summary = json.loads((tmp_path / "train.record.summary.json").read_text())
    assert summary["options"]["source"] == "yolo" and summary["images_without_boxes"] == 1


def test_roboflow_data_yaml_resolves_like_ultralytics(tmp_path, caplog):
    """Roboflow's export: data.yaml in the root saying ../train/images (not there: the ../
    is dropped, as Ultralytics does), names as a list, nc."""
    root = tmp_path / "export"
    for split in ("train", "valid"):
        images = root / split / "images"
        write_image(images / "x_jpg.rf.1.jpg", 64, 32, 3)
        (root / split / "labels").mkdir(parents=True)
        (root / split / "labels" / "x_jpg.rf.1.txt").write_text("0 0.5 0.5 0.5 0.5\n")
    (root / "data.yaml").write_text(
        "train: ../train/images\nval: ../valid/images\ntest: ../test/images\n\nnc: 1\n"
        "names: ['face']\n\nroboflow:\n  workspace: w\n  project: p\n  version: 1\n")
    with caplog.at_level(logging.INFO):
        data = load_data_yaml(root / "data.yaml")
    assert data.names == ["face"]
    assert data.splits == {"train": [root / "train/images"], "val": [root / "valid/images"]}
    assert "not found at" in caplog.text and "Ultralytics' rules" in caplog.text
    output = tmp_path / "val.record"
    convert_yolo(data.splits["val"], output, label_map_path=label_map_file(tmp_path, ["face"]),
                 names=data.names, source=root / "data.yaml")
    [x] = iter_examples(str(output))
    np.testing.assert_allclose(x.boxes, [[0.25, 0.25, 0.75, 0.75]])


def test_path_key_takes_precedence_and_missing_split_names_candidates(tmp_path):
    root = tmp_path / "ds"
    dataset(root)
    (tmp_path / "cfg").mkdir()
    yaml_path = tmp_path / "cfg" / "data.yaml"
    yaml_path.write_text("path: ../ds\ntrain: images/train\nval: images/val\nnames: [a]\n")
    with pytest.raises(OdflowError, match=r"val: 'images/val' not found \(tried .*ds/images/val"):
        load_data_yaml(yaml_path)
    (root / "images" / "val").mkdir()
    assert load_data_yaml(yaml_path).splits["train"] == [tmp_path / "cfg/../ds/images/train"]


def test_folders_without_yaml_use_the_label_maps_order(tmp_path):
    images = dataset(tmp_path / "ds")
    output = tmp_path / "out.record"
    convert_yolo([images], output, label_map_path=label_map_file(tmp_path, ["cat", "dog"]))
    a = next(iter(iter_examples(str(output))))
    assert a.class_texts == ["dog", "cat"]  # class 1 = the second name, class 0 = the first


@pytest.mark.parametrize(("line", "expected"), [
    ("0 0.5 0.5 0.2", r"a\.txt:2: expected 'class cx cy w h' \(5 numbers\), found 4"),
    ("0 0.1 0.1 0.2 0.1 0.2 0.2", r"a\.txt:2: .*found 7 fields \(a segmentation polygon\?\)"),
    ("0 0.5 x 0.2 0.2", r"a\.txt:2: not a number"),
    ("nan 0.5 0.5 0.2 0.2", r"a\.txt:2: not a number"),
    ("2 0.5 0.5 0.2 0.2", r"a\.txt:2: class 2 is not a class id 0\.\.1"),
    ("0.5 0.5 0.5 0.2 0.2", r"a\.txt:2: class 0\.5 is not a class id"),
    ("0 50 25 20 10", r"a\.txt:2: cx cy w h = 50 25 20 10 are not normalised"),
], ids=["four-fields", "polygon", "text", "nan", "class-range", "class-fraction", "pixels"])
def test_bad_label_line_names_file_and_line(tmp_path, line, expected):
    images = dataset(tmp_path / "ds")
    label = tmp_path / "ds" / "labels" / "train" / "a.txt"
    label.write_text("1 0.2 0.5 0.2 0.8\n" + line + "\n")
    before = label.read_bytes()
    output = tmp_path / "out.record"
    with pytest.raises(OdflowError, match=expected):
        convert_yolo([images], output, label_map_path=label_map_file(tmp_path))
    assert not output.exists() and label.read_bytes() == before


def test_skip_bad_counts_the_bad_label_file_and_goes_on(tmp_path):
    images = dataset(tmp_path / "ds")
    (tmp_path / "ds" / "labels" / "train" / "a.txt").write_text("0 0.5 0.5\n")
    output = tmp_path / "out.record"
    summary = convert_yolo([images], output, label_map_path=label_map_file(tmp_path),
                           skip_bad=True)
    assert [e.filename for e in iter_examples(str(output))] == ["c.jpg", "sub/b.png"]
    assert summary.to_dict()["dropped_images"] == {"malformed label file": 1}


def test_unknown_and_no_common_classes(tmp_path):
    root = tmp_path / "ds"
    images = dataset(root)
    names = ["cat", "dog"]
    with pytest.raises(OdflowError, match=r"\[dog\] are not in classes \[cat\]"):
        convert_yolo([images], tmp_path / "o.record", names=names,
                     label_map_path=label_map_file(tmp_path, ["cat"]))
    summary = convert_yolo([images], tmp_path / "o.record", names=names,
                           label_map_path=label_map_file(tmp_path, ["cat"]),
                           skip_unknown_classes=True)
    assert summary.to_dict()["dropped_boxes"] == {
        "class 'dog' not in classes (skip_unknown_classes)": 1}
    with pytest.raises(OdflowError, match=r"set in config.yaml:  classes: \[cat, dog\]"):
        convert_yolo([images], tmp_path / "o.record", names=names,
                     label_map_path=label_map_file(tmp_path, ["face"]))


@pytest.mark.parametrize("text, message", [
    ("train: [a\nnames: [x]\n", r"data\.yaml:\d+:\d+: not valid YAML"),
    ("train: a\nval: b\n", "no 'names'"),
    ("train: a\nval: b\nnames: {0: x, 2: y}\n", r"ids must be 0\.\.1 without gaps"),
    ("train: a\nval: b\nnc: 3\nnames: [x]\n", "nc is 3 but names has 1"),
], ids=["not-yaml", "no-names", "id-gap", "nc-mismatch"])
def test_yaml_errors(tmp_path, text, message):
    path = tmp_path / "data.yaml"
    path.write_text(text)
    with pytest.raises(OdflowError, match=message):
        load_data_yaml(path)


def test_other_image_types_are_reported(tmp_path):
    images = dataset(tmp_path / "ds")
    (images / "d.bmp").write_bytes(b"BM")
    with pytest.raises(OdflowError, match=r"d\.bmp: neither JPEG nor PNG \(1 such image"):
        convert_yolo([images], tmp_path / "o.record", label_map_path=label_map_file(tmp_path))
    summary = convert_yolo([images], tmp_path / "o.record", skip_bad=True,
                           label_map_path=label_map_file(tmp_path))
    assert summary.images == 3
    assert summary.to_dict()["dropped_images"] == {"image neither JPEG nor PNG": 1}
