"""Which models the TFLite and ONNX conversions can make, and a clear error for the others.

``snakemake deploy`` converts every family it can; a family a converter cannot make yet stops
that conversion before any work, with the model named and the reason, instead of writing a
file whose detections are not the frozen graph's:

- EfficientDet (``ssd_efficientnet-b*_bifpn_keras``) to ONNX: tf2onnx leaves a tensor the
  SavedModel captures as an extra ONNX input (ONNX Runtime then asks for an input, e.g.
  ``11850:0``, that no client can give).  Its TFLite files convert (their detections equal the
  frozen graph's on the starter); the frozen graph and the SavedModel deploy as for any model.
"""

from __future__ import annotations

from odflow.errors import OdflowError

#: feature_extractor.type prefix -> (family name, why each format cannot be made).
_NOT_CONVERTIBLE: dict[str, tuple[str, dict[str, str]]] = {
    "ssd_efficientnet-": ("EfficientDet", {
        "onnx": "tf2onnx leaves a tensor its SavedModel captures as an extra ONNX input, which "
                "no client can feed",
    }),
}


def check_convertible(pipeline_config, fmt: str) -> None:
    """``OdflowError`` naming the model and why when ``fmt`` (tflite, tflite_int8, onnx) cannot
    be made from a model of this ``pipeline_config``."""
    kind = pipeline_config.model.ssd.feature_extractor.type
    target = "tflite" if fmt.startswith("tflite") else fmt
    for prefix, (family, reasons) in _NOT_CONVERTIBLE.items():
        if kind.startswith(prefix) and target in reasons:
            raise OdflowError(
                f"model.ssd.feature_extractor.type {kind!r} ({family}): the {fmt} export cannot "
                f"be made: {reasons[target]}; deploy exported_model/frozen_inference_graph.pb "
                "or exported_model/saved_model instead")
