"""What a model directory's checkpoints were trained on, so a changed input never resumes them.

``train`` writes ``<model_dir>/fingerprint.json`` before its first step: the digests of the
train and eval records, the label maps and the fine-tune checkpoint, the seed, the number of CPU
replicas (``train.cpu_replicas``: each normalises batch norm over its share of the batch), and
every field of the pipeline config except

- the length-only fields (``train_config.num_steps`` and a cosine schedule's ``total_steps``,
  which follows it): raising the number of steps continues the same run;
- the paths of the files above, whose contents are digested instead: moving the data does not
  change what was learned.

A rerun compares the stored fingerprint with the current one; ``odflow.train.loop`` resumes when
they are equal and starts again otherwise.  Record files can be gigabytes, so each digest is
read in chunks and cached in the fingerprint itself by (path, size, modification time).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from odflow.config.schedule import without_length
from odflow.errors import OdflowError
from odflow.utils.atomic import atomic_write_text

log = logging.getLogger(__name__)

FILE_NAME = "fingerprint.json"
FORMAT = 1
_CHUNK = 4 << 20

#: Config fields that only say how long the run is (a regular expression on the field path).
LENGTH_ONLY_FIELDS = re.compile(r"^train_config\.num_steps$"
                                r"|\.cosine_decay_learning_rate\.total_steps$")
#: Config fields naming files whose contents the fingerprint digests (components below).
_PATH_FIELDS = re.compile(r"^train_config\.fine_tune_checkpoint$"
                          r"|^(train_input_reader|eval_input_reader\[\d+\])\.label_map_path$"
                          r"|^(train_input_reader|eval_input_reader\[\d+\])"
                          r"\.tf_record_input_reader\.input_path\[\d+\]$")

#: Component -> how a change is described in the log.
_DESCRIPTIONS = {"config": "pipeline config", "train_records": "train records",
                 "eval_records": "eval records", "label_maps": "label map",
                 "fine_tune_checkpoint": "fine-tune checkpoint", "seed": "seed",
                 "cpu_replicas": "train.cpu_replicas"}
#: Plain values compared as they are; a fingerprint without the key had the default.
_VALUES = {"seed": None, "cpu_replicas": 1}


def config_fields(message, prefix: str = "") -> dict[str, str]:
    """Every set leaf of a proto message as ``{"a.b[0].c": "value"}``."""
    fields: dict[str, str] = {}
    for descriptor, value in message.ListFields():
        path = f"{prefix}{descriptor.name}"
        repeated = descriptor.is_repeated
        items = list(enumerate(value)) if repeated else [(None, value)]
        for index, item in items:
            where = path if index is None else f"{path}[{index}]"
            if descriptor.type == descriptor.TYPE_MESSAGE:
                nested = config_fields(item, f"{where}.")
                fields.update(nested or {where: "{}"})
            elif descriptor.type == descriptor.TYPE_ENUM:
                fields[where] = descriptor.enum_type.values_by_number[item].name \
                    if item in descriptor.enum_type.values_by_number else str(item)
            elif descriptor.type == descriptor.TYPE_FLOAT:  # float32: print as the config did
                fields[where] = str(np.float32(item))
            else:
                fields[where] = repr(item)
    return fields


def learned_fields(config) -> dict[str, str]:
    """The config's fields that change what training learns (see the module docstring)."""
    # without_length: num_steps and the schedule fields the pipeline_config stage stretches
    # with it (cosine total, warm-up and hold steps) say how long, not what, training learns.
    return {path: value for path, value in config_fields(without_length(config)).items()
            if not LENGTH_ONLY_FIELDS.search(path) and not _PATH_FIELDS.search(path)}


def file_digest(path: str | os.PathLike, cache: dict[tuple, str] | None = None) -> dict:
    """``{"path", "size", "mtime_ns", "sha256"}`` of a file, reusing ``cache`` when unchanged."""
    stat = os.stat(path)
    key = (os.path.abspath(path), stat.st_size, stat.st_mtime_ns)
    digest = (cache or {}).get(key)
    if digest is None:
        sha = hashlib.sha256()
        with open(path, "rb") as handle:
            for chunk in iter(lambda: handle.read(_CHUNK), b""):
                sha.update(chunk)
        digest = sha.hexdigest()
    return {"path": key[0], "size": key[1], "mtime_ns": key[2], "sha256": digest}


def _record_files(readers: Iterable, field: str) -> list[str]:
    from odflow.data.records import expand_record_paths

    files: list[str] = []
    for reader in readers:
        if reader.WhichOneof("input_reader") != "tf_record_input_reader":
            continue
        try:
            files += expand_record_paths(list(reader.tf_record_input_reader.input_path))
        except OdflowError as error:
            raise OdflowError(f"{field}.tf_record_input_reader.input_path: {error}") from None
    return files


def _optional(find):
    """``find()``, or ``None`` when its files are missing (training without evaluation)."""
    try:
        return find()
    except OdflowError:
        return None


def _fine_tune_files(path: str) -> list[str] | None:
    """The fine-tune checkpoint's files; ``None`` when it cannot be found (not compared)."""
    if not path:
        return []
    from odflow.checkpoints import find_checkpoint

    try:
        prefix = find_checkpoint(path)
    except OdflowError:
        return None
    directory, name = os.path.split(prefix)
    data = sorted(str(p) for p in Path(directory or ".").glob(f"{name}.data-*"))
    return [f"{prefix}.index", *data]


def compute(config, seed: int | None, previous: dict | None = None, *,
            cpu_replicas: int = 1) -> dict:
    """The fingerprint of training ``config`` with ``seed`` on ``cpu_replicas`` CPU replicas
    (``previous``: a digest cache)."""
    cache = _cache_of(previous)

    def digests(paths: Iterable[str] | None) -> list[dict] | None:
        return None if paths is None else [file_digest(p, cache) for p in paths]

    fields = learned_fields(config)
    readers = list(config.eval_input_reader)
    label_maps = [config.train_input_reader.label_map_path] + [r.label_map_path for r in readers]
    return {
        "format": FORMAT,
        "config": {"sha256": hashlib.sha256(json.dumps(fields, sort_keys=True).encode())
                   .hexdigest(), "fields": fields},
        "train_records": digests(_record_files([config.train_input_reader],
                                               "train_input_reader")),
        "eval_records": digests(_optional(lambda: _record_files(readers, "eval_input_reader"))),
        "label_maps": digests(sorted({p for p in label_maps if p and os.path.isfile(p)})),
        "fine_tune_checkpoint": digests(_fine_tune_files(
            config.train_config.fine_tune_checkpoint)),
        "seed": seed,
        "cpu_replicas": cpu_replicas,
    }


def _cache_of(fingerprint: dict | None) -> dict[tuple, str]:
    cache: dict[tuple, str] = {}
    for value in (fingerprint or {}).values():
        if isinstance(value, list):
            for entry in value:
                if isinstance(entry, dict) and {"path", "size", "mtime_ns", "sha256"} <= set(entry):
                    cache[(entry["path"], entry["size"], entry["mtime_ns"])] = entry["sha256"]
    return cache


def changes(stored: dict, current: dict) -> list[str]:
    """What differs between two fingerprints, described for the log (empty: the same)."""
    found = []
    for key, description in _DESCRIPTIONS.items():
        old, new = stored.get(key), current.get(key)
        if key == "config":
            old_fields = (old or {}).get("fields", {})
            new_fields = (new or {}).get("fields", {})
            differing = sorted(k for k in set(old_fields) | set(new_fields)
                               if old_fields.get(k) != new_fields.get(k))
            if differing:
                shown = ", ".join(f"{k}: {old_fields.get(k, 'unset')} -> "
                                  f"{new_fields.get(k, 'unset')}" for k in differing[:3])
                more = f" and {len(differing) - 3} more" if len(differing) > 3 else ""
                found.append(f"{description} ({shown}{more})")
        elif key in _VALUES:
            old, new = stored.get(key, _VALUES[key]), current.get(key, _VALUES[key])
            if old != new:
                found.append(f"{description} ({old} -> {new})")
        elif new is None:  # the files are gone: cannot tell, so do not restart for it
            log.warning("the %s cannot be found; not comparing it with the one the checkpoints "
                        "were trained with", description)
        elif [e["sha256"] for e in old or []] != [e["sha256"] for e in new]:
            found.append(description)
    return found


def load(model_dir: str | os.PathLike) -> dict | None:
    """The stored fingerprint; ``None`` when there is none (or it is unreadable: not ours)."""
    path = Path(model_dir) / FILE_NAME
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as error:
        log.warning("%s is unreadable (%s); treating the checkpoints as unknown", path, error)
        return None
    return data if isinstance(data, dict) and data.get("format") == FORMAT else None


def save(model_dir: str | os.PathLike, fingerprint: dict) -> Path:
    path = Path(model_dir) / FILE_NAME
    atomic_write_text(path, json.dumps(fingerprint, indent=1, sort_keys=True) + "\n")
    return path

