"""What ``python -m odflow.config check`` reports: the settings that matter, and problems.

A config can parse and still be unusable (a ``PATH_TO_BE_CONFIGURED`` left in, no input
records, ``num_classes`` disagreeing with the label map); saying so before training starts
is the point of checking.
"""

from __future__ import annotations

from pathlib import Path

from odflow import label_map as label_map_module
from odflow.config.loader import TrainEvalPipelineConfig, meta_architecture
from odflow.errors import OdflowError

PLACEHOLDER = "PATH_TO_BE_CONFIGURED"


def summarize(config: TrainEvalPipelineConfig) -> list[str]:
    """One ``key: value`` line per setting a user usually wants to see."""
    lines = [f"meta-architecture: {meta_architecture(config)}"]
    if meta_architecture(config) == "ssd":
        ssd = config.model.ssd
        lines += [f"num_classes: {ssd.num_classes}",
                  f"feature_extractor: {ssd.feature_extractor.type or '(unset)'}",
                  f"image_resizer: {_describe_oneof(ssd.image_resizer, 'image_resizer_oneof')}"]
    train = config.train_config
    optimizer = train.optimizer.WhichOneof("optimizer") if train.HasField("optimizer") else None
    lines += [f"batch_size: {train.batch_size}",
              f"num_steps: {train.num_steps or '(unlimited)'}",
              f"optimizer: {optimizer or '(unset)'}",
              f"fine_tune_checkpoint: {train.fine_tune_checkpoint or '(none)'}",
              f"fine_tune_checkpoint_type: {_checkpoint_type(config)}",
              "data_augmentation: " + (", ".join(
                  option.WhichOneof("preprocessing_step") or "?"
                  for option in train.data_augmentation_options) or "(none)"),
              "train input: " + _inputs(config.train_input_reader),
              f"train label map: {config.train_input_reader.label_map_path or '(unset)'}"]
    for index, reader in enumerate(config.eval_input_reader):
        lines += [f"eval input [{index}]: {_inputs(reader)}",
                  f"eval label map [{index}]: {reader.label_map_path or '(unset)'}"]
    lines.append(f"eval num_examples: {config.eval_config.num_examples}")
    return lines


def problems(config: TrainEvalPipelineConfig, source: str = "config") -> list[str]:
    """Warnings for a config that parses but is not ready to train; errors raise.

    Raises ``OdflowError`` when ``num_classes`` is not positive or disagrees with a label
    map that exists.
    """
    warnings = []
    if meta_architecture(config) == "ssd":
        num_classes = config.model.ssd.num_classes
        if num_classes < 1:
            raise OdflowError(f"{source}: model.ssd.num_classes is {num_classes}; set it to the "
                              "number of classes (the label map's largest id)")
        for path in _label_map_paths(config):
            if Path(path).is_file():
                label_map = label_map_module.load(path)
                if label_map.num_classes != num_classes:
                    raise OdflowError(
                        f"{source}: num_classes is {num_classes} but the label map {path} has "
                        f"largest id {label_map.num_classes}; patch with --num-classes "
                        f"{label_map.num_classes} or --num-classes-from-label-map")
    text = str(config)
    if PLACEHOLDER in text:
        warnings.append(f"{source}: still contains {PLACEHOLDER}; patch the paths "
                        "(python -m odflow.config patch --help)")
    if not config.train_input_reader.tf_record_input_reader.input_path:
        warnings.append(f"{source}: train_input_reader has no input_path")
    if not config.eval_input_reader:
        warnings.append(f"{source}: no eval_input_reader")
    return warnings


def _label_map_paths(config: TrainEvalPipelineConfig) -> list[str]:
    paths = [config.train_input_reader.label_map_path]
    paths += [reader.label_map_path for reader in config.eval_input_reader]
    return sorted({path for path in paths if path and PLACEHOLDER not in path})


def _describe_oneof(message, oneof: str) -> str:
    branch = message.WhichOneof(oneof)
    if branch == "fixed_shape_resizer":
        return f"fixed_shape_resizer {message.fixed_shape_resizer.height}x" \
               f"{message.fixed_shape_resizer.width}"
    return branch or "(unset)"


def _checkpoint_type(config: TrainEvalPipelineConfig) -> str:
    train = config.train_config
    if train.fine_tune_checkpoint_type:
        return train.fine_tune_checkpoint_type
    if train.from_detection_checkpoint:
        return "detection (from_detection_checkpoint: true)"
    return "(unset)"


def _inputs(reader) -> str:
    kind = reader.WhichOneof("input_reader")
    if kind == "tf_record_input_reader":
        return ", ".join(reader.tf_record_input_reader.input_path) or "(none)"
    return kind or "(none)"
