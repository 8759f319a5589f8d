"""``model.onnx``: the exported SavedModel converted by tf2onnx, run with ONNX Runtime.

tf2onnx cannot convert the frozen graph: its NMS loop is lowered to TF1 control flow holding
``TensorListReserve`` ops, which tf2onnx leaves unconverted (ONNX Runtime then refuses the model:
"Invalid tensor data type 0").  The SavedModel's ``serving_default`` function keeps the loop
functional, which tf2onnx rewrites to an ONNX ``Loop``.  So the ONNX model has the SavedModel's
interface: input ``inputs`` (uint8 ``[batch, height, width, 3]``, any size: the resize is in the
graph) and the seven named outputs (``detection_boxes``, ...).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import tensorflow as tf

from odflow.errors import OdflowError
from odflow.export.signature import INPUT_TYPES, OUTPUT_NAMES, SAVED_MODEL_INPUT_KEY

log = logging.getLogger(__name__)

DEFAULT_OPSET = 17


def convert_saved_model(saved_model_dir: str | os.PathLike, output_path: str | os.PathLike,
                        opset: int = DEFAULT_OPSET) -> None:
    """Convert ``saved_model_dir``'s ``serving_default`` signature to ONNX at ``output_path``."""
    import tf2onnx  # heavy, and only this stage needs it

    saved_model_dir = Path(saved_model_dir)
    if not (saved_model_dir / "saved_model.pb").is_file():
        raise OdflowError(f"{saved_model_dir} holds no saved_model.pb; export the model first")
    loaded = tf.saved_model.load(os.fspath(saved_model_dir))
    signature = loaded.signatures.get("serving_default")
    if signature is None:
        raise OdflowError(f"{saved_model_dir} has no serving_default signature")
    input_type = "image_tensor"
    spec = signature.structured_input_signature[1].get(SAVED_MODEL_INPUT_KEY)
    if spec is None:
        raise OdflowError(f"{saved_model_dir}: serving_default has no input "
                          f"{SAVED_MODEL_INPUT_KEY!r}; was it exported by odflow?")
    if spec.dtype != INPUT_TYPES[input_type].dtype:
        raise OdflowError(f"{saved_model_dir}: ONNX export needs an image_tensor export (uint8 "
                          f"images), not {spec.dtype.name} input; export with --input_type "
                          "image_tensor")

    @tf.function(input_signature=[tf.TensorSpec(spec.shape, spec.dtype,
                                                name=SAVED_MODEL_INPUT_KEY)])
    def detect(inputs):
        outputs = signature(**{SAVED_MODEL_INPUT_KEY: inputs})
        return {name: outputs[name] for name in OUTPUT_NAMES}

    log.info("converting %s to ONNX (opset %d)", saved_model_dir, opset)
    tf2onnx.convert.from_function(detect, input_signature=detect.input_signature, opset=opset,
                                  output_path=os.fspath(output_path))
