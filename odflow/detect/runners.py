"""One ``Detector`` per exported format, chosen by the model path.

=====================================  =========================================================
``--model``                            runner
=====================================  =========================================================
an export directory, ``*.pb``          frozen graph in a ``tf.compat.v1.Session`` (TF1 clients)
``saved_model/`` (or its ``.pb``)      SavedModel ``serving_default`` signature
``*.tflite``                           LiteRT's interpreter (the custom post-processing op is
                                       built in); the model's resize and normalisation first
``*.onnx``                             ONNX Runtime, CPU
=====================================  =========================================================

Every runner returns ``Detections`` for one uint8 ``[H, W, 3]`` image: boxes normalised
``[ymin, xmin, ymax, xmax]`` clipped to the image (boxes left with no area dropped, as the
frozen graph's post-processing does), scores, and 1-based label-map class ids, highest score
first.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from odflow.errors import OdflowError
from odflow.export import metadata as metadata_lib

FROZEN_GRAPH = "frozen_inference_graph.pb"
SAVED_MODEL = "saved_model"
LABEL_MAP = "label_map.pbtxt"
DETECTION_OUTPUTS = ("detection_boxes", "detection_scores", "detection_classes",
                     "num_detections")


@dataclass(frozen=True)
class Detections:
    boxes: np.ndarray    # float32 [N, 4], normalised, clipped to [0, 1]
    scores: np.ndarray   # float32 [N]
    classes: np.ndarray  # int64 [N], label-map ids (1-based)

    def above(self, min_score: float) -> Detections:
        keep = self.scores >= min_score
        return Detections(self.boxes[keep], self.scores[keep], self.classes[keep])


class Detector(ABC):
    """An exported model, ready to run on single images."""

    format: str = ""

    def __init__(self, path: Path) -> None:
        self.path = path

    @abstractmethod
    def detect(self, image: np.ndarray) -> Detections:
        """Detections for one uint8 ``[H, W, 3]`` RGB image."""

    def label_map_path(self) -> Path | None:
        """The label map beside the model (an export directory holds ``label_map.pbtxt``)."""
        for folder in (self.path if self.path.is_dir() else self.path.parent,
                       self.path.parent):
            if (folder / LABEL_MAP).is_file():
                return folder / LABEL_MAP
        return None


def _from_padded(boxes: np.ndarray, scores: np.ndarray, classes: np.ndarray, count,
                 class_offset: int = 0) -> Detections:
    """The first ``count`` rows of padded outputs, clipped, zero-area boxes dropped."""
    n = int(np.asarray(count).reshape(-1)[0])
    boxes = np.clip(np.asarray(boxes, np.float32).reshape(-1, 4)[:n], 0.0, 1.0)
    scores = np.asarray(scores, np.float32).reshape(-1)[:n]
    classes = np.round(np.asarray(classes).reshape(-1)[:n]).astype(np.int64) + class_offset
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    keep = area > 0
    order = np.argsort(-scores[keep], kind="stable")
    return Detections(boxes[keep][order], scores[keep][order], classes[keep][order])


def _check_image(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected a uint8 [H, W, 3] image, got {image.dtype} {image.shape}")
    return image[None]


class FrozenGraphDetector(Detector):
    format = "frozen_graph"

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        import tensorflow as tf

        from odflow.export.frozen_graph import load_frozen_graph

        graph_file = path / FROZEN_GRAPH if path.is_dir() else path
        self.path = graph_file
        try:
            graph = load_frozen_graph(graph_file)
        except Exception as error:  # a DecodeError or an import error, both user-facing here
            raise OdflowError(f"{graph_file}: not a frozen inference graph ({error})") from None
        self._session = tf.compat.v1.Session(graph=graph)
        try:
            self._input = graph.get_tensor_by_name("image_tensor:0")
            self._outputs = [graph.get_tensor_by_name(f"{name}:0") for name in DETECTION_OUTPUTS]
        except KeyError as error:
            raise OdflowError(f"{graph_file}: {error}; export it with --input_type "
                              "image_tensor") from None

    def detect(self, image: np.ndarray) -> Detections:
        boxes, scores, classes, count = self._session.run(
            self._outputs, {self._input: _check_image(image)})
        return _from_padded(boxes, scores, classes, count)


class SavedModelDetector(Detector):
    format = "saved_model"

    def __init__(self, path: Path) -> None:
        import tensorflow as tf

        directory = path.parent if path.name == "saved_model.pb" else path
        super().__init__(directory)
        try:
            self._signature = tf.saved_model.load(os.fspath(directory)).signatures[
                "serving_default"]
        except (OSError, KeyError, ValueError) as error:
            raise OdflowError(f"{directory}: not a SavedModel with a serving_default signature "
                              f"({error})") from None

    def detect(self, image: np.ndarray) -> Detections:
        import tensorflow as tf

        out = self._signature(inputs=tf.constant(_check_image(image)))
        return _from_padded(*(out[name].numpy() for name in DETECTION_OUTPUTS))


def tflite_interpreter():
    """LiteRT's interpreter (``ai-edge-litert``, TFLite's successor), else ``tf.lite``'s
    (deprecated in TF 2.21): both have the ``TFLite_Detection_PostProcess`` kernel built in."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        import tensorflow as tf

        Interpreter = tf.lite.Interpreter
    return Interpreter


def _postprocess_outputs(interpreter) -> list[dict]:
    """The output tensors in the op's order: boxes, classes, scores, count.

    Our files have a signature whose outputs ``output_0..3`` are in that order (the interpreter's
    own output list is not); files converted from a TF1 ``tflite_graph.pb`` have no signature
    and list the op's outputs in order.
    """
    signatures = interpreter.get_signature_list()
    if not signatures:
        return list(interpreter.get_output_details())
    details = interpreter.get_signature_runner(next(iter(signatures))).get_output_details()
    return [details[name] for name in sorted(details, key=lambda n: (len(n), n))]


class TFLiteDetector(Detector):
    """``TFLite_Detection_PostProcess`` outputs: boxes, classes (0-based), scores, count."""

    format = "tflite"

    def __init__(self, path: Path, num_threads: int | None = None) -> None:
        super().__init__(path)
        self.metadata = metadata_lib.read(path) or {}
        try:
            self._interpreter = tflite_interpreter()(model_path=os.fspath(path),
                                                     num_threads=num_threads)
            self._interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as error:
            raise OdflowError(f"{path}: not a loadable TFLite model ({error})") from None
        (self._input,) = self._interpreter.get_input_details()
        self._outputs = _postprocess_outputs(self._interpreter)
        shapes = [len(d["shape"]) for d in self._outputs]
        if shapes != [3, 2, 2, 1]:
            raise OdflowError(f"{path}: expected the 4 outputs of TFLite_Detection_PostProcess "
                              f"(boxes, classes, scores, count), found tensors of rank {shapes}")
        self.size = tuple(int(d) for d in self._input["shape"][1:3])
        self.resize_method = self.metadata.get("input", {}).get("resize_method", "bilinear")
        self.mean = float(self.metadata.get("input", {}).get("mean", 127.5))
        self.std = float(self.metadata.get("input", {}).get("std", 127.5))
        if self._input["dtype"] == np.uint8:
            self.format = "tflite_int8"

    def detect(self, image: np.ndarray) -> Detections:
        from odflow.detect.preprocess import resize_images

        resized = resize_images(_check_image(image), self.size, self.resize_method)
        normalized = (resized - self.mean) / self.std
        if self._input["dtype"] == np.uint8:
            scale, zero_point = self._input["quantization"]
            normalized = np.clip(np.round(normalized / scale + zero_point), 0, 255)
        self._interpreter.set_tensor(self._input["index"],
                                     normalized.astype(self._input["dtype"]))
        self._interpreter.invoke()
        boxes, classes, scores, count = (self._interpreter.get_tensor(d["index"])
                                         for d in self._outputs)
        return _from_padded(boxes, scores, classes, count, class_offset=1)


class OnnxDetector(Detector):
    format = "onnx"

    def __init__(self, path: Path, num_threads: int | None = None) -> None:
        super().__init__(path)
        try:
            import onnxruntime as ort
        except ImportError:
            raise OdflowError("running an ONNX model needs onnxruntime (pip install "
                              "onnxruntime)") from None
        options = ort.SessionOptions()
        if num_threads:
            options.intra_op_num_threads = num_threads
        try:
            self._session = ort.InferenceSession(os.fspath(path), options,
                                                 providers=["CPUExecutionProvider"])
        except Exception as error:  # onnxruntime's own exception types
            raise OdflowError(f"{path}: not a loadable ONNX model ({error})") from None
        self._input = self._session.get_inputs()[0].name

    def detect(self, image: np.ndarray) -> Detections:
        boxes, scores, classes, count = self._session.run(
            list(DETECTION_OUTPUTS), {self._input: _check_image(image)})
        return _from_padded(boxes, scores, classes, count)


def load_detector(path: str | os.PathLike, num_threads: int | None = None) -> Detector:
    """The runner for ``path``: see the module docstring for which path means which format."""
    path = Path(path)
    if not path.exists():
        raise OdflowError(f"--model {path} does not exist")
    if path.suffix == ".tflite":
        return TFLiteDetector(path, num_threads)
    if path.suffix == ".onnx":
        return OnnxDetector(path, num_threads)
    if path.name == "saved_model.pb" or (path.is_dir() and (path / "saved_model.pb").is_file()):
        return SavedModelDetector(path)
    if path.suffix == ".pb" or (path.is_dir() and (path / FROZEN_GRAPH).is_file()):
        return FrozenGraphDetector(path)
    raise OdflowError(f"--model {path}: not an exported model; give the export directory (its "
                      f"{FROZEN_GRAPH}), a saved_model/ directory, a .tflite or an .onnx file")
