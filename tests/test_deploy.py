"""Every deployed format detects what the frozen graph detects.

The model is the shipped demo's (``tests/fixtures/demo_model``, see SOURCE.md), re-exported
here; the images are the demo's own synthetic val images, where it finds faces with scores
well above 0.5.  The reference is the frozen graph run directly in a ``tf.compat.v1.Session``
(not through odflow's runners); each converted file runs through ``odflow.detect``'s runner
for its format, as ``odflow detect`` and the metrics do.
"""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from odflow import cli
from odflow import config as config_lib
from odflow.data import synthetic
from odflow.export.exporter import export_model

pytestmark = pytest.mark.slow

FIXTURE = Path(__file__).parent / "fixtures" / "demo_model"
REPO = Path(__file__).resolve().parents[1]
OUTPUTS = ["detection_boxes:0", "detection_scores:0", "detection_classes:0", "num_detections:0"]
NUM_IMAGES = 4


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of ``[N, 4]`` and ``[M, 4]`` boxes, written out here (not odflow's box_ops)."""
    y0 = np.maximum(a[:, None, 0], b[None, :, 0])
    x0 = np.maximum(a[:, None, 1], b[None, :, 1])
    y1 = np.minimum(a[:, None, 2], b[None, :, 2])
    x1 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(y1 - y0, 0, None) * np.clip(x1 - x0, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return inter / (area_a[:, None] + area_b[None, :] - inter)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    root = tmp_path_factory.mktemp("deploy")
    export = root / "exported_model"
    export_model(config_lib.load(FIXTURE / "pipeline.config"), str(FIXTURE / "model.ckpt"),
                 export, label_map_path=FIXTURE / "label_map.pbtxt", use_moving_averages="false")
    # A few training images to calibrate the int8 model (the demo's generator, seed 1).
    synthetic.generate_records(root / "train.record", split="train", num_images=24, seed=1,
                               label_map_path=FIXTURE / "label_map.pbtxt")
    return root


@pytest.fixture(scope="module")
def images() -> list[np.ndarray]:
    """The demo's first val images, and one of them cropped to a non-square size (resize)."""
    picks = [synthetic.generate_example(synthetic.split_rng(1, "val", i)).image
             for i in range(NUM_IMAGES)]
    return picks + [np.ascontiguousarray(picks[0][20:220, 10:250])]


@pytest.fixture(scope="module")
def reference(workdir, images) -> list[dict[str, np.ndarray]]:
    graph_def = tf.compat.v1.GraphDef()
    graph_def.ParseFromString((workdir / "exported_model" /
                               "frozen_inference_graph.pb").read_bytes())
    graph = tf.Graph()
    with graph.as_default():
        tf.import_graph_def(graph_def, name="")
    results = []
    with tf.compat.v1.Session(graph=graph) as session:
        for image in images:
            boxes, scores, classes, count = session.run(OUTPUTS, {"image_tensor:0": image[None]})
            n = int(count[0])
            results.append({"boxes": boxes[0, :n], "scores": scores[0, :n],
                            "classes": classes[0, :n].astype(int)})
    assert sum(int((r["scores"] > 0.5).sum()) for r in results) >= NUM_IMAGES, \
        "the fixture model should find faces with scores above 0.5"
    return results


def convert(workdir: Path, fmt: str, name: str) -> Path:
    output = workdir / "exported_model" / name
    if not output.exists():
        extra = (["--calibration_records", str(workdir / "train.record"),
                  "--calibration_images", "24"] if fmt == "tflite_int8" else [])
        assert cli.main(["convert", "--format", fmt, "--export_dir",
                         str(workdir / "exported_model"), "--output", str(output), *extra]) == 0
    return output


def run(path: Path, images):
    from odflow.detect import load_detector

    detector = load_detector(path)
    return detector, [detector.detect(image) for image in images]


@pytest.mark.parametrize("fmt, name", [("tflite", "model.tflite"), ("onnx", "model.onnx")])
def test_float_formats_match_the_frozen_graph(workdir, images, reference, fmt, name):
    detector, got = run(convert(workdir, fmt, name), images)
    assert detector.format == fmt
    for want, have in zip(reference, got):
        np.testing.assert_allclose(have.boxes[:10], want["boxes"][:10], atol=1e-3)
        np.testing.assert_allclose(have.scores[:10], want["scores"][:10], atol=1e-3)
        np.testing.assert_array_equal(have.classes[:10], want["classes"][:10])


@pytest.mark.parametrize("path", ["exported_model", "exported_model/saved_model"])
def test_tensorflow_runners_match_the_frozen_graph(workdir, images, reference, path):
    detector, got = run(workdir / path, images)
    assert detector.format == ("saved_model" if "saved" in path else "frozen_graph")
    for want, have in zip(reference, got):
        np.testing.assert_allclose(have.boxes, want["boxes"], atol=1e-5)
        np.testing.assert_allclose(have.scores, want["scores"], atol=1e-5)


def test_int8_tflite_finds_the_frozen_graphs_confident_boxes(workdir, images, reference):
    detector, got = run(convert(workdir, "tflite_int8", "model_int8.tflite"), images)
    assert detector.format == "tflite_int8"
    for want, have in zip(reference, got):
        confident = want["boxes"][want["scores"] > 0.5]
        if len(confident) == 0:
            continue
        ious = box_iou(confident, have.boxes[have.scores > 0.3])
        assert ious.shape[1] and (ious.max(axis=1) >= 0.9).all(), ious.max(axis=1)


def test_int8_is_at_most_a_third_and_a_half_of_the_float_size(workdir):
    float_size = convert(workdir, "tflite", "model.tflite").stat().st_size
    int8_size = convert(workdir, "tflite_int8", "model_int8.tflite").stat().st_size
    assert int8_size * 3.5 <= float_size, (int8_size, float_size)


def test_metadata_beside_each_file(workdir):
    import hashlib

    digest = hashlib.sha256()
    for name in ("model.ckpt.data-00000-of-00001", "model.ckpt.index"):
        digest.update(name.encode() + (workdir / "exported_model" / name).read_bytes())
    for fmt, name in [("tflite", "model.tflite"), ("tflite_int8", "model_int8.tflite"),
                      ("onnx", "model.onnx")]:
        meta = json.loads((convert(workdir, fmt, name).parent / f"{name}.json").read_text())
        assert meta["format"] == fmt
        assert meta["checkpoint"]["sha256"] == digest.hexdigest()
        assert meta["label_map"] == [{"id": 1, "name": "face", "display_name": "face"}]
        assert meta["input"]["mean"] == 127.5 and meta["input"]["std"] == 127.5
    meta = json.loads((workdir / "exported_model" / "model_int8.tflite.json").read_text())
    assert meta["input"]["shape"] == [1, 256, 256, 3] and meta["input"]["dtype"] == "uint8"


def test_detect_cli_writes_coco_json_csv_and_pictures(workdir, images, reference, tmp_path):
    from PIL import Image

    folder = tmp_path / "photos"
    folder.mkdir()
    for i, image in enumerate(images[:2]):
        Image.fromarray(image).save(folder / f"img{i}.png")  # lossless: same pixels as above
    (folder / "corrupt.jpg").write_bytes(b"\xff\xd8 truncated")
    out = tmp_path / "out"
    result = subprocess.run(
        [sys.executable, "-m", "odflow", "detect", "--model",
         str(convert(workdir, "tflite", "model.tflite")), "--images", str(folder),
         "--min-score", "0.5", "--output", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "corrupt.jpg" in result.stderr and "skipped 1 unreadable" in result.stderr
    coco = json.loads((out / "detections.json").read_text())
    ids = {entry["file_name"].rsplit("/", 1)[-1]: entry["id"]
           for entry in json.loads((out / "images.json").read_text())}
    for i in range(2):
        want = reference[i]
        keep = want["scores"] >= 0.5
        height, width = images[i].shape[:2]
        expected = [[x0 * width, y0 * height, (x1 - x0) * width, (y1 - y0) * height]
                    for y0, x0, y1, x1 in want["boxes"][keep]]
        got = [e for e in coco if e["image_id"] == ids[f"img{i}.png"]]
        assert len(got) == int(keep.sum())
        np.testing.assert_allclose([e["bbox"] for e in got], expected, atol=0.5)
        assert all(e["category_id"] == 1 for e in got)
    with open(out / "detections.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == len(coco) and {r["class"] for r in rows} == {"face"}
    assert len(list((out / "images").glob("*.jpg"))) == 2
    done = json.loads((out / "done").read_text())
    assert done["num_images"] == 2 and done["skipped"][0].endswith("corrupt.jpg")


def test_evaluate_model_scores_every_format_alike(workdir, tmp_path):
    """The metrics of the frozen graph and the float TFLite file on a few val images agree."""
    records = tmp_path / "val.record"
    synthetic.generate_records(records, split="val", num_images=12, seed=1,
                               label_map_path=FIXTURE / "label_map.pbtxt")
    metrics = {}
    for fmt, model in [("frozen_graph", workdir / "exported_model"),
                       ("tflite", convert(workdir, "tflite", "model.tflite"))]:
        output = tmp_path / f"metrics_{fmt}.json"
        assert cli.main(["evaluate-model", "--model", str(model), "--records", str(records),
                         "--label_map", str(FIXTURE / "label_map.pbtxt"),
                         "--output", str(output)]) == 0
        payload = json.loads(output.read_text())
        assert payload["format"] == fmt and payload["num_images"] == 12
        metrics[fmt] = payload["metrics"]
    ap50 = "DetectionBoxes_Precision/mAP@.50IOU"
    assert metrics["frozen_graph"][ap50] > 0.5
    assert abs(metrics["tflite"][ap50] - metrics["frozen_graph"][ap50]) <= 0.005


def test_reexport_replaces_the_converted_files(workdir, tmp_path):
    """A new export makes the converted files stale: it may replace them (no 'foreign files')."""
    convert(workdir, "tflite", "model.tflite")
    export = tmp_path / "exported_model"
    shutil.copytree(workdir / "exported_model", export)
    assert (export / "model.tflite").exists()
    export_model(config_lib.load(FIXTURE / "pipeline.config"), str(FIXTURE / "model.ckpt"),
                 export, label_map_path=FIXTURE / "label_map.pbtxt", use_moving_averages="false")
    assert not (export / "model.tflite").exists()
