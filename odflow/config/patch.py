"""The tutorial's seven hand edits of a template config, as one declarative function.

The tutorial edits ``ssd_mobilenet_v1_coco.config`` at seven lines; the workflow does the
same from ``config.yaml`` so the patched file is a reproducible product of its inputs
(byte-identical for the same inputs, so Snakemake sees no change and reruns nothing).
It also checks what the tutorial leaves to luck: ``num_classes`` must match the label map,
or training silently builds a head of the wrong size.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from odflow import label_map as label_map_module
from odflow.config.loader import TrainEvalPipelineConfig, load, meta_architecture, save
from odflow.config.overrides import apply_overrides
from odflow.config.schedule import check_learning_rate, fit_schedule
from odflow.errors import OdflowError

log = logging.getLogger(__name__)

FINE_TUNE_CHECKPOINT_TYPES = ("detection", "classification", "full")
#: ``train_config.fine_tune_checkpoint_version``: V1 name-based (the TF1 zoo's model.ckpt),
#: V2 object-based (the TF2 zoo's checkpoint/ckpt-0).
FINE_TUNE_CHECKPOINT_VERSIONS = ("V1", "V2")


def patch_config(config: TrainEvalPipelineConfig, *,
                 num_classes: int | None = None,
                 num_classes_from_label_map: bool = False,
                 fine_tune_checkpoint: str | None = None,
                 fine_tune_checkpoint_type: str | None = None,
                 fine_tune_checkpoint_version: str | None = None,
                 train_input_paths: Sequence[str] | str | None = None,
                 eval_input_paths: Sequence[str] | str | None = None,
                 label_map_path: str | os.PathLike | None = None,
                 num_examples: int | None = None,
                 num_steps: int | None = None,
                 overrides: Iterable[str] = (),
                 source: str = "config") -> TrainEvalPipelineConfig:
    """A patched copy of ``config`` (which is left untouched).

    Named edits apply first, then ``overrides`` (``dotted.path=value``), then the
    consistency check between ``num_classes`` and the label map.  ``num_steps`` sets
    ``train_config.num_steps``, stretches a schedule tied to the template's length with it
    (``schedule.fit_schedule``) and checks that no step that will run has learning rate 0;
    an override may change the schedule but not ``num_steps`` itself (its one home is the
    caller's setting).

    ``fine_tune_checkpoint_version`` (``V1``/``V2``) says how the checkpoint is read.  The TF2
    zoo's configs all say ``fine_tune_checkpoint_type: "classification"`` (an ImageNet backbone
    that is not in the tarball); with a zoo tarball's detection checkpoint that restores
    nothing, so the TF2 tutorials tell users to write "detection" by hand: the caller's type
    (the workflow's ``pipeline.fine_tune_checkpoint_type``, "detection" by default) does it.
    """
    if num_classes is not None and num_classes_from_label_map:
        raise OdflowError("give either num_classes or num_classes_from_label_map, not both")
    patched = TrainEvalPipelineConfig()
    patched.CopyFrom(config)
    if meta_architecture(patched) != "ssd":
        raise OdflowError(f"{source}: has no `model {{ ssd {{ ... }} }}` block to patch")
    ssd = patched.model.ssd

    if num_classes is not None:
        ssd.num_classes = _positive_int(num_classes, "num_classes")
    if fine_tune_checkpoint is not None:
        if not str(fine_tune_checkpoint).strip():
            raise OdflowError("fine_tune_checkpoint is empty; give the checkpoint prefix, "
                              "e.g. ckpt/model.ckpt")
        patched.train_config.fine_tune_checkpoint = str(fine_tune_checkpoint)
    if fine_tune_checkpoint_type is not None:
        if fine_tune_checkpoint_type not in FINE_TUNE_CHECKPOINT_TYPES:
            raise OdflowError(f"fine_tune_checkpoint_type {fine_tune_checkpoint_type!r} is not "
                              f"one of {', '.join(FINE_TUNE_CHECKPOINT_TYPES)}")
        patched.train_config.fine_tune_checkpoint_type = fine_tune_checkpoint_type
        # The deprecated flag would otherwise contradict the explicit type.
        patched.train_config.ClearField("from_detection_checkpoint")
    if fine_tune_checkpoint_version is not None:
        if fine_tune_checkpoint_version not in FINE_TUNE_CHECKPOINT_VERSIONS:
            raise OdflowError(f"fine_tune_checkpoint_version {fine_tune_checkpoint_version!r} "
                              f"is not one of {', '.join(FINE_TUNE_CHECKPOINT_VERSIONS)}")
        _set_checkpoint_version(patched.train_config, fine_tune_checkpoint_version)
    if train_input_paths is not None:
        _set_input_paths(patched.train_input_reader, train_input_paths, "train input")
    if eval_input_paths is not None:
        _set_input_paths(_first_eval_reader(patched, source, "eval input paths"),
                         eval_input_paths, "eval input")
    if label_map_path is not None:
        path = str(label_map_path)
        if not path.strip():
            raise OdflowError("label_map_path is empty")
        patched.train_input_reader.label_map_path = path
        _first_eval_reader(patched, source, "the label map path")
        for reader in patched.eval_input_reader:
            reader.label_map_path = path
    if num_examples is not None:
        patched.eval_config.num_examples = _positive_int(num_examples, "num_examples")

    if num_steps is not None:
        num_steps = _positive_int(num_steps, "num_steps")
        for change in fit_schedule(patched, num_steps):
            log.info("follows num_steps %d: %s", num_steps, change)
        patched.train_config.num_steps = num_steps

    patched = apply_overrides(patched, overrides)

    if num_steps is not None:
        if patched.train_config.num_steps != num_steps:
            raise OdflowError(
                f"an override sets train_config.num_steps to {patched.train_config.num_steps}, "
                f"but the run's length is num_steps {num_steps} (train.num_steps in "
                "config.yaml): set train.num_steps instead of overriding it")
        check_learning_rate(patched, num_steps)

    if num_classes_from_label_map:
        path = label_map_path or patched.train_input_reader.label_map_path
        if not path:
            raise OdflowError("num_classes_from_label_map needs a label map: give "
                              "label_map_path (--label-map)")
        patched.model.ssd.num_classes = label_map_module.load(path).num_classes
    elif label_map_path is not None:
        check_num_classes(patched, label_map_path)
    return patched


def check_num_classes(config: TrainEvalPipelineConfig, label_map_path: str | os.PathLike) -> None:
    """Fail when the label map's largest id differs from ``num_classes`` (if it can be read).

    A label map that does not exist yet cannot be checked; that is logged, not an error,
    since a workflow may patch the config before the dataset stage writes the label map.
    """
    if not Path(label_map_path).is_file():
        log.warning("label map %s does not exist (yet); num_classes not checked against it",
                    label_map_path)
        return
    label_map = label_map_module.load(label_map_path)
    num_classes = config.model.ssd.num_classes
    if label_map.num_classes != num_classes:
        raise OdflowError(
            f"num_classes is {num_classes} but the label map {label_map_path} has largest id "
            f"{label_map.num_classes}; set num_classes to {label_map.num_classes} (--num-classes "
            f"{label_map.num_classes}) or take it from the label map "
            "(--num-classes-from-label-map / num_classes_from_label_map=True)")


def patch_file(template: str | os.PathLike, output: str | os.PathLike,
               fit_anchors: bool = False, **options) -> TrainEvalPipelineConfig:
    """Load ``template``, patch it (see ``patch_config``) and write ``output`` atomically.

    With ``fit_anchors``, the anchor generator's fields are then fitted to the patched config's
    training records (``odflow.anchors.fit.apply_fitted_anchors``), before anything is written.
    """
    if Path(output).exists() and Path(output).resolve() == Path(template).resolve():
        raise OdflowError(f"{output}: the output would overwrite the template; "
                          "write the patched config elsewhere")
    config = load(template)
    patched = patch_config(config, source=str(template), **options)
    if fit_anchors:
        from odflow.anchors.fit import apply_fitted_anchors

        patched = apply_fitted_anchors(patched)
    save(patched, output)
    log.info("wrote %s (patched from %s)", output, template)
    return patched


def _set_checkpoint_version(train_config, version: str) -> None:
    """Set ``fine_tune_checkpoint_version``; V1 on a template without the field leaves it
    unset (V1 is its default), so a TF1 config patches to the same bytes as before."""
    field = train_config.DESCRIPTOR.fields_by_name["fine_tune_checkpoint_version"]
    number = field.enum_type.values_by_name[version].number
    if not train_config.HasField("fine_tune_checkpoint_version") and number == field.default_value:
        return
    train_config.fine_tune_checkpoint_version = number


def _positive_int(value: int, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise OdflowError(f"{name} must be a positive integer, got {value!r}")
    return value


def _set_input_paths(reader, paths: Sequence[str] | str, what: str) -> None:
    """Replace the reader's ``input_path`` list (sharded names and globs are kept as given)."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    paths = [str(path) for path in paths]
    if not paths or any(not path.strip() for path in paths):
        raise OdflowError(f"{what}: give at least one non-empty record path or pattern")
    if reader.WhichOneof("input_reader") not in (None, "tf_record_input_reader"):
        raise OdflowError(f"{what}: the reader uses `{reader.WhichOneof('input_reader')}`; "
                          "odflow reads TFRecord files (tf_record_input_reader)")
    del reader.tf_record_input_reader.input_path[:]
    reader.tf_record_input_reader.input_path.extend(paths)


def _first_eval_reader(config: TrainEvalPipelineConfig, source: str, what: str):
    if not config.eval_input_reader:
        raise OdflowError(f"{source}: has no eval_input_reader block to receive {what}; "
                          "add `eval_input_reader { tf_record_input_reader { } }`")
    return config.eval_input_reader[0]
