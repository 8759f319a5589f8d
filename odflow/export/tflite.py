"""``model.tflite`` / ``model_int8.tflite``: the SSD for TFLite, post-processing as a custom op.

As the TF Object Detection API's TFLite exporters did, the converted graph ends at the raw box
encodings and the score-converted class predictions, and the anchors are a constant; the
decoding and NMS are TFLite's built-in ``TFLite_Detection_PostProcess`` custom op, attached
through a ``tf.function`` whose ``experimental_implements`` signature the converter legalises
into that op.  The interpreter then returns the four standard outputs: boxes ``[1, N, 4]``
(normalised ymin, xmin, ymax, xmax), classes ``[1, N]`` (0-based: label id - 1), scores
``[1, N]`` and the count ``[1]``.

The input is ``normalized_input_image_tensor``: float32 ``[1, h, w, 3]`` in ``[-1, 1]``
(``pixel / 127.5 - 1``, the model's own preprocessing), already resized to the model's size;
for the int8 model it is uint8 with the quantisation parameters stored in the file.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from odflow.errors import OdflowError

log = logging.getLogger(__name__)

CUSTOM_OP = "TFLite_Detection_PostProcess"
#: The model's preprocessing, ``(pixel - MEAN) / STD``: what the metadata tells a client.
INPUT_MEAN = 127.5
INPUT_STD = 127.5


@dataclass(frozen=True)
class PostProcessSettings:
    """The custom op's attributes, from the pipeline config's post_processing and box coder."""

    num_classes: int
    max_detections: int
    detections_per_class: int
    nms_score_threshold: float
    nms_iou_threshold: float
    y_scale: float
    x_scale: float
    h_scale: float
    w_scale: float
    use_regular_nms: bool = True
    max_classes_per_detection: int = 1

    def implements_signature(self) -> str:
        """The ``experimental_implements`` text: the op name and its attributes (as upstream)."""
        ints = {"max_detections": self.max_detections,
                "max_classes_per_detection": self.max_classes_per_detection,
                "detections_per_class": self.detections_per_class,
                "num_classes": self.num_classes}
        floats = {"nms_score_threshold": self.nms_score_threshold,
                  "nms_iou_threshold": self.nms_iou_threshold,
                  "y_scale": self.y_scale, "x_scale": self.x_scale,
                  "h_scale": self.h_scale, "w_scale": self.w_scale}
        parts = [f'name: "{CUSTOM_OP}"']
        parts += [f'attr {{ key: "{k}" value {{ i: {v} }} }}' for k, v in ints.items()]
        parts.append('attr { key: "use_regular_nms" value { b: %s } }'
                     % str(self.use_regular_nms).lower())
        parts += [f'attr {{ key: "{k}" value {{ f: {v:.9g} }} }}' for k, v in floats.items()]
        return " ".join(parts)


def postprocess_settings(model_config, use_regular_nms: bool = True) -> PostProcessSettings:
    """Read the op's settings from ``model.ssd``; options the op cannot express are errors."""
    ssd = model_config.ssd
    nms = ssd.post_processing.batch_non_max_suppression
    coder = ssd.box_coder
    if coder.WhichOneof("box_coder_oneof") != "faster_rcnn_box_coder":
        raise OdflowError("model.ssd.box_coder: TFLite export needs faster_rcnn_box_coder (the "
                          "op decodes centre-size boxes)")
    scales = coder.faster_rcnn_box_coder
    if nms.use_class_agnostic_nms:
        raise OdflowError("model.ssd.post_processing.batch_non_max_suppression."
                          "use_class_agnostic_nms is not supported by the TFLite export")
    return PostProcessSettings(
        num_classes=int(ssd.num_classes),
        max_detections=int(nms.max_total_detections),
        detections_per_class=int(nms.max_detections_per_class),
        nms_score_threshold=float(nms.score_threshold),
        nms_iou_threshold=float(nms.iou_threshold),
        y_scale=float(scales.y_scale), x_scale=float(scales.x_scale),
        h_scale=float(scales.height_scale), w_scale=float(scales.width_scale),
        use_regular_nms=use_regular_nms)


def center_size_anchors(anchors: np.ndarray) -> np.ndarray:
    """``[A, 4]`` corner anchors (ymin, xmin, ymax, xmax) -> (ycenter, xcenter, h, w)."""
    anchors = np.asarray(anchors, np.float32)
    height = anchors[:, 2] - anchors[:, 0]
    width = anchors[:, 3] - anchors[:, 1]
    return np.stack([anchors[:, 0] + height / 2, anchors[:, 1] + width / 2, height, width],
                    axis=1).astype(np.float32)


class TFLiteModule(tf.Module):
    """The TFLite-friendly graph of an SSD model: normalised image -> the custom op's outputs."""

    def __init__(self, model, settings: PostProcessSettings) -> None:
        super().__init__()
        self._model = model
        self.model_variables = list(model.named_variables().values())
        self.settings = settings
        height, width = model.image_size
        self.input_shape = [1, int(height), int(width), 3]
        shapes = model.feature_extractor.feature_map_shapes(int(height), int(width))
        self.anchors = center_size_anchors(np.asarray(model.anchors_for(shapes)))

    def postprocess_fn(self) -> Callable:
        """An empty composite function the converter replaces by ``TFLite_Detection_PostProcess``."""
        max_detections = self.settings.max_detections

        @tf.function(experimental_implements=self.settings.implements_signature())
        def detection_postprocess(box_encodings, class_predictions, anchors):
            del box_encodings, class_predictions, anchors  # the op does the work, not TF
            boxes = tf.zeros([1, max_detections, 4], tf.float32, name="boxes")
            classes = tf.zeros([1, max_detections], tf.float32, name="classes")
            scores = tf.zeros([1, max_detections], tf.float32, name="scores")
            num_detections = tf.zeros([1], tf.float32, name="num_detections")
            return boxes, classes, scores, num_detections

        return detection_postprocess

    def inference_fn(self) -> Callable:
        model = self._model
        postprocess = self.postprocess_fn()
        anchor_values = self.anchors
        # The file's input is the [-1, 1] image for every model (one convention for clients and
        # for the int8 calibration); a feature extractor with its own input scaling (ResNet's
        # channel means, EfficientNet's ImageNet mean and std) gets its pixels back first.
        own_preprocess = getattr(model.feature_extractor, "preprocess", None)

        def run(normalized_input_image_tensor):
            inputs = normalized_input_image_tensor
            if own_preprocess is not None:
                inputs = own_preprocess(inputs * INPUT_STD + INPUT_MEAN)
            predictions = model.predict(inputs, training=False)
            scores = model.score_converter(predictions["class_predictions_with_background"])
            anchors = tf.constant(anchor_values, name="anchors")
            return postprocess(tf.identity(predictions["box_encodings"], name="box_encodings"),
                               tf.identity(scores, name="class_predictions"), anchors)

        spec = tf.TensorSpec(self.input_shape, tf.float32, name="normalized_input_image_tensor")
        return tf.function(run, input_signature=[spec], autograph=False)


def convert(model, settings: PostProcessSettings,
            representative_images: Callable[[], Iterable[np.ndarray]] | None = None,
            per_channel: bool = True) -> bytes:
    """The ``.tflite`` flatbuffer of ``model`` (its current weights).

    With ``representative_images`` (a callable yielding float32 ``[1, h, w, 3]`` normalised
    images), the model is quantised to full integer: int8 weights and activations, uint8 input,
    calibrated on those images; the custom op, which has no integer kernel, gets dequantised
    inputs and returns float32 outputs.  ``per_channel`` false quantises each weight tensor with
    one scale instead of one per output channel: smaller (a thin network's per-channel scales
    and zero points weigh as much as its depthwise weights), usually less accurate.
    """
    module = TFLiteModule(model, settings)
    module.detect = module.inference_fn()
    concrete = module.detect.get_concrete_function()
    with tempfile.TemporaryDirectory(prefix="odflow-tflite-") as tmp:
        # The converter finds composite functions (experimental_implements) in a SavedModel.
        tf.saved_model.save(module, tmp, signatures={"serving_default": concrete})
        converter = tf.lite.TFLiteConverter.from_saved_model(tmp)
        converter.allow_custom_ops = True
        if representative_images is not None:
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            converter.representative_dataset = lambda: ([image] for image in
                                                        representative_images())
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8,
                                                   tf.lite.OpsSet.TFLITE_BUILTINS]
            converter.inference_input_type = tf.uint8
            # No public switch; the converter has honoured this attribute since TF 2.4.
            converter._experimental_disable_per_channel = not per_channel
        return converter.convert()


def normalize(images: np.ndarray) -> np.ndarray:
    """uint8/float pixels in ``[0, 255]`` -> the model's ``[-1, 1]`` input."""
    return (np.asarray(images, np.float32) - INPUT_MEAN) / INPUT_STD


def calibration_images(record_paths: list[str], image_size: tuple[int, int], count: int,
                       resize_method: str = "bilinear") -> Callable[[], Iterator[np.ndarray]]:
    """The first ``count`` images of the records, resized and normalised as the model does."""
    from odflow.data.records import iter_examples
    from odflow.detect.preprocess import resize_images

    if count < 1:
        raise OdflowError(f"the int8 calibration needs at least one image, not {count}")

    def images() -> Iterator[np.ndarray]:
        seen = 0
        for example in iter_examples(record_paths):
            image = tf.io.decode_image(example.encoded, channels=3, expand_animations=False)
            yield normalize(resize_images(image.numpy()[None], image_size, resize_method))
            seen += 1
            if seen >= count:
                return
        if seen == 0:
            raise OdflowError(f"the calibration records {record_paths} hold no image")

    return images


def write_tflite(data: bytes, path: str | os.PathLike) -> None:
    from odflow.utils.atomic import atomic_output

    with atomic_output(path) as tmp:
        tmp.write_bytes(data)
