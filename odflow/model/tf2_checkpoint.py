"""Object-based (TF2) checkpoints, read and written by key.

The TF2 Detection Model Zoo ships ``tf.train.Checkpoint(model=detection_model)`` checkpoints:
every variable is stored under the attribute path of the upstream Keras objects
(``model/_feature_extractor/classification_backbone/layer_with_weights-0/kernel/.ATTRIBUTES/
VARIABLE_VALUE``), not under a TF1 name.  odflow's layers are not those Keras objects, so each
model family says, in a :class:`KeyMapping`, which checkpoint key holds which of its variables
(``register_family``); restoring is then a plain copy by key, with the TF2 API's
``fine_tune_checkpoint_type`` semantics (``restore_from_objects``):

- ``classification``: the backbone only, from an ImageNet checkpoint written as
  ``tf.train.Checkpoint(feature_extractor=<backbone>)`` (keys ``feature_extractor/...``);
  a zoo (detection) checkpoint is refused: the TF2 API restores nothing from it and fails.
- ``detection``: everything under ``model/_feature_extractor/`` (backbone and FPN/extra
  layers), whatever the number of classes.
- ``full``: every ``model/...`` key, box predictor included.

Every key of the checkpoint is either restored or reported (skipped on purpose, of another
shape, or not part of this model), so a wrong checkpoint never fine-tunes silently.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import tensorflow as tf

from odflow import checkpoints
from odflow.errors import OdflowError
from odflow.model.restore import RestoreReport, check_checkpoint_type, copy_variables

log = logging.getLogger(__name__)

KEY_SUFFIX = "/.ATTRIBUTES/VARIABLE_VALUE"
OBJECT_GRAPH_KEY = "_CHECKPOINTABLE_OBJECT_GRAPH"
SAVE_COUNTER_KEY = "save_counter"
MODEL_PREFIX = "model/"
FEATURE_EXTRACTOR_PREFIX = "model/_feature_extractor/"
CLASSIFICATION_PREFIX = "feature_extractor/"
GROUPS = ("backbone", "feature_extractor", "box_predictor")
# Which groups each fine_tune_checkpoint_type restores (restore_from_objects).
_RESTORED_GROUPS = {"classification": ("backbone",),
                    "detection": ("backbone", "feature_extractor"),
                    "full": GROUPS}


@dataclass
class KeyMapping:
    """A model's variables by TF2 checkpoint key (keys without ``KEY_SUFFIX``).

    ``groups`` says what each key belongs to (``backbone``: the classification network;
    ``feature_extractor``: FPN / extra layers; ``box_predictor``); ``skipped`` lists keys a
    zoo checkpoint holds that the model deliberately does not use, with the reason.
    """

    variables: dict[str, tf.Variable] = field(default_factory=dict)
    groups: dict[str, str] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)

    def add(self, key: str, variable: tf.Variable, group: str) -> None:
        """One key; a key given twice is a bug in the family's mapping."""
        if group not in GROUPS:
            raise ValueError(f"unknown group {group!r} for {key}")
        if key in self.variables:
            raise ValueError(f"checkpoint key {key} mapped twice")
        self.variables[key] = variable
        self.groups[key] = group

    def skip(self, key: str, reason: str) -> None:
        self.skipped[key] = reason

    def keys_for(self, checkpoint_type: str) -> list[str]:
        """The keys ``checkpoint_type`` restores, sorted."""
        wanted = _RESTORED_GROUPS[checkpoint_type]
        return sorted(k for k, g in self.groups.items() if g in wanted)

    def add_conv(self, prefix: str, unit, group: str) -> None:
        """A ``ConvUnit``'s conv as one Keras conv layer at ``prefix`` (``kernel`` or
        ``depthwise_kernel``, ``bias`` when it has biases); its batch norm, a separate Keras
        layer, goes through ``add_batch_norm``."""
        name = "depthwise_kernel" if unit.depthwise else "kernel"
        self.add(f"{prefix}/{name}", unit.weights, group)
        if unit.biases is not None:
            self.add(f"{prefix}/bias", unit.biases, group)

    def add_batch_norm(self, prefix: str, norm, group: str) -> None:
        """A ``BatchNorm`` as a Keras batch norm layer at ``prefix``."""
        for name in ("gamma", "beta", "moving_mean", "moving_variance"):
            variable = getattr(norm, name)
            if variable is not None:
                self.add(f"{prefix}/{name}", variable, group)

    def add_separable(self, prefix: str, depthwise, pointwise, group: str) -> None:
        """A Keras ``SeparableConv2D`` (``depthwise_kernel``, ``pointwise_kernel``, ``bias``)
        made of odflow's depthwise unit and the 1x1 unit after it."""
        self.add(f"{prefix}/depthwise_kernel", depthwise.weights, group)
        self.add(f"{prefix}/pointwise_kernel", pointwise.weights, group)
        if pointwise.biases is not None:
            self.add(f"{prefix}/bias", pointwise.biases, group)


class LayerNumbers:
    """``layer_with_weights-N`` prefixes of a Keras functional model, in layer order: a Keras
    model numbers only the layers that own weights, so a conv and its batch norm take two
    consecutive numbers."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.count = 0

    def next(self) -> str:
        key = f"{self.prefix}/layer_with_weights-{self.count}"
        self.count += 1
        return key


_FAMILIES: dict[str, Callable[[object], KeyMapping]] = {}


def register_family(feature_extractor_types: Iterable[str],
                    build_mapping: Callable[[object], KeyMapping]) -> None:
    """Declare the TF2 key mapping of the models whose ``feature_extractor.type`` is one of
    ``feature_extractor_types`` (``build_mapping(model) -> KeyMapping``)."""
    for name in feature_extractor_types:
        _FAMILIES[name] = build_mapping


def registered_types() -> tuple[str, ...]:
    return tuple(sorted(_FAMILIES))


def key_mapping(model) -> KeyMapping:
    """The model's ``KeyMapping`` (by its feature extractor type)."""
    _load_families()
    kind = getattr(model, "feature_extractor_type", "")
    if kind not in _FAMILIES:
        raise OdflowError(
            f"feature extractor type {kind or '(unknown)'!r} has no TF2 (object-based) "
            "checkpoint layout in odflow; TF2 checkpoints restore into "
            + ", ".join(registered_types())
            + "; for a TF1 (name-based) checkpoint set fine_tune_checkpoint_version: V1")
    return _FAMILIES[kind](model)


def _load_families() -> None:
    """The builder imports every model module, and those register their families."""
    import odflow.model.builder  # noqa: F401


def is_object_based(prefix: str | os.PathLike) -> bool:
    """Whether the checkpoint at ``prefix`` is object-based (written by ``tf.train.Checkpoint``:
    it holds the serialised object graph)."""
    try:
        reader = tf.train.load_checkpoint(str(prefix))
    except (tf.errors.OpError, ValueError) as error:
        raise OdflowError(f"cannot read checkpoint {prefix}: {error}") from error
    return reader.has_tensor(OBJECT_GRAPH_KEY)


def _strip(key: str) -> str:
    return key.removesuffix(KEY_SUFFIX)


def classification_key(key: str) -> str:
    """Where a backbone variable sits in a classification checkpoint: ``model/_feature_
    extractor/<backbone attribute>/<rest>`` -> ``feature_extractor/<rest>`` (the backbone
    Keras model saved as ``tf.train.Checkpoint(feature_extractor=backbone)``)."""
    rest = key[len(FEATURE_EXTRACTOR_PREFIX):]
    return CLASSIFICATION_PREFIX + rest.split("/", 1)[1]


def restore_v2(model, prefix: str | os.PathLike, checkpoint_type: str) -> RestoreReport:
    """Copy a TF2 object-based checkpoint into ``model`` by key (see the module docstring).

    Shape or dtype mismatches (another ``num_classes``) are skipped with a warning; keys the
    mapping does not restore are logged with why; nothing restored is an ``OdflowError``.
    """
    check_checkpoint_type(checkpoint_type)
    prefix = checkpoints.find_checkpoint(prefix)
    check_version(prefix, 2)
    reader = tf.train.load_checkpoint(prefix)
    stored_shapes = reader.get_variable_to_shape_map()
    shapes = {_strip(k): v for k, v in stored_shapes.items()}
    dtypes = {_strip(k): v for k, v in reader.get_variable_to_dtype_map().items()}
    stored = {_strip(k): k for k in stored_shapes}  # key without the suffix -> as stored
    mapping = key_mapping(model)
    if checkpoint_type == "classification":
        if not any(k.startswith(CLASSIFICATION_PREFIX) for k in shapes):
            hint = ("it is a detection checkpoint (model/... keys, e.g. a zoo tarball's); set "
                    "fine_tune_checkpoint_type: detection (or full to keep all classes)"
                    if any(k.startswith(MODEL_PREFIX) for k in shapes)
                    else "it has no feature_extractor/... keys")
            raise OdflowError(f"fine_tune_checkpoint_type: classification restores a backbone "
                              f"saved as tf.train.Checkpoint(feature_extractor=...), but "
                              f"{prefix} holds none: {hint}")
        wanted = {classification_key(k): k for k in mapping.keys_for(checkpoint_type)}
    else:
        wanted = {k: k for k in mapping.keys_for(checkpoint_type)}
    report = RestoreReport(prefix, checkpoint_type)
    copy_variables(reader, prefix, shapes, dtypes,
                   [(model_key, ckpt_key, mapping.variables[model_key])
                    for ckpt_key, model_key in sorted(wanted.items())],
                   report, stored=stored)
    report.unused = _unused_keys(shapes, wanted, mapping, checkpoint_type)
    log.info("%s", report.summary())
    if not report.restored:
        example = next(iter(sorted(k for k in shapes if k != OBJECT_GRAPH_KEY)), "nothing")
        raise OdflowError(
            f"nothing restored from fine-tune checkpoint {prefix} "
            f"(fine_tune_checkpoint_type {checkpoint_type!r}): its keys (e.g. {example}) "
            "match none of the model's; check the path, fine_tune_checkpoint_type and the "
            "feature extractor type")
    check_mostly_restored(report)
    return report


def check_mostly_restored(report: RestoreReport) -> None:
    """An ``OdflowError`` when fewer than half the variables asked for were restored.

    Another ``num_classes`` skips only the class head (a few keys), which is the point of
    fine-tuning; most keys missing or of another shape mean a checkpoint of another
    architecture or size (another feature extractor, depth multiplier or FPN depth), and
    training on would start from scratch with a restore report as the only hint.
    """
    skipped = len(report.skipped_missing) + len(report.skipped_shape)
    if skipped * 2 <= report.num_candidates:
        return
    example = (report.skipped_shape or report.skipped_missing)[0]
    raise OdflowError(
        f"fine-tune checkpoint {report.checkpoint_path} does not fit this model: only "
        f"{len(report.restored)} of {report.num_candidates} variables restored "
        f"(fine_tune_checkpoint_type {report.checkpoint_type!r}; "
        f"{len(report.skipped_shape)} of another shape, {len(report.skipped_missing)} missing, "
        f"e.g. {example}: see the warnings above). It is a checkpoint of another architecture "
        "or size: use the tarball of the model's feature extractor type (and its "
        "depth_multiplier), or change the config to the checkpoint's model")


def _unused_keys(shapes: dict, wanted: dict[str, str], mapping: KeyMapping,
                 checkpoint_type: str) -> dict[str, str]:
    """Checkpoint key -> why it was not restored (logged: one line per reason, and one
    warning per key the model does not know at all)."""
    unused: dict[str, str] = {}
    unknown = []
    for key in sorted(shapes):
        if key in wanted or key == OBJECT_GRAPH_KEY:
            continue
        if key == SAVE_COUNTER_KEY:
            unused[key] = "checkpoint bookkeeping"
        elif key in mapping.skipped:
            unused[key] = mapping.skipped[key]
        elif key in mapping.groups:
            unused[key] = (f"{mapping.groups[key]}: not restored with "
                           f"fine_tune_checkpoint_type {checkpoint_type}")
        elif checkpoint_type == "classification" and not key.startswith(CLASSIFICATION_PREFIX):
            unused[key] = "not a backbone key (classification restores feature_extractor/...)"
        else:
            unused[key] = "no variable of this model"
            unknown.append(key)
    by_reason: dict[str, int] = {}
    for reason in unused.values():
        by_reason[reason] = by_reason.get(reason, 0) + 1
    for reason, count in sorted(by_reason.items()):
        if reason != "no variable of this model":
            log.info("checkpoint keys not restored (%s): %d", reason, count)
    for key in unknown:
        log.warning("checkpoint key not used: %s (no variable of this model)", key)
    return unused


def write_v2(model, prefix: str | os.PathLike, layout: str = "detection") -> str:
    """Write the model's variables as an object-based checkpoint at ``prefix`` whose keys are
    the family's TF2 keys (what ``restore_v2`` and ``tf.train.list_variables`` read),
    all-or-nothing (a temporary prefix renamed into place).  Skipped keys are not written.

    ``layout``: ``detection`` (``tf.train.Checkpoint(model=...)``, every ``model/...`` key, as
    the zoo tarballs), or ``classification`` (the backbone alone as
    ``tf.train.Checkpoint(feature_extractor=<backbone>)``, as the ImageNet checkpoints the
    configs' ``fine_tune_checkpoint_type: classification`` expects).  Returns the prefix."""
    if layout not in ("detection", "classification"):
        raise ValueError(f"layout must be detection or classification, not {layout!r}")
    mapping = key_mapping(model)
    if layout == "classification":
        keys = {classification_key(k): mapping.variables[k]
                for k in mapping.keys_for("classification")}
        top = CLASSIFICATION_PREFIX
    else:
        keys = mapping.variables
        top = MODEL_PREFIX
    root = tf.Module()
    for key, variable in keys.items():
        if not key.startswith(top):
            raise ValueError(f"TF2 key {key} is not under {top}")
        node = root
        parts = key[len(top):].split("/")
        for part in parts[:-1]:
            child = getattr(node, part, None)
            if child is None:
                child = tf.Module()
                setattr(node, part, child)
            node = child
        setattr(node, parts[-1], variable)
    prefix = Path(prefix)
    prefix.parent.mkdir(parents=True, exist_ok=True)
    tmp = prefix.parent / f".{prefix.name}.tmp-{uuid.uuid4().hex[:8]}"
    try:
        with tf.device("/cpu:0"):
            tf.train.Checkpoint(**{top.rstrip("/"): root}).write(str(tmp))
        os.replace(f"{tmp}{checkpoints.DATA_SUFFIX}", f"{prefix}{checkpoints.DATA_SUFFIX}")
        os.replace(f"{tmp}.index", f"{prefix}.index")
    finally:
        for leftover in prefix.parent.glob(f"{tmp.name}*"):
            leftover.unlink(missing_ok=True)
    return str(prefix)


VERSION_FIELD = "train_config.fine_tune_checkpoint_version"


def restore_for_version(model, path: str | os.PathLike, checkpoint_type: str, version: int,
                        load_all_detection_checkpoint_vars: bool = False) -> RestoreReport:
    """The fine-tune restore the config asks for: ``fine_tune_checkpoint_version`` V2 (2) reads
    an object-based checkpoint by key (``restore_v2``), V1 or unset the name-based reader.
    A checkpoint of the other kind is an error naming the field."""
    from odflow.model.restore import restore_fine_tune_checkpoint

    prefix = checkpoints.find_checkpoint(path, what="train_config.fine_tune_checkpoint")
    check_version(prefix, version)
    if version == 2:
        return restore_v2(model, prefix, checkpoint_type)
    return restore_fine_tune_checkpoint(model, prefix, checkpoint_type,
                                        load_all_detection_checkpoint_vars)


def check_version(prefix: str | os.PathLike, version: int) -> None:
    """An ``OdflowError`` naming ``fine_tune_checkpoint_version`` when the checkpoint at
    ``prefix`` is not of the kind it says (V2: object-based; V1 or unset (0): name-based)."""
    object_based = is_object_based(prefix)
    if version == 2 and not object_based:
        raise OdflowError(
            f"{VERSION_FIELD} is V2 but {prefix} is a name-based (TF1) checkpoint; set "
            f"{VERSION_FIELD}: V1 (or remove it)")
    if version != 2 and object_based:
        raise OdflowError(
            f"{prefix} is an object-based (TF2) checkpoint (a TF2 zoo tarball's "
            f"checkpoint/ckpt-0) but {VERSION_FIELD} is V1 or unset; set {VERSION_FIELD}: V2")
