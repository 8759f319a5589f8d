"""Deployable files made from an export directory: TFLite (float, int8) and ONNX.

Each starts from what ``export_inference_graph`` wrote (``pipeline.config`` and the
``model.ckpt`` of the exported weights, or ``saved_model/``), so changing training or export
settings re-makes them and nothing else does.  Each file is written atomically with its
metadata JSON beside it (``odflow.export.metadata``).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from odflow import config as config_lib
from odflow.errors import OdflowError
from odflow.export import metadata
from odflow.export.convertible import check_convertible
from odflow.export.signature import OUTPUT_NAMES, SAVED_MODEL_INPUT_KEY
from odflow.utils.atomic import atomic_output

log = logging.getLogger(__name__)

FORMATS = ("tflite", "tflite_int8", "onnx")
TFLITE_OUTPUTS = ["detection_boxes", "detection_classes (0-based: label id - 1)",
                  "detection_scores", "num_detections"]


@dataclass(frozen=True)
class ExportDirectory:
    """The files of an export that the conversions read."""

    root: Path

    @property
    def pipeline_config(self) -> Path:
        return self.root / "pipeline.config"

    @property
    def checkpoint_prefix(self) -> Path:
        return self.root / "model.ckpt"

    @property
    def saved_model(self) -> Path:
        return self.root / "saved_model"

    @property
    def label_map(self) -> Path:
        return self.root / "label_map.pbtxt"

    def check(self) -> None:
        needed = [self.pipeline_config, Path(f"{self.checkpoint_prefix}.index"), self.label_map]
        missing = [str(p) for p in needed if not p.is_file()]
        if missing:
            raise OdflowError(f"export directory {self.root} lacks {', '.join(missing)}; run the "
                              "export first (snakemake exported_model/frozen_inference_graph.pb)")


def _restored_model(export: ExportDirectory):
    """The model of the export's pipeline.config with the exported weights (no EMA step: the
    export already chose them)."""
    from odflow.export.weights import load_weights
    from odflow.model import builder

    pipeline_config = config_lib.load(export.pipeline_config)
    model = builder.build(pipeline_config.model, is_training=False)
    weights = load_weights(model.named_variables(), str(export.checkpoint_prefix), "false", False)
    return pipeline_config, model, weights.global_step


def _resize_method(pipeline_config) -> str:
    from odflow.protos import pipeline_pb2

    resizer = pipeline_config.model.ssd.image_resizer.fixed_shape_resizer
    return pipeline_pb2.ResizeType.Name(resizer.resize_method).lower()


def export_tflite(export_dir: str | os.PathLike, output: str | os.PathLike, *,
                  int8: bool = False, calibration_records: list[str] | None = None,
                  calibration_images: int = 100, use_regular_nms: bool = True,
                  per_channel: bool = False) -> Path:
    """``model.tflite`` (float32) or, with ``int8``, the full-integer ``model_int8.tflite``."""
    from odflow.export import tflite

    export = ExportDirectory(Path(export_dir))
    export.check()
    if int8 and not calibration_records:
        raise OdflowError("the int8 TFLite export needs --calibration_records (the training "
                          "records)")
    check_convertible(config_lib.load(export.pipeline_config), "tflite_int8" if int8 else "tflite")
    pipeline_config, model, step = _restored_model(export)
    settings = tflite.postprocess_settings(pipeline_config.model, use_regular_nms)
    representative = None
    method = _resize_method(pipeline_config)
    if int8:
        representative = tflite.calibration_images(calibration_records, model.image_size,
                                                   calibration_images, method)
        log.info("calibrating on up to %d images of %s", calibration_images,
                 ", ".join(calibration_records))
    log.info("converting to TFLite (%s)", "full-integer int8" if int8 else "float32")
    data = tflite.convert(model, settings, representative, per_channel=per_channel)
    output = Path(output)
    tflite.write_tflite(data, output)
    height, width = model.image_size
    extra = {"post_processing": {"op": tflite.CUSTOM_OP, **settings.__dict__}}
    if int8:
        extra["calibration"] = {"records": calibration_records, "images": calibration_images,
                                "per_channel": per_channel}
    metadata.write(output, metadata.build(
        model_format="tflite_int8" if int8 else "tflite", model_file=output,
        input_spec={"name": "normalized_input_image_tensor", "shape": [1, height, width, 3],
                    "dtype": "uint8" if int8 else "float32", "mean": tflite.INPUT_MEAN,
                    "std": tflite.INPUT_STD, "resize_method": method,
                    "note": "resize to shape, then (pixel - mean) / std; int8: quantise with "
                            "the input tensor's scale and zero point"},
        outputs=TFLITE_OUTPUTS, label_map_path=export.label_map,
        checkpoint_prefix=export.checkpoint_prefix, global_step=step, extra=extra))
    log.info("wrote %s (%d bytes)", output, output.stat().st_size)
    return output


def export_onnx(export_dir: str | os.PathLike, output: str | os.PathLike,
                opset: int = 17) -> Path:
    """``model.onnx`` from the export's SavedModel (see ``odflow.export.onnx`` for why)."""
    from odflow.export.onnx import convert_saved_model

    export = ExportDirectory(Path(export_dir))
    export.check()
    pipeline_config = config_lib.load(export.pipeline_config)
    check_convertible(pipeline_config, "onnx")
    output = Path(output)
    with atomic_output(output) as tmp:
        convert_saved_model(export.saved_model, tmp, opset)
    resizer = pipeline_config.model.ssd.image_resizer.fixed_shape_resizer
    metadata.write(output, metadata.build(
        model_format="onnx", model_file=output,
        input_spec={"name": SAVED_MODEL_INPUT_KEY, "shape": ["batch", "height", "width", 3],
                    "dtype": "uint8", "mean": 127.5, "std": 127.5,
                    "resize_method": _resize_method(pipeline_config),
                    "model_size": [resizer.height, resizer.width],
                    "note": "raw RGB pixels of any size: resizing and normalisation are in the "
                            "graph"},
        outputs=list(OUTPUT_NAMES), label_map_path=export.label_map,
        checkpoint_prefix=export.checkpoint_prefix, global_step=_global_step(export),
        extra={"opset": opset}))
    log.info("wrote %s (%d bytes)", output, output.stat().st_size)
    return output


def _global_step(export: ExportDirectory) -> int | None:
    import tensorflow as tf

    reader = tf.train.load_checkpoint(str(export.checkpoint_prefix))
    if "global_step" in reader.get_variable_to_shape_map():
        return int(reader.get_tensor("global_step"))
    return None
