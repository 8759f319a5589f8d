"""config.yaml values as the schema types them, whatever the command line made of them.

Snakemake parses a nested ``--config train='{num_steps: 3000}'`` with YAML's base loader, so
every nested scalar arrives as a string and schema validation rejects ``'3000'`` for an
integer.  ``coerce_to_schema`` turns such strings into the type the schema asks for before
validation, and names the key when a string cannot be one (``train.num_steps: 'lots' is not
an integer``), so ``--config`` works for nested values as it does for top-level ones.
"""

from __future__ import annotations

import math
import re
from typing import Any

_INTEGER = re.compile(r"[-+]?\d+")
_TRUE = {"true", "yes", "on"}
_FALSE = {"false", "no", "off"}


class ConfigTypeError(ValueError):
    """A string setting that cannot be read as the type the schema gives its key."""


def _coerce_scalar(text: str, kind: str) -> Any:
    """``text`` as a value of JSON-schema type ``kind``; ValueError if it is not one."""
    stripped = text.strip()
    if kind == "integer":
        if _INTEGER.fullmatch(stripped):
            return int(stripped)
        raise ValueError("an integer")
    if kind == "number":
        if _INTEGER.fullmatch(stripped):
            return int(stripped)
        try:
            value = float(stripped)
        except ValueError:
            raise ValueError("a number") from None
        if not math.isfinite(value):
            raise ValueError("a finite number")
        return value
    if kind == "boolean":
        lowered = stripped.lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        raise ValueError("true or false")
    if kind == "null":
        if stripped.lower() in ("", "null", "~", "none"):
            return None
        raise ValueError("null")
    raise ValueError(kind)


def _coerce(value: Any, schema: dict[str, Any], where: str) -> Any:
    kinds = schema.get("type")
    kinds = [kinds] if isinstance(kinds, str) else list(kinds or [])
    if isinstance(value, dict) and "object" in kinds:
        properties = schema.get("properties", {})
        return {key: _coerce(item, properties[key], f"{where}.{key}" if where else key)
                if key in properties else item
                for key, item in value.items()}
    if isinstance(value, list) and "array" in kinds and isinstance(schema.get("items"), dict):
        return [_coerce(item, schema["items"], f"{where}[{index}]")
                for index, item in enumerate(value)]
    if not isinstance(value, str) or not kinds or "string" in kinds:
        return value
    wanted = []
    for kind in kinds:
        if kind in ("object", "array"):
            continue
        try:
            return _coerce_scalar(value, kind)
        except ValueError as error:
            wanted.append(str(error))
    if not wanted:
        return value  # a string where a mapping or list belongs: validation says so
    raise ConfigTypeError(
        f"config {where}: {value!r} is not {' or '.join(wanted)} "
        "(the types are in schemas/config.schema.yaml); fix the value in --config or the "
        "config file")


def coerce_to_schema(config: dict[str, Any], schema: dict[str, Any]) -> None:
    """Replace, in place, every string in ``config`` whose schema type is a number, integer,
    boolean or null by that value (``'3000'`` -> 3000, ``'false'`` -> False).

    In place because Snakemake's rules read the very ``config`` object the Snakefile got.
    Raises ``ConfigTypeError`` naming the dotted key for a string that is not such a value;
    keys the schema does not know are left for validation to reject.
    """
    coerced = _coerce(config, schema, "")
    config.clear()
    config.update(coerced)
