"""Read and write pipeline configs in the TF Object Detection API's text format.

Users bring configs written for the API unchanged, so parsing follows the API
(``text_format.Merge``: a repeated singular field keeps its last value) with our own protos.
What we add is errors a user can act on: ``PATH:LINE:COL: what``, the nearest valid names
for a misspelt field or enum value, and a plain statement when the model is not an SSD
(our protos keep the other meta-architectures as empty placeholders, which would otherwise
surface as a baffling "no field named number_of_stages").
"""

from __future__ import annotations

import difflib
import logging
import os
import re
from pathlib import Path

from google.protobuf import descriptor_pool, text_format

from odflow.errors import OdflowError
from odflow.protos import pipeline_pb2
from odflow.utils.atomic import atomic_write_text
from odflow.utils.text_tokens import tokens_with_depth

log = logging.getLogger(__name__)

TrainEvalPipelineConfig = pipeline_pb2.TrainEvalPipelineConfig

# Fields that configs shipped with the API use although its schema never defined them
# (samples/configs/ssdlite_mobilenet_v{1,2}_coco_quantize.config).  Those configs must load
# unchanged, so these are dropped with a warning; any other unknown field is an error.
TOLERATED_UNKNOWN_FIELDS = {
    ("object_detection.protos.TrainConfig", "load_all_optimizer_checkpoint_vars"),
    ("object_detection.protos.TrainConfig", "load_all_moving_average_checkpoint_vars"),
    ("object_detection.protos.TrainConfig", "include_global_step"),
}

# Fields the API's schema had when the TF1 zoo tarballs were exported and later dropped; the
# zoo's own pipeline.config files still carry them (ssd_mobilenet_v2_coco_2018_03_29 has
# `batch_norm_trainable: true`; of all the zoo SSD configs it is the only one).  They load with
# a warning saying what they meant; `RETIRED_FIELD_EFFECTS` carries a value that still means
# something over to today's field.
RETIRED_FIELDS = {
    ("object_detection.protos.SsdFeatureExtractor", "batch_norm_trainable"):
        "whether the feature extractor's batch norm trained (TF1 API before mid-2018); "
        "true was the default and is what odflow does, false is `model.ssd.freeze_batchnorm: "
        "true` today",
}

_NO_FIELD_EFFECT = "ignored"


def _batch_norm_trainable(config: TrainEvalPipelineConfig, value: str) -> str:
    if value.lower() in ("false", "f", "0"):
        config.model.ssd.freeze_batchnorm = True
        return "set model.ssd.freeze_batchnorm: true in its place"
    return _NO_FIELD_EFFECT


RETIRED_FIELD_EFFECTS = {"batch_norm_trainable": _batch_norm_trainable}

# Meta-architectures of DetectionModel that odflow does not train (see docs/architecture.md).
OTHER_META_ARCHITECTURES = ("faster_rcnn", "center_net", "experimental_model")

_POSITION_PREFIX = re.compile(r"^\s*\d+(?::\d+)?\s*:\s*")
_NO_FIELD = re.compile(r'Message type "([\w.]+)" has no field named "([^"]+)"')
_NO_ENUM_VALUE = re.compile(r'Enum type "([\w.]+)" has no value named (\w+)')


def load(path: str | os.PathLike, *, require_ssd: bool = True) -> TrainEvalPipelineConfig:
    """Parse a ``pipeline.config`` file; ``require_ssd`` rejects other meta-architectures."""
    return loads(read_text(path, what="pipeline config"), source=str(path),
                 require_ssd=require_ssd)


def read_text(path: str | os.PathLike, *, what: str) -> str:
    """The file's text, or an ``OdflowError`` saying why it cannot be read."""
    file = Path(path)
    if not file.exists():
        raise OdflowError(f"{path}: {what} not found")
    if file.is_dir():
        raise OdflowError(f"{path}: is a directory, expected a {what} file")
    try:
        return file.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise OdflowError(f"{path}: not a text {what} (not UTF-8 at byte {error.start})") from error
    except OSError as error:
        raise OdflowError(f"{path}: cannot read the {what}: {error.strerror}") from error


def loads(text: str, source: str = "<string>", *,
          require_ssd: bool = True) -> TrainEvalPipelineConfig:
    """Parse pipeline-config text; ``source`` names it in error messages."""
    retired: list[tuple[str, str, int]] = []  # (field, value, line)
    while True:
        config = TrainEvalPipelineConfig()
        try:
            text_format.Merge(text, config)
            break
        except text_format.ParseError as error:
            blanked = _drop_tolerated_field(text, error, source, retired)
            if blanked is not None:
                text = blanked
                continue
            meta = _scan_meta_architecture(text)
            if require_ssd and meta in OTHER_META_ARCHITECTURES:
                raise OdflowError(_not_ssd_message(source, meta)) from error
            raise OdflowError(format_parse_error(error, source)) from error
    for field, value, line in retired:
        effect = RETIRED_FIELD_EFFECTS.get(field, lambda *_: _NO_FIELD_EFFECT)(config, value)
        meaning = next(m for (_, name), m in RETIRED_FIELDS.items() if name == field)
        log.warning("%s:%d: `%s: %s` is a retired field of the TF Object Detection API "
                    "(%s); %s", source, line, field, value, meaning, effect)
    if require_ssd:
        meta = config.model.WhichOneof("model")
        if meta in OTHER_META_ARCHITECTURES:
            raise OdflowError(_not_ssd_message(source, meta))
    return config


def dumps(config: TrainEvalPipelineConfig) -> str:
    """Canonical text format: fields in schema order, so equal configs give equal bytes."""
    return text_format.MessageToString(config)


def save(config: TrainEvalPipelineConfig, path: str | os.PathLike) -> None:
    atomic_write_text(path, dumps(config))


def meta_architecture(config: TrainEvalPipelineConfig) -> str | None:
    return config.model.WhichOneof("model")


def _drop_tolerated_field(text: str, error: text_format.ParseError, source: str,
                          retired: list[tuple[str, str, int]]) -> str | None:
    """``text`` with a tolerated or retired ``name: scalar`` blanked out (positions kept),
    else None; a retired field is appended to ``retired`` (field, value, line)."""
    match = _NO_FIELD.search(str(error))
    key = tuple(match.groups()) if match else None
    if (key not in TOLERATED_UNKNOWN_FIELDS and key not in RETIRED_FIELDS) or not error.GetLine():
        return None
    field = match.group(2)
    lines = text.split("\n")
    line = lines[error.GetLine() - 1]
    start = error.GetColumn() - 1
    assignment = re.compile(rf"{re.escape(field)}\s*:\s*[\w.+-]+\s*[;,]?").match(line, start)
    if assignment is None:
        return None
    if key in RETIRED_FIELDS:
        value = assignment.group(0).split(":", 1)[1].strip().rstrip(";,").strip()
        retired.append((field, value, error.GetLine()))
    else:
        log.warning("%s:%d: ignoring `%s`: not a field of the TF Object Detection API's schema",
                    source, error.GetLine(), field)
    end = assignment.end()
    lines[error.GetLine() - 1] = line[:start] + " " * (end - start) + line[end:]
    return "\n".join(lines)


def _not_ssd_message(source: str, meta: str) -> str:
    return (f"{source}: the model is `{meta}`, but odflow trains SSD models only "
            "(`model { ssd { ... } }`); start from an SSD config such as "
            "ssd_mobilenet_v1_coco.config")


def _scan_meta_architecture(text: str) -> str | None:
    """The field directly inside the top-level ``model { }`` block, found with tokens only.

    Parsing cannot tell us: the body of a Faster R-CNN model is unknown to our protos.
    """
    in_model = False
    for token, depth, _ in tokens_with_depth(text):
        if depth == 0:
            in_model = token == "model" or (in_model and token in (":", "{", "<"))
        elif depth == 1 and in_model and token in OTHER_META_ARCHITECTURES + ("ssd",):
            return token
    return None


def format_parse_error(error: text_format.ParseError, source: str) -> str:
    """``SOURCE:LINE:COL: what`` plus the nearest valid names for a misspelt name."""
    what = _POSITION_PREFIX.sub("", str(error))
    line, column = error.GetLine(), error.GetColumn()
    where = f"{source}:{line}:{column}" if line else source
    match = _NO_FIELD.search(what)
    if match:
        message_name, field = match.groups()
        descriptor = _find_message(message_name)
        if descriptor is not None:
            short = message_name.rsplit(".", 1)[-1]
            what = (f"unknown field `{field}` in {short}; "
                    + suggest(field, [f.name for f in descriptor.fields]))
    match = _NO_ENUM_VALUE.search(what)
    if match:
        enum_name, value = match.groups()
        try:
            enum = descriptor_pool.Default().FindEnumTypeByName(enum_name)
        except KeyError:
            enum = None
        if enum is not None:
            short = enum_name.rsplit(".", 1)[-1]
            what = (f"unknown value `{value}` for enum {short}; "
                    + suggest(value, [v.name for v in enum.values]))
    return f"{where}: {what}"


def _find_message(full_name: str):
    try:
        return descriptor_pool.Default().FindMessageTypeByName(full_name)
    except KeyError:
        return None


def suggest(name: str, candidates: list[str], limit: int = 3) -> str:
    """``did you mean: a, b?`` (nearest by difflib), or the full list when none is near."""
    close = difflib.get_close_matches(name, candidates, n=limit, cutoff=0.6)
    if close:
        return "did you mean: " + ", ".join(close) + "?"
    if not candidates:
        return "this message has no fields"
    if len(candidates) > 40:
        return "valid names: " + ", ".join(sorted(candidates)[:40]) + ", ..."
    return "valid names: " + ", ".join(sorted(candidates))
