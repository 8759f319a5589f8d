"""The record layout, the sharded atomic writer and the readers (numpy and tf.data)."""

from __future__ import annotations

import hashlib
import io
import json
import os

import numpy as np
import pytest
from PIL import Image

from odflow.data import example as ex
from odflow.data.example import ImageAnnotation, decode_example, encode_example
from odflow.data.records import (
    RecordWriter,
    count_examples,
    expand_record_paths,
    iter_examples,
    iter_serialized,
    parse_example_tensors,
    shard_paths,
)
from odflow.errors import OdflowError


def image_bytes(width: int, height: int, fmt: str = "JPEG", seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format=fmt)
    return buffer.getvalue()


def annotation(index: int, num_boxes: int = 2, fmt: str = "JPEG", **extra) -> ImageAnnotation:
    encoded = image_bytes(40 + index, 30, fmt, seed=index)
    boxes = np.array([[0.1, 0.2, 0.5, 0.6], [0.0, 0.0, 1.0, 1.0], [0.3, 0.3, 0.4, 0.9]],
                     np.float32)[:num_boxes]
    return ImageAnnotation(
        encoded=encoded, image_format="jpeg" if fmt == "JPEG" else "png",
        filename=f"dir/img_{index}.{fmt.lower()}", source_id=f"id-{index}",
        height=30, width=40 + index, boxes=boxes,
        class_texts=["face", "person", "face"][:num_boxes], class_ids=[1, 2, 1][:num_boxes],
        **extra)


def test_encode_decode_round_trip_keeps_every_field():
    original = annotation(3, 3, difficult=[0, 1, 0], truncated=[1, 0, 0],
                          view=["Frontal", "Left", "Unspecified"], is_crowd=[0, 0, 1])
    decoded = decode_example(encode_example(original))
    assert decoded.encoded == original.encoded  # bytes copied, never re-encoded
    assert decoded.image_format == "jpeg"
    assert decoded.filename == "dir/img_3.jpeg"
    assert decoded.source_id == "id-3"
    assert decoded.sha256 == hashlib.sha256(original.encoded).hexdigest()
    assert (decoded.height, decoded.width) == (30, 43)
    np.testing.assert_allclose(decoded.boxes, original.boxes)
    assert decoded.classes.tolist() == [1, 2, 1]
    assert decoded.class_texts == ["face", "person", "face"]
    assert decoded.difficult.tolist() == [0, 1, 0]
    assert decoded.truncated.tolist() == [1, 0, 0]
    assert decoded.view == ["Frontal", "Left", "Unspecified"]
    assert decoded.is_crowd.tolist() == [0, 0, 1]
    assert decoded.decode_image().shape == (30, 43, 3)
    # The API's key (object_detection/core/standard_fields.py: object_is_crowd).
    import tensorflow as tf
    feature = tf.train.Example.FromString(encode_example(original)).features.feature
    assert list(feature["image/object/is_crowd"].int64_list.value) == [0, 0, 1]
    # Records without the flags (most sources) read as not crowd.
    assert decode_example(encode_example(annotation(3, 3))).is_crowd.tolist() == [0, 0, 0]


def test_crowd_flags_of_the_wrong_length_are_an_error():
    import tensorflow as tf

    proto = tf.train.Example.FromString(encode_example(annotation(0, 2)))
    proto.features.feature["image/object/is_crowd"].int64_list.value.extend([1])
    with pytest.raises(OdflowError, match="r.record: record 2: 2 boxes .*1 image/object/is_crowd"):
        decode_example(proto.SerializeToString(), "r.record: record 2")


def test_layout_uses_the_api_key_names():
    import tensorflow as tf

    proto = tf.train.Example.FromString(encode_example(annotation(0, 1)))
    keys = set(proto.features.feature)
    assert keys == {
        "image/encoded", "image/format", "image/filename", "image/source_id",
        "image/key/sha256", "image/height", "image/width", "image/object/bbox/xmin",
        "image/object/bbox/xmax", "image/object/bbox/ymin", "image/object/bbox/ymax",
        "image/object/class/text", "image/object/class/label"}
    feature = proto.features.feature
    assert feature["image/object/bbox/xmin"].float_list.value[0] == pytest.approx(0.2)
    assert feature["image/object/bbox/ymax"].float_list.value[0] == pytest.approx(0.5)


def test_decode_names_missing_keys():
    import tensorflow as tf

    proto = tf.train.Example.FromString(encode_example(annotation(0, 1)))
    del proto.features.feature["image/object/class/label"]
    del proto.features.feature["image/height"]
    with pytest.raises(OdflowError, match="x.record: record 4: missing keys .*image/height"):
        decode_example(proto.SerializeToString(), "x.record: record 4")
    with pytest.raises(OdflowError, match="not a tf.train.Example"):
        decode_example(b"\xff\xff garbage", "y")


def test_annotation_rejects_mismatched_lengths():
    with pytest.raises(ValueError, match="2 boxes"):
        ImageAnnotation(b"", "jpeg", "a", "a", 1, 1, np.zeros((2, 4)), ["a"], [1, 1])


def test_single_file_writer_and_summary(tmp_path):
    output = tmp_path / "out" / "train.record"
    with RecordWriter(output) as writer:
        for i in range(3):
            writer.write(annotation(i, num_boxes=i))
    assert sorted(os.listdir(output.parent)) == ["train.record", "train.record.summary.json"]
    records = list(iter_examples(str(output)))
    assert [r.source_id for r in records] == ["id-0", "id-1", "id-2"]
    assert [r.num_boxes for r in records] == [0, 1, 2]
    summary = json.loads((output.parent / "train.record.summary.json").read_text())
    assert summary["images"] == 3
    assert summary["images_without_boxes"] == 1
    assert summary["boxes"] == 3
    assert summary["boxes_per_class"] == {"face": 2, "person": 1}
    assert sum(summary["box_size_histogram"]["bins"].values()) == 3
    assert summary["shards"] == [str(output)]
    assert count_examples(str(output)) == 3


def test_sharded_writer_uses_api_names_and_round_robin(tmp_path):
    output = tmp_path / "train.record"
    with RecordWriter(output, num_shards=3) as writer:
        for i in range(7):
            writer.write(annotation(i, 1))
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["train.record-00000-of-00003", "train.record-00001-of-00003",
                     "train.record-00002-of-00003", "train.record.summary.json"]
    per_shard = [[r.source_id for r in iter_examples(str(p))] for p in shard_paths(output, 3)]
    assert per_shard == [["id-0", "id-3", "id-6"], ["id-1", "id-4"], ["id-2", "id-5"]]
    assert count_examples(str(output) + "-?????-of-00003") == 7
    assert count_examples(str(output) + "-*") == 7


def test_rewriting_with_another_shard_count_removes_the_old_shards(tmp_path):
    output = tmp_path / "train.record"
    with RecordWriter(output, num_shards=2) as writer:
        writer.write(annotation(0, 1))
    with RecordWriter(output, num_shards=1) as writer:
        writer.write(annotation(1, 1))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["train.record",
                                                         "train.record.summary.json"]


def test_failure_leaves_no_partial_output_and_keeps_the_old_one(tmp_path):
    output = tmp_path / "train.record"
    with RecordWriter(output) as writer:
        writer.write(annotation(0, 1))
    before = output.read_bytes()
    summary_before = (tmp_path / "train.record.summary.json").read_text()
    with pytest.raises(RuntimeError, match="boom"), RecordWriter(output, num_shards=2) as writer:
        writer.write(annotation(1, 1))
        raise RuntimeError("boom")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["train.record",
                                                         "train.record.summary.json"]
    assert output.read_bytes() == before
    assert (tmp_path / "train.record.summary.json").read_text() == summary_before


def test_expand_record_paths_forms(tmp_path):
    for name in ("a.record-00001-of-00002", "a.record-00000-of-00002", "b.record"):
        (tmp_path / name).write_bytes(b"")
    shard_glob = str(tmp_path / "a.record-?????-of-00002")
    assert expand_record_paths(shard_glob) == [str(tmp_path / "a.record-00000-of-00002"),
                                               str(tmp_path / "a.record-00001-of-00002")]
    assert expand_record_paths(str(tmp_path / "b.record")) == [str(tmp_path / "b.record")]
    both = expand_record_paths([str(tmp_path / "b.record"), str(tmp_path / "a.record-*"),
                                str(tmp_path / "b.record")])
    assert len(both) == 3 and both == sorted(both)
    assert len(expand_record_paths(f"{tmp_path / 'b.record'},{shard_glob}")) == 3
    with pytest.raises(OdflowError, match="'.*missing-\\*' not found"):
        expand_record_paths([str(tmp_path / "b.record"), str(tmp_path / "missing-*")])
    with pytest.raises(OdflowError, match="c.record"):
        expand_record_paths(str(tmp_path / "c.record"))


def test_truncated_file_is_reported(tmp_path):
    output = tmp_path / "t.record"
    with RecordWriter(output) as writer:
        writer.write(annotation(0, 1))
        writer.write(annotation(1, 1))
    data = output.read_bytes()
    output.write_bytes(data[:-10])
    with pytest.raises(OdflowError, match="record 1 is truncated"):
        count_examples(str(output))
    with pytest.raises(OdflowError, match="record 1 is truncated"):
        list(iter_serialized(str(output)))


def test_parse_example_tensors_in_a_tf_data_pipeline(tmp_path):
    import tensorflow as tf

    output = tmp_path / "t.record"
    with RecordWriter(output) as writer:
        writer.write(annotation(0, 2, difficult=[1, 0], is_crowd=[0, 1]))
        writer.write(annotation(1, 0, fmt="PNG"))
        writer.write(annotation(2, 3))  # no difficult flags in the record
    dataset = tf.data.TFRecordDataset(expand_record_paths(str(output)))
    dataset = dataset.map(parse_example_tensors)  # graph mode
    spec = dataset.element_spec
    assert spec["image"].shape.as_list() == [None, None, 3]
    assert spec["image"].dtype == tf.uint8
    assert spec["groundtruth_boxes"].shape.as_list() == [None, 4]
    items = list(dataset.as_numpy_iterator())
    assert [i["source_id"] for i in items] == [b"id-0", b"id-1", b"id-2"]
    assert [i["filename"] for i in items] == [b"dir/img_0.jpeg", b"dir/img_1.png",
                                             b"dir/img_2.jpeg"]
    assert items[1]["image"].shape == (30, 41, 3)
    assert (items[1]["height"], items[1]["width"]) == (30, 41)
    assert items[1]["height"].dtype == np.int32
    # PNG is lossless: the decoded pixels are the generated ones.
    np.testing.assert_array_equal(
        items[1]["image"], np.asarray(Image.open(io.BytesIO(image_bytes(41, 30, "PNG", 1)))))
    np.testing.assert_allclose(items[0]["groundtruth_boxes"], annotation(0, 2).boxes)
    assert items[0]["groundtruth_classes"].tolist() == [1, 2]
    assert items[0]["groundtruth_classes"].dtype == np.int32
    assert items[0]["groundtruth_difficult"].tolist() == [1, 0]
    assert items[1]["groundtruth_boxes"].shape == (0, 4)
    assert items[1]["groundtruth_difficult"].shape == (0,)
    assert items[2]["groundtruth_difficult"].tolist() == [0, 0, 0]
    assert items[2]["groundtruth_difficult"].dtype == np.int32
    assert items[0]["groundtruth_is_crowd"].tolist() == [0, 1]
    assert items[1]["groundtruth_is_crowd"].shape == (0,)
    assert items[2]["groundtruth_is_crowd"].tolist() == [0, 0, 0]



@pytest.mark.parametrize("options", [{"format": "JPEG"}, {"format": "JPEG", "progressive": True},
                                     {"format": "JPEG", "exif": b"Exif\x00\x00" + b"\x00" * 64},
                                     {"format": "PNG"}])
def test_header_size_matches_pillow(options):
    buffer = io.BytesIO()
    Image.new("RGB", (123, 45), (1, 2, 3)).save(buffer, **options)
    fmt = options["format"].lower()
    assert ex._header_size(buffer.getvalue()) == (fmt, 45, 123)
    assert ex.image_info(buffer.getvalue(), "x") == (fmt, 45, 123)


def test_image_info_rejects_other_formats():
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buffer, format="BMP")
    assert ex._header_size(buffer.getvalue()) is None
    with pytest.raises(OdflowError, match="img.bmp: image format BMP is not supported"):
        ex.image_info(buffer.getvalue(), "img.bmp")


def test_image_without_boxes_has_empty_typed_lists():
    import tensorflow as tf

    proto = tf.train.Example.FromString(encode_example(annotation(0, 0)))
    feature = proto.features.feature
    assert feature["image/object/bbox/xmin"].WhichOneof("kind") == "float_list"
    assert feature["image/object/class/label"].WhichOneof("kind") == "int64_list"
    assert len(feature["image/object/bbox/xmin"].float_list.value) == 0


def test_counting_no_records_is_an_error_naming_the_files(tmp_path):
    # The tfrecord source's records are the user's: 0 examples must stop the config stage.
    output = tmp_path / "val.record"
    with RecordWriter(output):  # no ``source``: an empty file is allowed to be written
        pass
    with pytest.raises(OdflowError, match=r"val.record: 0 records \(examples\) in 1 file; "
                                          r"an empty set cannot train or be evaluated"):
        count_examples(str(output))
    assert count_examples(str(output), allow_empty=True) == 0


def test_converter_writer_refuses_an_empty_set(tmp_path):
    output = tmp_path / "train.record"
    with (pytest.raises(OdflowError, match=r"train.record: 0 images after converting "
                                           r"labels.csv \(0 read\)"),
          RecordWriter(output, num_shards=2, source="labels.csv")):
        pass
    assert list(tmp_path.iterdir()) == []


def test_writer_removes_only_its_own_leftover_temporaries(tmp_path):
    from odflow.utils.atomic import temporary_path_for

    ours = [temporary_path_for(tmp_path / "train.record"),           # named by the real code
            tmp_path / ".train.record.k2_9xq0a.tmp",
            tmp_path / ".train.record-00001-of-00004.abcdefgh.tmp",   # another shard count
            tmp_path / ".train.record.summary.json.a1b2c3d4.tmp"]
    others = [tmp_path / ".val.record.abcdefgh.tmp",                 # another output
              tmp_path / ".train.record.notes.tmp",                  # not mkstemp's 8 chars
              tmp_path / "train.record.abcdefgh.tmp",                # no leading dot
              tmp_path / ".train.record.abcdefgh.tmp.keep",
              tmp_path / ".train.records.abcdefgh.tmp"]
    for path in ours + others:
        path.write_bytes(b"partial")
    with RecordWriter(tmp_path / "train.record") as writer:
        writer.write(annotation(0, 1))
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == sorted([p.name for p in others] + ["train.record",
                                                      "train.record.summary.json"])


@pytest.mark.slow
def test_after_kill_9_the_next_run_removes_the_leftovers(tmp_path):
    import signal
    import subprocess
    import sys
    import time

    from odflow.data.synthetic import SyntheticConfig, generate_records

    output = tmp_path / "datasets" / "train.record"
    process = subprocess.Popen(
        [sys.executable, "-m", "odflow.data", "synthetic", "--num-images", "100000",
         "--height", "64", "--width", "64", "-o", str(output)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not list(output.parent.glob(".train.record.*.tmp")):
            assert process.poll() is None and time.monotonic() < deadline
            time.sleep(0.1)
        time.sleep(0.5)  # let it write a few records
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    leftovers = list(output.parent.glob(".train.record.*.tmp"))
    assert leftovers and not output.exists()
    generate_records(output, num_images=2, config=SyntheticConfig(height=64, width=64))
    assert sorted(p.name for p in output.parent.iterdir()) == [
        "train.record", "train.record.summary.json"]
