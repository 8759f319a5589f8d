"""The exported model's inputs and outputs: names, dtypes and the function between them.

Clients written for the TF1 Object Detection API look tensors up by name
(``image_tensor:0``, ``detection_boxes:0``, ...) and SavedModel outputs by key, so these names
are an interface, not a detail: both the frozen graph and the SavedModel are built from the one
function here, which is also what the tests compare against the in-process model.
"""

from __future__ import annotations

from collections.abc import Callable

import tensorflow as tf

from odflow.errors import OdflowError

#: ``--input_type`` -> its input's spec; the frozen graph's placeholder is named after the type.
INPUT_TYPES: dict[str, tf.TensorSpec] = {
    "image_tensor": tf.TensorSpec([None, None, None, 3], tf.uint8),
    "encoded_image_string_tensor": tf.TensorSpec([None], tf.string),
}

#: The outputs, in the order the API's exporter listed them; every one is float32.
OUTPUT_NAMES: tuple[str, ...] = (
    "detection_boxes",
    "detection_scores",
    "detection_classes",
    "num_detections",
    "detection_multiclass_scores",
    "raw_detection_boxes",
    "raw_detection_scores",
)

#: Key of the single input of the SavedModel's ``serving_default`` signature.
SAVED_MODEL_INPUT_KEY = "inputs"


def check_input_type(input_type: str) -> str:
    if input_type not in INPUT_TYPES:
        raise OdflowError(
            f"unsupported --input_type {input_type!r}: odflow exports "
            f"{' or '.join(sorted(INPUT_TYPES))} (tf_example input is not supported)")
    return input_type


def input_spec(input_type: str, name: str) -> tf.TensorSpec:
    spec = INPUT_TYPES[check_input_type(input_type)]
    return tf.TensorSpec(spec.shape, spec.dtype, name=name)


def decode_images(encoded: tf.Tensor) -> tf.Tensor:
    """Decode a batch of JPEG/PNG strings to uint8 ``[B, H, W, 3]`` (all of one size, as upstream)."""
    def decode(one: tf.Tensor) -> tf.Tensor:
        image = tf.io.decode_image(one, channels=3, expand_animations=False)
        image.set_shape([None, None, 3])
        return image

    return tf.map_fn(decode, encoded, fn_output_signature=tf.TensorSpec([None, None, 3], tf.uint8))


def detect(model, images: tf.Tensor) -> dict[str, tf.Tensor]:
    """uint8 images of any size -> the named float32 detections (resizing is the model's job)."""
    preprocessed, true_image_shapes = model.preprocess(tf.cast(images, tf.float32))
    predictions = model.predict(preprocessed, training=False)
    detections = model.postprocess(predictions, true_image_shapes)
    missing = [name for name in OUTPUT_NAMES if name not in detections]
    if missing:
        raise ValueError(f"model.postprocess did not return {missing}; it returned "
                         f"{sorted(detections)}")
    return {name: tf.cast(detections[name], tf.float32) for name in OUTPUT_NAMES}


def detection_function(model, input_type: str,
                       input_name: str | None = None) -> Callable[[tf.Tensor], dict[str, tf.Tensor]]:
    """The export function: ``input_type`` tensor -> detections, each output an op of its own name.

    The input spec is named ``input_name`` (default: the input type, so that the frozen graph's
    placeholder is ``image_tensor``; the SavedModel uses ``inputs``), and each output goes through
    a ``tf.identity`` named after its key: after freezing, those are the tensor names clients use.
    No AutoGraph: the model's methods are plain TF ops with Python branches on static values
    only, and converting them would cost seconds per trace (an export traces twice).
    """
    check_input_type(input_type)

    def images_from(inputs: tf.Tensor) -> tf.Tensor:
        return decode_images(inputs) if input_type == "encoded_image_string_tensor" else inputs

    def run(inputs: tf.Tensor) -> dict[str, tf.Tensor]:
        detections = detect(model, images_from(inputs))
        return {name: tf.identity(value, name=name) for name, value in detections.items()}

    return tf.function(run, input_signature=[input_spec(input_type, input_name or input_type)],
                       autograph=False)
