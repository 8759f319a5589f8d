"""Restore a fine-tune checkpoint (name-based, TF1 style, like the zoo's) into the model.

Upstream TF1 ``model_main.py`` once ignored ``fine_tune_checkpoint`` without a word; here
every skipped variable gets a warning line, the summary says how many were restored, and a
checkpoint from which nothing restores is an error.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import tensorflow as tf

from odflow import checkpoints
from odflow.errors import OdflowError

log = logging.getLogger(__name__)

CHECKPOINT_TYPES = ("detection", "classification", "full")
_FEATURE_SCOPE = "FeatureExtractor/"


class TensorReader(Protocol):
    """What the restore loop needs of a checkpoint reader (``tf.train.load_checkpoint``'s)."""

    def get_tensor(self, key: str) -> Any: ...


@dataclass
class RestoreReport:
    """Model variable names (zoo names; TF2 checkpoint keys for object-based checkpoints) by
    outcome."""

    checkpoint_path: str
    checkpoint_type: str
    restored: list[str] = field(default_factory=list)
    skipped_missing: list[str] = field(default_factory=list)
    skipped_shape: list[str] = field(default_factory=list)
    # TF2 checkpoints (odflow.model.tf2_checkpoint): checkpoint keys not restored -> why.
    unused: dict[str, str] = field(default_factory=dict)

    @property
    def num_candidates(self) -> int:
        return len(self.restored) + len(self.skipped_missing) + len(self.skipped_shape)

    def summary(self) -> str:
        unused = (f"; {len(self.unused)} other checkpoint keys not restored (see the lines "
                  "above)" if self.unused else "")
        return (f"restored {len(self.restored)} of {self.num_candidates} variables from "
                f"{self.checkpoint_path} (skipped: {len(self.skipped_missing)} missing, "
                f"{len(self.skipped_shape)} of another shape or dtype{unused})")


def check_checkpoint_type(checkpoint_type: str) -> None:
    """An ``OdflowError`` for a ``fine_tune_checkpoint_type`` neither restore knows."""
    if checkpoint_type not in CHECKPOINT_TYPES:
        raise OdflowError(f"fine_tune_checkpoint_type {checkpoint_type!r} is not supported; use "
                          + ", ".join(repr(t) for t in CHECKPOINT_TYPES))


def _candidates(named: dict[str, tf.Variable], checkpoint_type: str,
                load_all: bool) -> dict[str, str]:
    """Model variable name -> checkpoint name."""
    if checkpoint_type == "full" or (checkpoint_type == "detection" and load_all):
        return {name: name for name in named}
    if checkpoint_type == "detection":
        return {name: name for name in named if name.startswith(_FEATURE_SCOPE)}
    # classification: an ImageNet checkpoint names the backbone at top level (MobilenetV1/...,
    # InceptionV2/...): the model's names without FeatureExtractor/.
    return {name: name[len(_FEATURE_SCOPE):] for name in named if name.startswith(_FEATURE_SCOPE)}


def copy_variables(reader: TensorReader, prefix: str,
                   shapes: Mapping[str, Sequence[int]], dtypes: Mapping[str, tf.DType],
                   wanted: Iterable[tuple[str, str, tf.Variable]], report: RestoreReport,
                   stored: Mapping[str, str] | None = None) -> None:
    """Copy each ``(model name, checkpoint key, variable)`` of ``wanted``, in that order, from
    ``reader`` into its variable, and record the outcome in ``report`` under the model name.

    The one restore loop of both checkpoint kinds (name-based here, object-based in
    ``odflow.model.tf2_checkpoint``), so both skip, warn and fail alike.  ``shapes`` and
    ``dtypes`` are by checkpoint key as shown in messages; ``stored`` maps a shown key to the
    key the checkpoint stores it under when they differ (a TF2 key without its
    ``/.ATTRIBUTES/VARIABLE_VALUE`` suffix).  A key the checkpoint lacks, or holds with another
    shape or dtype (another ``num_classes``), is skipped with a warning; a value that cannot be
    read (a truncated ``.data-*`` file) is an ``OdflowError``.
    """
    for name, key, variable in wanted:
        if key not in shapes:
            log.warning("not restored: %s (no %s in %s)", name, key, prefix)
            report.skipped_missing.append(name)
            continue
        want_shape, want_dtype = variable.shape.as_list(), variable.dtype.base_dtype
        if list(shapes[key]) != want_shape or dtypes[key] != want_dtype:
            log.warning("not restored: %s (checkpoint has %s %s, model needs %s %s)", name,
                        list(shapes[key]), dtypes[key].name, want_shape, want_dtype.name)
            report.skipped_shape.append(name)
            continue
        try:
            value = reader.get_tensor(stored[key] if stored is not None else key)
        except (tf.errors.OpError, ValueError) as error:
            raise OdflowError(f"cannot read {key} from checkpoint {prefix} (is its "
                              f".data-* file missing or truncated?): {error}") from error
        variable.assign(value)
        report.restored.append(name)


def restore_fine_tune_checkpoint(model, checkpoint_path: str | Path, checkpoint_type: str,
                                 load_all_detection_checkpoint_vars: bool = False
                                 ) -> RestoreReport:
    """Copy matching variables from the checkpoint into ``model.named_variables()``.

    ``detection``: ``FeatureExtractor/*`` (everything with ``load_all_...``);
    ``classification``: ``<Backbone>/*`` (``MobilenetV1``, ``InceptionV2``, ...) into
    ``FeatureExtractor/<Backbone>/*``;
    ``full``: everything.  ``global_step`` is never a model variable, so never restored here.
    """
    check_checkpoint_type(checkpoint_type)
    prefix = checkpoints.find_checkpoint(checkpoint_path)
    try:
        reader = tf.train.load_checkpoint(prefix)
    except (tf.errors.OpError, ValueError) as error:
        raise OdflowError(f"cannot read checkpoint {prefix}: {error}") from error
    shapes = reader.get_variable_to_shape_map()
    dtypes = reader.get_variable_to_dtype_map()
    named = model.named_variables()
    report = RestoreReport(prefix, checkpoint_type)
    wanted = sorted(_candidates(named, checkpoint_type,
                                load_all_detection_checkpoint_vars).items())
    copy_variables(reader, prefix, shapes, dtypes,
                   [(name, ckpt_name, named[name]) for name, ckpt_name in wanted], report)
    log.info("%s", report.summary())
    if not report.restored:
        example = next(iter(sorted(shapes)), "nothing")
        raise OdflowError(
            f"nothing restored from fine-tune checkpoint {prefix} "
            f"(fine_tune_checkpoint_type {checkpoint_type!r}): its variables (e.g. {example}) "
            "match none of the model's; check the path and fine_tune_checkpoint_type")
    return report
