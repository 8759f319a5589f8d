"""Unit tests of the deploy pieces that need no model: hand-worked values, error paths."""

from __future__ import annotations

import json

import numpy as np
import pytest

from odflow import cli
from odflow.detect import images as images_lib
from odflow.detect.outputs import Results, pixel_boxes
from odflow.detect.runners import Detections, _from_padded, load_detector
from odflow.errors import OdflowError
from odflow.export import metadata
from odflow.export.tflite import PostProcessSettings, center_size_anchors


def test_center_size_anchors_hand_worked():
    corners = np.array([[0.1, 0.2, 0.5, 0.4], [0.0, 0.0, 1.0, 1.0]], np.float32)
    # ycenter = (0.1 + 0.5) / 2, xcenter = (0.2 + 0.4) / 2, h = 0.4, w = 0.2
    np.testing.assert_allclose(center_size_anchors(corners),
                               [[0.3, 0.3, 0.4, 0.2], [0.5, 0.5, 1.0, 1.0]], atol=1e-7)


def test_implements_signature_is_the_api_format():
    settings = PostProcessSettings(num_classes=3, max_detections=100, detections_per_class=50,
                                   nms_score_threshold=1e-8, nms_iou_threshold=0.6,
                                   y_scale=10.0, x_scale=10.0, h_scale=5.0, w_scale=5.0,
                                   use_regular_nms=False)
    # Written out by hand from the TF OD API's export_tflite_graph_lib_tf2 attribute list.
    assert settings.implements_signature() == (
        'name: "TFLite_Detection_PostProcess" '
        'attr { key: "max_detections" value { i: 100 } } '
        'attr { key: "max_classes_per_detection" value { i: 1 } } '
        'attr { key: "detections_per_class" value { i: 50 } } '
        'attr { key: "num_classes" value { i: 3 } } '
        'attr { key: "use_regular_nms" value { b: false } } '
        'attr { key: "nms_score_threshold" value { f: 1e-08 } } '
        'attr { key: "nms_iou_threshold" value { f: 0.6 } } '
        'attr { key: "y_scale" value { f: 10 } } '
        'attr { key: "x_scale" value { f: 10 } } '
        'attr { key: "h_scale" value { f: 5 } } '
        'attr { key: "w_scale" value { f: 5 } }')


def test_padded_outputs_are_cut_clipped_and_sorted():
    boxes = np.array([[[-0.1, 0.2, 0.5, 1.3], [0.2, 0.2, 0.2, 0.6], [0.1, 0.1, 0.3, 0.3],
                       [0.0, 0.0, 0.0, 0.0]]], np.float32)
    scores = np.array([[0.6, 0.9, 0.8, 0.0]], np.float32)
    classes = np.array([[0.0, 1.0, 2.0, 0.0]], np.float32)  # 0-based, as TFLite gives them
    got = _from_padded(boxes, scores, classes, np.array([3.0]), class_offset=1)
    # The zero-height box is dropped; the others clipped to [0, 1] and sorted by score.
    np.testing.assert_allclose(got.boxes, [[0.1, 0.1, 0.3, 0.3], [0.0, 0.2, 0.5, 1.0]])
    np.testing.assert_allclose(got.scores, [0.8, 0.6])
    np.testing.assert_array_equal(got.classes, [3, 1])


def test_pixel_boxes_and_coco_rows_hand_worked():
    detections = Detections(np.array([[0.25, 0.5, 0.75, 1.0]], np.float32),
                            np.array([0.9], np.float32), np.array([1]))
    np.testing.assert_allclose(pixel_boxes(detections, 200, 100), [[50, 50, 100, 150]])
    results = Results({1: "face"})
    results.add(7, "a.jpg", 200, 100, detections)
    assert results.coco == [{"image_id": 7, "file_name": "a.jpg", "category_id": 1,
                             "bbox": [50.0, 50.0, 50.0, 100.0], "score": 0.9}]
    assert results.rows == [["a.jpg", 100, 200, "face", 0.9, 50.0, 50.0, 100.0, 150.0]]


def test_image_folder_listing_and_unreadable_images(tmp_path):
    from PIL import Image

    (tmp_path / "sub").mkdir()
    Image.new("RGB", (8, 6), (255, 0, 0)).save(tmp_path / "b.png")
    Image.new("RGB", (4, 4)).save(tmp_path / "sub" / "a.jpg")
    (tmp_path / "broken.jpg").write_bytes(b"not a jpeg")
    (tmp_path / "notes.txt").write_text("ignored")
    files = images_lib.list_sources(str(tmp_path))
    assert [f.rsplit("/", 1)[-1] for f in files] == ["b.png", "broken.jpg", "a.jpg"]
    items = list(images_lib.iter_images(files))
    assert items[0].image.shape == (6, 8, 3) and items[0].image[0, 0].tolist() == [255, 0, 0]
    assert items[1].image is None and "broken.jpg" in items[1].name and items[1].error
    with pytest.raises(OdflowError, match="no file matches"):
        images_lib.list_sources(str(tmp_path / "*.gif"))


def test_checkpoint_fingerprint_covers_index_and_data(tmp_path):
    import hashlib

    (tmp_path / "model.ckpt.index").write_bytes(b"index")
    (tmp_path / "model.ckpt.data-00000-of-00001").write_bytes(b"data")
    (tmp_path / "model.ckpt.meta").write_bytes(b"not part of the weights")
    expected = hashlib.sha256(b"model.ckpt.data-00000-of-00001data"
                              b"model.ckpt.indexindex").hexdigest()
    assert metadata.checkpoint_fingerprint(tmp_path / "model.ckpt") == expected
    assert metadata.metadata_path(tmp_path / "m.tflite").name == "m.tflite.json"


def test_unknown_model_path_is_a_clear_error(tmp_path):
    with pytest.raises(OdflowError, match="does not exist"):
        load_detector(tmp_path / "missing.tflite")
    (tmp_path / "weights.h5").write_bytes(b"x")
    with pytest.raises(OdflowError, match="not an exported model"):
        load_detector(tmp_path / "weights.h5")
    (tmp_path / "broken.tflite").write_bytes(b"not a flatbuffer")
    with pytest.raises(OdflowError, match="broken.tflite"):
        load_detector(tmp_path / "broken.tflite")


def test_dispatcher_usage_and_unknown_command(capsys):
    assert cli.main([]) == 2
    assert "detect" in capsys.readouterr().out
    assert cli.main(["frobnicate"]) == 2
    assert "unknown command 'frobnicate'" in capsys.readouterr().err


def test_detect_with_a_missing_model_exits_2_without_traceback(tmp_path, capsys):
    from PIL import Image

    Image.new("RGB", (4, 4)).save(tmp_path / "a.jpg")
    code = cli.main(["detect", "--model", str(tmp_path / "nope.onnx"), "--images",
                     str(tmp_path), "--output", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2 and "nope.onnx does not exist" in err and "Traceback" not in err
    assert not (tmp_path / "out" / "done").exists()


def test_metadata_reader_reports_a_corrupt_file(tmp_path):
    (tmp_path / "m.onnx.json").write_text("{not json")
    with pytest.raises(OdflowError, match="m.onnx.json"):
        metadata.read(tmp_path / "m.onnx")
    (tmp_path / "n.onnx.json").write_text(json.dumps({"format": "onnx"}))
    assert metadata.read(tmp_path / "n.onnx") == {"format": "onnx"}


def test_convert_cli_lists_every_format():
    from odflow.export import convert_cli, formats

    assert convert_cli.FORMATS == formats.FORMATS


def test_convert_from_an_incomplete_export_names_what_is_missing(tmp_path, capsys):
    (tmp_path / "pipeline.config").write_text("")
    output = tmp_path / "model.tflite"
    code = cli.main(["convert", "--format", "tflite", "--export_dir", str(tmp_path),
                     "--output", str(output)])
    err = capsys.readouterr().err
    assert code == 2 and "model.ckpt.index" in err and "label_map.pbtxt" in err
    assert "Traceback" not in err and not output.exists()
    assert list(tmp_path.iterdir()) == [tmp_path / "pipeline.config"]


def test_int8_without_calibration_records_is_an_error(tmp_path, capsys):
    from odflow.export import formats

    for name in ("pipeline.config", "model.ckpt.index", "label_map.pbtxt"):
        (tmp_path / name).write_text("")
    with pytest.raises(OdflowError, match="--calibration_records"):
        formats.export_tflite(tmp_path, tmp_path / "m.tflite", int8=True)


class _OneBoxDetector:
    """Finds the top-left quarter box of every image with score 0.9 (a stand-in runner)."""

    format = "stand-in"

    def detect(self, image):
        from odflow.detect.runners import Detections
        return Detections(np.array([[0.0, 0.0, 0.5, 0.5]], np.float32),
                          np.array([0.9], np.float32), np.array([1], np.int64))


@pytest.mark.parametrize("crowd_flag, expected_ap", [(1, 1.0), (0, 51 / 101)])
def test_evaluate_model_honours_the_records_crowd_flags(tmp_path, crowd_flag, expected_ap):
    """A second, undetected box: ignored when flagged crowd (AP 1), else recall stops at 0.5
    (COCO's 101-point precision is 1 at recalls 0..0.50, 51 points, then 0)."""
    import io

    from PIL import Image

    from odflow.data.example import ImageAnnotation
    from odflow.data.records import RecordWriter
    from odflow.detect.evaluate import evaluate

    buffer = io.BytesIO()
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(buffer, format="PNG")
    with RecordWriter(tmp_path / "val.record") as writer:
        writer.write(ImageAnnotation(
            encoded=buffer.getvalue(), image_format="png", filename="a.png", source_id="a",
            height=64, width=64, boxes=np.array([[0.0, 0.0, 0.5, 0.5], [0.6, 0.6, 1.0, 1.0]]),
            class_texts=["face"] * 2, class_ids=[1, 1], is_crowd=[0, crowd_flag]))
    evaluator = evaluate(_OneBoxDetector(), [str(tmp_path / "val.record")],
                         [{"id": 1, "name": "face"}])
    metrics = evaluator.evaluate()
    assert metrics["DetectionBoxes_Precision/mAP@.50IOU"] == pytest.approx(expected_ap)
