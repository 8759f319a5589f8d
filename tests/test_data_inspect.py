"""``inspect``/``validate``: statistics for good records, each kind of error for bad ones."""

from __future__ import annotations

import io
import re

import numpy as np
import pytest
from PIL import Image

from odflow import label_map as label_map_lib
from odflow.data.cli import main as data_main
from odflow.data.example import ImageAnnotation, encode_example
from odflow.data.inspect import inspect_records
from odflow.data.records import RecordWriter


def jpeg(width: int = 40, height: int = 20) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (120, 30, 200)).save(buffer, format="JPEG")
    return buffer.getvalue()


def item(index: int, boxes, classes, encoded: bytes | None = None, height: int = 20,
         width: int = 40) -> ImageAnnotation:
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    return ImageAnnotation(encoded or jpeg(), "jpeg", f"{index}.jpg", f"id-{index}", height,
                           width, boxes, ["face"] * len(boxes), classes)


def write(path, items, raw: list[bytes] = ()) -> str:
    with RecordWriter(path) as writer:
        for annotation in items:
            writer.write(annotation)
        for serialized in raw:
            writer.write_serialized(serialized)
    return str(path)


@pytest.fixture
def label_map(tmp_path):
    path = tmp_path / "label_map.pbtxt"
    label_map_lib.write(path, ["face"])
    return path


def test_good_records_statistics(tmp_path, label_map, capsys):
    path = write(tmp_path / "good.record", [
        item(0, [[0.1, 0.1, 0.6, 0.5], [0.0, 0.0, 1.0, 1.0]], [1, 1]),
        item(1, [], [])])
    report = inspect_records(path, label_map)
    assert report.num_errors == 0
    data = report.to_dict()
    assert data["files"] == {path: 2}
    assert data["images"] == 2 and data["boxes"] == 2 and data["images_without_boxes"] == 1
    assert data["labels"] == {"1": 2}
    assert data["box_height_normalised"] == {"min": 0.5, "mean": 0.75, "max": 1.0}
    assert data["image_formats"] == {"jpeg": 2}
    assert data_main(["inspect", path, "--label-map", str(label_map),
                      "--json", str(tmp_path / "r.json")]) == 0
    out = capsys.readouterr().out
    assert "good.record: 2 records" in out and "no errors" in out
    assert (tmp_path / "r.json").exists()


def test_every_kind_of_error_is_found(tmp_path, label_map, capsys):
    import tensorflow as tf

    missing_keys = tf.train.Example.FromString(encode_example(item(5, [], [])))
    del missing_keys.features.feature["image/encoded"]
    path = write(tmp_path / "bad.record", [
        item(0, [[2.0, 4.0, 10.0, 30.0]], [1]),                        # pixels, not [0, 1]
        item(1, [[0.5, 0.1, 0.2, 0.3]], [1]),                          # ymax < ymin
        item(2, [[0.1, 0.1, 0.2, 0.2]], [7]),                          # not in the label map
        item(3, [], [], encoded=b"\xff\xd8 not really a jpeg"),        # undecodable
        item(4, [], [], encoded=jpeg()[:-20]),                         # truncated JPEG
        item(6, [], [], height=21),                                    # wrong size
    ], raw=[missing_keys.SerializeToString()])
    report = inspect_records(path, label_map)
    assert dict(report.error_counts) == {
        "box outside [0, 1]": 1, "inverted box": 1, "label not in label map": 1,
        "undecodable image": 2, "malformed record": 1, "wrong image size": 1}
    text = "\n".join(report.errors)
    assert "bad.record: record 0: box 0" in text and "are the boxes in pixels?" in text
    assert "record 2: object 0 has class id 7" in text
    assert "record 6: missing keys image/encoded" in text
    assert data_main(["validate", path, "--label-map", str(label_map)]) == 2
    captured = capsys.readouterr()
    assert "7 errors" in captured.err and "inverted box" in captured.out
    # Without a label map the unknown id is not an error; header-only mode misses truncation.
    assert inspect_records(path, decode_images=False).num_errors == 5


def test_duplicate_source_ids(tmp_path):
    path = write(tmp_path / "dup.record", [item(0, [], []), item(0, [], [])])
    report = inspect_records(path)
    assert dict(report.error_counts) == {"duplicate source_id": 1}


def corrupt_inside_jpeg() -> bytes:
    """A JPEG with an intact header and end marker whose scan names Huffman table 3, which
    the file never defines: the header parses, the decoder stops with a fatal error."""
    data = bytearray(jpeg())
    sos = data.index(b"\xff\xda")
    assert data[sos + 4] == 3 and data[sos + 6] == 0x00  # 3 components, tables 0/0
    data[sos + 6] = 0x33
    return bytes(data)


def test_corrupt_inside_jpeg_is_what_training_fails_on():
    import tensorflow as tf

    data = corrupt_inside_jpeg()
    with Image.open(io.BytesIO(data)) as image:  # the header reads fine
        assert image.size == (40, 20)
    assert data.endswith(b"\xff\xd9")
    with pytest.raises(tf.errors.InvalidArgumentError):
        tf.io.decode_jpeg(data)


def test_validate_decode_names_the_record_and_the_image(tmp_path, capsys):
    from odflow.data.inspect import find_undecodable

    path = write(tmp_path / "train.record", [item(0, [], []),
                                             item(1, [], [], encoded=corrupt_inside_jpeg())])
    message = r"train.record: record 1 \(image '1.jpg'\): image/encoded: image cannot be decoded"
    report = inspect_records(path)
    assert dict(report.error_counts) == {"undecodable image": 1}
    assert re.search(message, report.errors[0])
    assert inspect_records(path, decode_images=False).num_errors == 0  # headers only: missed
    assert data_main(["validate", "--decode", path]) == 2
    captured = capsys.readouterr()
    assert re.search(message, captured.out) and "1 errors" in captured.err
    assert data_main(["validate", "--no-decode", path]) == 0
    (found,) = find_undecodable(path)
    assert re.search(r"train.record: record 1 \(image '1.jpg'\): image cannot be decoded", found)


def test_find_undecodable_stops_at_the_limit(tmp_path):
    from odflow.data.inspect import find_undecodable

    path = write(tmp_path / "t.record", [item(i, [], [], encoded=corrupt_inside_jpeg())
                                         for i in range(3)])
    assert len(find_undecodable(path, limit=2)) == 2
    assert find_undecodable(write(tmp_path / "good.record", [item(0, [], [])])) == []


@pytest.mark.slow
def test_validate_cli_exit_code_and_message(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    path = write(tmp_path / "val.record", [item(7, [], [], encoded=corrupt_inside_jpeg())])
    script = Path(__file__).resolve().parents[1] / "scripts" / "create_records.py"
    result = subprocess.run([sys.executable, str(script), "validate", "--decode", path],
                            check=False, capture_output=True, text=True, timeout=300)
    assert result.returncode == 2
    assert "val.record: record 0 (image '7.jpg'): image/encoded: image cannot be decoded" in (
        result.stdout)
    assert "error: 1 errors in" in result.stderr and "Traceback" not in result.stderr
