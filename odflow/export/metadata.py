"""``<model file>.json``: what a client needs to run an exported file without the pipeline.

Beside ``model.tflite``, ``model_int8.tflite`` and ``model.onnx``: the input (name, size, dtype,
mean/std of the normalisation, resize method), the outputs, the label map, and the fingerprint
of the checkpoint the file came from, so a deployed file can be traced to its training run.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from odflow import label_map as label_map_lib
from odflow.errors import OdflowError
from odflow.utils.atomic import atomic_write_text

SUFFIX = ".json"


def metadata_path(model_path: str | os.PathLike) -> Path:
    """``exported_model/model.tflite`` -> ``exported_model/model.tflite.json``."""
    path = Path(model_path)
    return path.with_name(path.name + SUFFIX)


def checkpoint_fingerprint(prefix: str | os.PathLike) -> str:
    """sha256 over a checkpoint's index and data files (in name order), as hex."""
    prefix = Path(prefix)
    files = sorted(prefix.parent.glob(prefix.name + ".*"))
    files = [f for f in files if f.name.endswith(".index") or ".data-" in f.name]
    if not files:
        raise OdflowError(f"no checkpoint files {prefix}.index / {prefix}.data-* to fingerprint")
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.name.encode())
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def label_map_entries(path: str | os.PathLike) -> list[dict[str, Any]]:
    labels = label_map_lib.load(path)
    return [{"id": item.id, "name": item.name, "display_name": labels.display_name(item.id)}
            for item in labels.items]


def build(*, model_format: str, model_file: str | os.PathLike, input_spec: dict[str, Any],
          outputs: list[str], label_map_path: str | os.PathLike,
          checkpoint_prefix: str | os.PathLike, global_step: int | None = None,
          extra: dict[str, Any] | None = None) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "format": model_format,
        "file": Path(model_file).name,
        "size_bytes": Path(model_file).stat().st_size,
        "input": input_spec,
        "outputs": outputs,
        "label_map": label_map_entries(label_map_path),
        "checkpoint": {"sha256": checkpoint_fingerprint(checkpoint_prefix),
                       "global_step": global_step},
    }
    payload.update(extra or {})
    return payload


def write(model_file: str | os.PathLike, payload: dict[str, Any]) -> Path:
    path = metadata_path(model_file)
    atomic_write_text(path, json.dumps(payload, indent=2) + "\n")
    return path


def read(model_file: str | os.PathLike) -> dict[str, Any] | None:
    """The metadata beside ``model_file``, or None when there is none."""
    path = metadata_path(model_file)
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise OdflowError(f"{path}: not a readable metadata JSON ({error}); re-export the "
                          "model") from None
