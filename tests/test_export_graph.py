"""End to end: export a tiny trained model and run it through the tutorial's two clients.

The model: SSD MobileNet v1 at depth multiplier 0.25, 128x128 fixed_shape_resizer, one class,
weights drawn at random (spread so that NMS has no ties) and written as a TF1-style training
checkpoint with ``V/ExponentialMovingAverage`` shadows and optimiser slots.  Clients feed images
of other sizes than 128x128; their detections must equal the in-process model's.
"""

from __future__ import annotations

import io
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from odflow import config as config_lib
from odflow.checkpoints import write_bundle
from odflow.export import exporter
from odflow.export.cli import main as export_main
from odflow.export.signature import OUTPUT_NAMES

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "export_inference_graph.py"

SAMPLE_CONFIG = (Path(__file__).parent / "fixtures" / "reference" / "sample_configs"
                 / "ssd_mobilenet_v1_coco.config")
SIZE = 128
STEP = 41471
CLIENT_SIZES = [(200, 150), (97, 333)]
EMA = "/ExponentialMovingAverage"

pytestmark = pytest.mark.slow


def tiny_config(use_moving_averages: bool = True):
    cfg = config_lib.load(SAMPLE_CONFIG)
    ssd = cfg.model.ssd
    ssd.num_classes = 1
    ssd.image_resizer.fixed_shape_resizer.height = SIZE
    ssd.image_resizer.fixed_shape_resizer.width = SIZE
    ssd.feature_extractor.depth_multiplier = 0.25
    cfg.eval_config.use_moving_averages = use_moving_averages
    return cfg


def build_model(cfg):
    from odflow.model import builder

    return builder.build(cfg.model, is_training=False)


def random_weights(variables: dict[str, tf.Variable], seed: int) -> dict[str, np.ndarray]:
    """Plausible trained-looking values: He-scaled weights, positive variances, spread biases."""
    rng = np.random.default_rng(seed)
    values = {}
    for name, variable in variables.items():
        shape = [int(d) for d in variable.shape]
        leaf = name.rsplit("/", 1)[-1]
        if leaf == "moving_variance":
            value = rng.uniform(0.5, 1.5, shape)
        elif leaf == "gamma":
            value = rng.uniform(0.8, 1.2, shape)
        elif leaf in ("beta", "moving_mean"):
            value = rng.normal(0.0, 0.1, shape)
        elif leaf == "biases":
            value = rng.normal(0.0, 0.5, shape)
        else:
            fan_in = np.prod(shape[:2]) if leaf == "depthwise_weights" else np.prod(shape[:-1])
            value = rng.normal(0.0, np.sqrt(2.0 / fan_in), shape)
        values[name] = value.astype(np.float32)
    return values


def expected_values(raw: dict, ema: dict, variables: dict[str, tf.Variable]) -> dict:
    return {name: ema[name] if variables[name].trainable else raw[name] for name in raw}


def write_training_checkpoint(prefix, raw: dict, ema: dict, variables) -> None:
    """A checkpoint as TF1 ``model_main.py`` wrote it: V, V/ExponentialMovingAverage, slots."""
    tensors = dict(raw)
    for name, variable in variables.items():
        if variable.trainable:
            tensors[name + EMA] = ema[name]
            tensors[name + "/RMSProp"] = np.ones_like(raw[name])
    tensors["global_step"] = np.int64(STEP)
    write_bundle(prefix, tensors)


def reference_detections(model, images: np.ndarray) -> dict[str, np.ndarray]:
    """The in-process model: preprocess -> predict -> postprocess, no export code involved."""
    preprocessed, shapes = model.preprocess(tf.cast(tf.constant(images), tf.float32))
    detections = model.postprocess(model.predict(preprocessed, training=False), shapes)
    return {name: np.asarray(detections[name], np.float32) for name in OUTPUT_NAMES}


def client_image(height: int, width: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, [1, height, width, 3], dtype=np.uint8)


def assert_same_detections(got: dict, want: dict, num_classes: int = 1) -> None:
    np.testing.assert_array_equal(got["num_detections"], want["num_detections"])
    for name in OUTPUT_NAMES:
        np.testing.assert_allclose(got[name], want[name], atol=1e-5, rtol=1e-5, err_msg=name)
    for b, count in enumerate(want["num_detections"].astype(int)):
        classes = got["detection_classes"][b, :count]
        assert classes.min() >= 1 and classes.max() <= num_classes  # 1-based label ids


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Config file, checkpoint ``model.ckpt-41471`` and label map in a fresh ``ckpt/``."""
    root = tmp_path_factory.mktemp("export")
    cfg = tiny_config()
    model = build_model(cfg)
    variables = model.named_variables()
    raw = random_weights(variables, seed=1)
    ema = {name: value * np.float32(0.9) for name, value in raw.items()}
    ckpt = root / "ckpt"
    ckpt.mkdir()
    write_training_checkpoint(ckpt / f"model.ckpt-{STEP}", raw, ema, variables)
    config_path = ckpt / "ssd_mobilenet_v1_coco.config"
    config_lib.save(cfg, config_path)
    label_map = root / "label_map.pbtxt"
    label_map.write_text("item {\n  id: 1\n  name: 'face'\n}\n")
    values = expected_values(raw, ema, variables)
    for name, variable in variables.items():
        variable.assign(values[name])
    return {"root": root, "config": config_path, "prefix": str(ckpt / f"model.ckpt-{STEP}"),
            "label_map": label_map, "model": model, "values": values, "cfg": cfg}


@pytest.fixture(scope="module")
def exported(trained):
    out = trained["root"] / "exported_model"
    code = export_main([
        "--input_type", "image_tensor",
        "--pipeline_config_path", str(trained["config"]),
        "--trained_checkpoint_prefix", trained["prefix"],
        "--output_directory", str(out),
        "--label_map_path", str(trained["label_map"])])
    assert code == 0
    return out


def test_output_files(exported, trained):
    assert sorted(os.listdir(exported)) == [
        "checkpoint", "frozen_inference_graph.pb", "label_map.pbtxt",
        "model.ckpt.data-00000-of-00001", "model.ckpt.index", "pipeline.config", "saved_model"]
    saved = exported / "saved_model"
    assert (saved / "saved_model.pb").is_file()
    assert (saved / "variables" / "variables.index").is_file()
    assert (exported / "label_map.pbtxt").read_bytes() == trained["label_map"].read_bytes()
    assert config_lib.load(exported / "pipeline.config") == trained["cfg"]
    assert sorted(p.name for p in exported.parent.iterdir()) == [
        "ckpt", "exported_model", "label_map.pbtxt"]  # no staging directory left behind


def test_exported_checkpoint_holds_the_moving_averages_under_plain_names(exported, trained):
    assert tf.train.latest_checkpoint(str(exported)) == str(exported / "model.ckpt")
    reader = tf.train.load_checkpoint(str(exported / "model.ckpt"))
    names = set(reader.get_variable_to_shape_map())
    assert names == set(trained["values"]) | {"global_step"}
    assert int(reader.get_tensor("global_step")) == STEP
    for name, value in trained["values"].items():
        np.testing.assert_array_equal(reader.get_tensor(name), value, err_msg=name)


def _load_frozen_graph(path) -> tf.Graph:
    """The tutorial's first client, verbatim in spirit: GraphDef -> import_graph_def(name='')."""
    graph = tf.Graph()
    with graph.as_default():
        graph_def = tf.compat.v1.GraphDef()
        with tf.io.gfile.GFile(str(path), "rb") as handle:
            graph_def.ParseFromString(handle.read())
        tf.import_graph_def(graph_def, name="")
    return graph


def test_frozen_graph_tensors(exported):
    graph = _load_frozen_graph(exported / "frozen_inference_graph.pb")
    placeholders = [op for op in graph.get_operations() if op.type == "Placeholder"]
    assert [op.name for op in placeholders] == ["image_tensor"]
    image = graph.get_tensor_by_name("image_tensor:0")
    assert image.dtype == tf.uint8 and image.shape.as_list() == [None, None, None, 3]
    expected = {"detection_boxes": [None, 100, 4], "detection_scores": [None, 100],
                "detection_classes": [None, 100], "num_detections": [None],
                "detection_multiclass_scores": [None, 100, 2]}
    for name in OUTPUT_NAMES:
        tensor = graph.get_tensor_by_name(f"{name}:0")
        assert tensor.dtype == tf.float32, name
        if name in expected:
            assert tensor.shape.as_list() == expected[name], name


def test_frozen_graph_client_matches_the_model(exported, trained):
    images = [client_image(height, width, seed) for seed, (height, width) in enumerate(CLIENT_SIZES)]
    images.append(np.concatenate([client_image(120, 90, 7), client_image(120, 90, 8)]))
    # the model runs eagerly: compute its detections outside the Session's graph context
    wanted = [reference_detections(trained["model"], image) for image in images]
    graph = _load_frozen_graph(exported / "frozen_inference_graph.pb")
    fetches = {name: graph.get_tensor_by_name(f"{name}:0") for name in OUTPUT_NAMES}
    with tf.compat.v1.Session(graph=graph) as sess:
        results = [sess.run(fetches, feed_dict={"image_tensor:0": image}) for image in images]
    num_anchors = results[0]["raw_detection_boxes"].shape[1]
    for image, got, want in zip(images, results, wanted, strict=True):
        batch = image.shape[0]
        assert got["detection_boxes"].shape == (batch, 100, 4)
        assert got["raw_detection_boxes"].shape == (batch, num_anchors, 4)
        assert got["raw_detection_scores"].shape == (batch, num_anchors, 2)
        assert_same_detections(got, want)


def test_saved_model_client_matches_the_model(exported, trained):
    loaded = tf.saved_model.load(str(exported / "saved_model"), tags=["serve"])
    serve = loaded.signatures["serving_default"]
    _, inputs = serve.structured_input_signature
    assert list(inputs) == ["inputs"]
    assert inputs["inputs"].dtype == tf.uint8
    assert inputs["inputs"].shape.as_list() == [None, None, None, 3]
    assert set(serve.structured_outputs) == set(OUTPUT_NAMES)
    for seed, (height, width) in enumerate(CLIENT_SIZES):
        image = client_image(height, width, seed)
        outputs = serve(inputs=tf.constant(image))
        got = {name: value.numpy() for name, value in outputs.items()}
        assert all(value.dtype == np.float32 for value in got.values())
        assert_same_detections(got, reference_detections(trained["model"], image))
        # the seed's own post-processing: slice to num_detections, keep scores above 0.5
        count = int(got["num_detections"][0])
        boxes = got["detection_boxes"][0, :count]
        assert ((boxes >= 0) & (boxes <= 1)).all()


def test_tf2_tutorial_client_calls_the_loaded_saved_model(exported, tmp_path):
    """The TF2 tutorials' client (load, call with a uint8 [1, H, W, 3] tensor, pop
    num_detections, slice) gets what the frozen graph gives for the same image."""
    image = client_image(97, 333, 11)
    path = tmp_path / "image.png"
    Image.fromarray(image[0]).save(path)
    graph = _load_frozen_graph(exported / "frozen_inference_graph.pb")
    with tf.compat.v1.Session(graph=graph) as sess:
        frozen = sess.run({n: f"{n}:0" for n in OUTPUT_NAMES}, feed_dict={"image_tensor:0": image})

    # -- the tutorial's code, as a user writes it
    detect_fn = tf.saved_model.load(str(exported / "saved_model"))
    image_np = np.array(Image.open(path))
    input_tensor = tf.convert_to_tensor(image_np)
    input_tensor = input_tensor[tf.newaxis, ...]
    detections = detect_fn(input_tensor)
    # (the tutorial's int(...) of the [1] tensor: NumPy 2.4 wants the element, as it would
    # for the TF2 API's own export)
    num_detections = int(detections.pop("num_detections")[0])
    detections = {key: value[0, :num_detections].numpy() for key, value in detections.items()}
    detections["num_detections"] = num_detections
    detections["detection_classes"] = detections["detection_classes"].astype(np.int64)
    # --

    assert num_detections == int(frozen["num_detections"][0])
    assert set(detections) == set(OUTPUT_NAMES)
    for name in ("detection_boxes", "detection_scores", "detection_multiclass_scores",
                 "raw_detection_boxes", "raw_detection_scores"):
        want = frozen[name][0] if name.startswith("raw_") else frozen[name][0, :num_detections]
        if name.startswith("raw_"):  # not per detection: the tutorial slices them anyway
            want = want[:num_detections]
        np.testing.assert_allclose(detections[name], want, atol=1e-5, rtol=1e-5, err_msg=name)
    np.testing.assert_array_equal(detections["detection_classes"],
                                  frozen["detection_classes"][0, :num_detections].astype(np.int64))
    # the TF1 signature is still there beside the call
    assert list(detect_fn.signatures) == ["serving_default"]


def test_encoded_image_string_input(trained, tmp_path):
    out = tmp_path / "exported_png"
    exporter.export_inference_graph("encoded_image_string_tensor", trained["config"],
                                    trained["prefix"], out)
    image = client_image(97, 333, 3)
    buffer = io.BytesIO()
    Image.fromarray(image[0]).save(buffer, format="PNG")
    encoded = np.array([buffer.getvalue()], dtype=object)
    want = reference_detections(trained["model"], image)  # eager: before entering the Session
    graph = _load_frozen_graph(out / "frozen_inference_graph.pb")
    assert graph.get_tensor_by_name("encoded_image_string_tensor:0").dtype == tf.string
    with tf.compat.v1.Session(graph=graph) as sess:
        got = sess.run({n: f"{n}:0" for n in OUTPUT_NAMES},
                       feed_dict={"encoded_image_string_tensor:0": encoded})
    assert_same_detections(got, want)
    serve = tf.saved_model.load(str(out / "saved_model")).signatures["serving_default"]
    got = {k: v.numpy() for k, v in serve(inputs=tf.constant(encoded, tf.string)).items()}
    assert_same_detections(got, want)


def test_failed_export_leaves_no_output_and_keeps_the_previous_one(trained, tmp_path,
                                                                 monkeypatch):
    def fail(graph_def, path):  # after the checkpoint is written: a half-full staging directory
        path.write_bytes(b"half a graph")
        raise RuntimeError("disk full")

    monkeypatch.setattr(exporter, "write_frozen_graph", fail)
    monkeypatch.setattr(exporter, "freeze", lambda model, input_type: None)
    out = tmp_path / "exported_model"
    with pytest.raises(RuntimeError, match="disk full"):
        exporter.export_inference_graph("image_tensor", trained["config"], trained["prefix"], out)
    assert os.listdir(tmp_path) == []

    out.mkdir()
    (out / "frozen_inference_graph.pb").write_bytes(b"previous export")
    with pytest.raises(RuntimeError, match="disk full"):
        exporter.export_inference_graph("image_tensor", trained["config"], trained["prefix"], out)
    assert os.listdir(tmp_path) == ["exported_model"]
    assert os.listdir(out) == ["frozen_inference_graph.pb"]
    assert (out / "frozen_inference_graph.pb").read_bytes() == b"previous export"


def _cli(capsys, *flags: str) -> tuple[int, str]:
    code = export_main(list(flags))
    return code, capsys.readouterr().err


def test_missing_checkpoint_prefix_lists_the_available_ones(trained, tmp_path, capsys):
    missing = trained["prefix"].replace(str(STEP), "50000")
    code, err = _cli(capsys, "--pipeline_config_path", str(trained["config"]),
                     "--trained_checkpoint_prefix", missing,
                     "--output_directory", str(tmp_path / "out"))
    assert code == 2
    assert f"checkpoint {missing} does not exist" in err
    assert f"model.ckpt-{STEP}" in err
    assert not (tmp_path / "out").exists()


def test_unparsable_config_is_a_clear_error(trained, tmp_path, capsys):
    bad = tmp_path / "bad.config"
    bad.write_text("model { ssd { num_clases: 1 } }\n")
    code, err = _cli(capsys, "--pipeline_config_path", str(bad),
                     "--trained_checkpoint_prefix", trained["prefix"],
                     "--output_directory", str(tmp_path / "out"))
    assert code == 2
    assert "bad.config" in err and "num_clases" in err
    assert not (tmp_path / "out").exists()


def test_unsupported_input_type_is_a_clear_error(trained, tmp_path, capsys):
    code, err = _cli(capsys, "--input_type", "tf_example",
                     "--pipeline_config_path", str(trained["config"]),
                     "--trained_checkpoint_prefix", trained["prefix"],
                     "--output_directory", str(tmp_path / "out"))
    assert code == 2
    assert "unsupported --input_type 'tf_example'" in err and "image_tensor" in err


def test_label_map_with_more_classes_than_the_model_is_an_error(trained, tmp_path, capsys):
    label_map = tmp_path / "label_map.pbtxt"
    label_map.write_text("item { id: 1 name: 'face' }\nitem { id: 2 name: 'hand' }\n")
    code, err = _cli(capsys, "--pipeline_config_path", str(trained["config"]),
                     "--trained_checkpoint_prefix", trained["prefix"],
                     "--output_directory", str(tmp_path / "out"),
                     "--label_map_path", str(label_map))
    assert code == 2 and "num_classes 1" in err


def test_export_of_a_checkpoint_for_another_model_names_the_variable(trained, tmp_path,
                                                                    capsys):
    cfg = tiny_config()
    cfg.model.ssd.num_classes = 2
    other = tmp_path / "two_classes.config"
    config_lib.save(cfg, other)
    code, err = _cli(capsys, "--pipeline_config_path", str(other),
                     "--trained_checkpoint_prefix", trained["prefix"],
                     "--output_directory", str(tmp_path / "out"))
    assert code == 2 and "ClassPredictor" in err and "num_classes" in err
    assert sorted(os.listdir(tmp_path)) == ["two_classes.config"]


def test_reexport_with_raw_weights_replaces_the_previous_export(trained, exported, tmp_path):
    out = tmp_path / "exported_model"
    shutil.copytree(exported, out)
    (out / "label_map.pbtxt").unlink()
    (out / "frozen_inference_graph.pb").write_bytes(b"stale")
    result = exporter.export_inference_graph("image_tensor", trained["config"], trained["prefix"],
                                             out, label_map_path=trained["label_map"],
                                             use_moving_averages="false")
    assert result.num_moving_averages == 0 and result.global_step == STEP
    graph_def = tf.compat.v1.GraphDef()
    graph_def.ParseFromString((out / "frozen_inference_graph.pb").read_bytes())
    assert "image_tensor" in {node.name for node in graph_def.node}
    assert (out / "label_map.pbtxt").is_file()
    assert sorted(os.listdir(tmp_path)) == ["exported_model"]
    name = "BoxPredictor_0/ClassPredictor/weights"
    raw = tf.train.load_checkpoint(trained["prefix"]).get_tensor(name)
    exported_value = tf.train.load_checkpoint(str(out / "model.ckpt")).get_tensor(name)
    np.testing.assert_array_equal(exported_value, raw)


def test_script_runs_from_anywhere_and_fails_with_exit_2(tmp_path):
    help_run = subprocess.run([sys.executable, str(SCRIPT), "--help"], cwd=tmp_path,
                              capture_output=True, text=True, check=False)
    assert help_run.returncode == 0 and "--trained_checkpoint_prefix" in help_run.stdout
    bad = subprocess.run(
        [sys.executable, str(SCRIPT), "--pipeline_config_path", "missing.config",
         "--trained_checkpoint_prefix", "ckpt/model.ckpt-1", "--output_directory", "out"],
        cwd=tmp_path, capture_output=True, text=True, check=False)
    assert bad.returncode == 2
    assert "error: --pipeline_config_path missing.config does not exist" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_sigterm_during_export_leaves_nothing_behind(trained, tmp_path):
    """SIGTERM while the export is being staged: exit 143 and no trace of it. A loaded machine
    can deliver the signal only after the final rename (Python runs handlers between
    bytecodes): then the export must be whole. Never a half-written directory."""
    out = tmp_path / "exported_model"
    process = subprocess.Popen(
        [sys.executable, str(SCRIPT), "--pipeline_config_path", str(trained["config"]),
         "--trained_checkpoint_prefix", trained["prefix"], "--output_directory", str(out)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not list(tmp_path.glob(".exported_model.*.tmp")) and process.poll() is None:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=120)
    finally:
        process.kill()
        process.wait()
    if out.exists():
        assert sorted(os.listdir(tmp_path)) == ["exported_model"]
        assert sorted(os.listdir(out)) == [
            "checkpoint", "frozen_inference_graph.pb", "label_map.pbtxt",
            "model.ckpt.data-00000-of-00001", "model.ckpt.index", "pipeline.config",
            "saved_model"]
        assert code in (0, 128 + signal.SIGTERM)
        return
    assert code == 128 + signal.SIGTERM, process.stderr.read()[-3000:]
    assert os.listdir(tmp_path) == []
