"""Export a trained checkpoint as the API's ``export_inference_graph.py`` did, in TF 2.

Output directory (all or nothing)::

    frozen_inference_graph.pb   GraphDef, input image_tensor:0, outputs detection_boxes:0, ...
    saved_model/                serve tag, signature serving_default (input key "inputs")
    model.ckpt.{index,data-*}   model variables + global_step, the zoo's names
    checkpoint                  state file naming model.ckpt
    pipeline.config             the config the export was built from
    label_map.pbtxt             a copy of --label_map_path, when given (the tutorial's step 8)
"""

from __future__ import annotations

import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from odflow import checkpoints
from odflow import config as config_lib
from odflow import label_map as label_map_lib
from odflow.errors import OdflowError
from odflow.export.checkpoint import write_export_checkpoint
from odflow.export.frozen_graph import freeze, write_frozen_graph
from odflow.export.saved_model import write_saved_model
from odflow.export.signature import check_input_type
from odflow.export.staging import check_replaceable, staged_directory
from odflow.export.weights import load_weights, wants_moving_averages

log = logging.getLogger(__name__)

FROZEN_GRAPH = "frozen_inference_graph.pb"
SAVED_MODEL = "saved_model"
PIPELINE_CONFIG = "pipeline.config"
LABEL_MAP = "label_map.pbtxt"
#: Entries an existing output directory may hold and still be replaced (a previous export,
#: and the files ``odflow convert`` makes from it, stale once the export changes).
EXPORT_ENTRIES = (FROZEN_GRAPH, SAVED_MODEL, "model.ckpt.*", "checkpoint", PIPELINE_CONFIG,
                  LABEL_MAP, "model.tflite", "model_int8.tflite", "model.onnx",
                  "model.tflite.json", "model_int8.tflite.json", "model.onnx.json")


@dataclass(frozen=True)
class ExportResult:
    output_directory: Path
    checkpoint_prefix: str
    global_step: int
    num_moving_averages: int


def export_inference_graph(input_type: str, pipeline_config_path: str | os.PathLike,
                           trained_checkpoint_prefix: str, output_directory: str | os.PathLike,
                           label_map_path: str | os.PathLike | None = None,
                           use_moving_averages: str = "auto",
                           clip_before_nms: bool = False) -> ExportResult:
    """Check every input first (cheap), then build, restore and write the export.

    ``clip_before_nms``: the graphs' post-processing clips boxes before the suppression, as
    the zoo's 2018 graphs did, instead of after it (``odflow.model.postprocess``)."""
    check_input_type(input_type)
    pipeline_config = _load_config(Path(pipeline_config_path))
    prefix = checkpoints.find_checkpoint(trained_checkpoint_prefix,
                                         what="--trained_checkpoint_prefix")
    if label_map_path is not None:
        _check_label_map(Path(label_map_path), pipeline_config)
    check_replaceable(Path(output_directory), EXPORT_ENTRIES)
    return export_model(pipeline_config, prefix, output_directory, input_type=input_type,
                        label_map_path=label_map_path, use_moving_averages=use_moving_averages,
                        clip_before_nms=clip_before_nms)


def export_model(pipeline_config, checkpoint_prefix: str, output_directory: str | os.PathLike,
                 input_type: str = "image_tensor",
                 label_map_path: str | os.PathLike | None = None,
                 use_moving_averages: str = "auto",
                 clip_before_nms: bool = False) -> ExportResult:
    """Export ``checkpoint_prefix`` restored into the model that ``pipeline_config`` describes
    (``clip_before_nms``: see :func:`export_inference_graph`)."""
    from odflow.model import builder  # TensorFlow model code: imported only when exporting

    check_input_type(input_type)
    model = builder.build_pipeline(pipeline_config, is_training=False,  # variables included
                                   clip_before_nms=clip_before_nms)
    log.info("post-processing: %s", "boxes clipped to the image, then non-max suppression "
             "(the zoo's 2018 order)" if clip_before_nms else "non-max suppression, then the "
             "survivors clipped to the image")
    variables = model.named_variables()
    weights = load_weights(variables, checkpoint_prefix, use_moving_averages,
                           wants_moving_averages(pipeline_config))
    log.info("restored %d variables from %s (step %d)", len(variables), checkpoint_prefix,
             weights.global_step)
    target = Path(output_directory)
    with staged_directory(target, EXPORT_ENTRIES) as staging:
        write_export_checkpoint(staging, weights.values, weights.global_step)
        log.info("freezing the inference graph (input %s)", input_type)
        write_frozen_graph(freeze(model, input_type), staging / FROZEN_GRAPH)
        log.info("writing the SavedModel")
        write_saved_model(model, variables.values(), input_type, staging / SAVED_MODEL)
        (staging / PIPELINE_CONFIG).write_text(config_lib.dumps(pipeline_config),
                                               encoding="utf-8")
        if label_map_path is not None:
            shutil.copyfile(label_map_path, staging / LABEL_MAP)
    log.info("exported %s to %s", checkpoint_prefix, target)
    return ExportResult(output_directory=target, checkpoint_prefix=checkpoint_prefix,
                        global_step=weights.global_step,
                        num_moving_averages=weights.num_moving_averages)


def _load_config(path: Path):
    if not path.is_file():
        raise OdflowError(f"--pipeline_config_path {path} does not exist")
    return config_lib.load(path)


def _check_label_map(path: Path, pipeline_config) -> None:
    """The copy beside the model must describe its classes: parse it and compare the ids."""
    if not path.is_file():
        raise OdflowError(f"--label_map_path {path} does not exist")
    label_map = label_map_lib.load(path)
    num_classes = pipeline_config.model.ssd.num_classes
    if label_map.max_id > num_classes:
        raise OdflowError(f"--label_map_path {path} has class id {label_map.max_id}, but the "
                          f"pipeline config's model has num_classes {num_classes}")

