"""Label maps in the TF Object Detection API's own text format (``label_map.pbtxt``).

Users bring label maps written for the API (double or single quotes, ``display_name``,
comments), so we read them with the API's schema rather than a format of our own, and
validate what the API only discovers mid-training: a duplicate id or name, or an id 0 that
would collide with the background class.

    python -m odflow.label_map --names face --output datasets/label_map.pbtxt
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from google.protobuf import text_encoding, text_format
from google.protobuf.message import DecodeError

from odflow.errors import OdflowError
from odflow.protos import string_int_label_map_pb2
from odflow.utils.atomic import atomic_write_text
from odflow.utils.cli import run_cli, setup_logging
from odflow.utils.text_tokens import tokens_with_depth

log = logging.getLogger(__name__)

BACKGROUND = "background"
_PARSE_ERROR_PREFIX = re.compile(r"^\s*\d+(?::\d+)?\s*:\s*")


@dataclass(frozen=True)
class LabelMapItem:
    id: int
    name: str
    display_name: str | None = None


@dataclass(frozen=True)
class LabelMap:
    """Validated label map; ``items`` are sorted by id so every derived view is deterministic."""

    items: tuple[LabelMapItem, ...]
    path: str | None = None

    @cached_property
    def name_to_id(self) -> dict[str, int]:
        return {item.name: item.id for item in self.items}

    @cached_property
    def id_to_name(self) -> dict[int, str]:
        return {item.id: item.name for item in self.items}

    @property
    def max_id(self) -> int:
        return max(item.id for item in self.items)

    @property
    def num_classes(self) -> int:
        """What ``num_classes`` in a pipeline config must be: the largest id (ids may have gaps)."""
        return self.max_id

    def display_name(self, id: int) -> str:
        """The human-readable name of ``id``: ``display_name`` when set, else ``name``."""
        for item in self.items:
            if item.id == id:
                return item.display_name if item.display_name else item.name
        raise KeyError(f"class id {id} is not in the label map {self.path or ''}".rstrip())


# ----------------------------------------------------------------------------- reading


def load(path: str | os.PathLike) -> LabelMap:
    """Read and validate a label map file (text format, or binary as the API also accepts)."""
    source = str(path)
    file = Path(path)
    if not file.exists():
        raise OdflowError(f"{source}: label map not found")
    if file.is_dir():
        raise OdflowError(f"{source}: is a directory, expected a label map file (.pbtxt)")
    try:
        data = file.read_bytes()
    except OSError as error:
        raise OdflowError(f"{source}: cannot read the label map: {error.strerror}") from error
    if _looks_binary(data):
        return _parse_binary(data, source)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise OdflowError(f"{source}: not a label map: not UTF-8 text (byte {error.start}) "
                          "and not a binary StringIntLabelMap") from error
    return parse(text, source)


def parse(text: str, source: str = "<string>") -> LabelMap:
    """Parse label-map text; errors read ``SOURCE:LINE:COL: what``."""
    proto = string_int_label_map_pb2.StringIntLabelMap()
    try:
        text_format.Parse(text, proto)
    except text_format.ParseError as error:
        what = _PARSE_ERROR_PREFIX.sub("", str(error))
        where = f"{source}:{error.GetLine()}:{error.GetColumn()}" if error.GetLine() else source
        raise OdflowError(f"{where}: {what}") from error
    return from_proto(proto, source, _item_lines(text))


def _looks_binary(data: bytes) -> bool:
    """Control bytes never occur in text format but always in a serialized label map."""
    return any(byte < 0x20 and byte not in (0x09, 0x0A, 0x0D) for byte in data)


def _parse_binary(data: bytes, source: str) -> LabelMap:
    proto = string_int_label_map_pb2.StringIntLabelMap()
    try:
        proto.ParseFromString(data)
    except DecodeError as error:
        raise OdflowError(
            f"{source}: not a label map: neither UTF-8 text format nor a binary "
            "StringIntLabelMap") from error
    return from_proto(proto, source, None)


def _item_lines(text: str) -> list[int]:
    """1-based line of each top-level ``item``, to point validation errors at the right place."""
    return [line for token, depth, line in tokens_with_depth(text)
            if depth == 0 and token == "item"]


def from_proto(proto: string_int_label_map_pb2.StringIntLabelMap, source: str | None = None,
               item_lines: Sequence[int] | None = None) -> LabelMap:
    """Validate a parsed ``StringIntLabelMap`` and wrap it."""
    where = source or "label map"
    if item_lines is not None and len(item_lines) != len(proto.item):
        item_lines = None

    def at(index: int) -> str:
        line = f":{item_lines[index]}" if item_lines is not None else ""
        return f"{where}{line}: item {index + 1}"

    if not proto.item:
        raise OdflowError(f"{where}: the label map has no items; add at least one "
                          "`item { id: 1 name: '...' }`")
    items: list[LabelMapItem] = []
    seen_ids: dict[int, int] = {}
    seen_names: dict[str, int] = {}
    for index, entry in enumerate(proto.item):
        if not entry.HasField("id"):
            raise OdflowError(f"{at(index)} ({entry.name!r}) has no id; ids start at 1")
        if not entry.name:
            raise OdflowError(f"{at(index)} (id {entry.id}) has no name")
        if entry.id < 0 or (entry.id == 0 and entry.name != BACKGROUND):
            raise OdflowError(
                f"{at(index)} ({entry.name!r}) has id {entry.id}; ids start at 1 "
                f"(0 is reserved for the implicit background class, name '{BACKGROUND}')")
        if entry.id in seen_ids:
            raise OdflowError(f"{at(index)} ({entry.name!r}) repeats id {entry.id} of item "
                              f"{seen_ids[entry.id] + 1}; ids must be unique")
        if entry.name in seen_names:
            raise OdflowError(f"{at(index)} repeats the name {entry.name!r} of item "
                              f"{seen_names[entry.name] + 1}; names must be unique")
        seen_ids[entry.id] = index
        seen_names[entry.name] = index
        display = entry.display_name if entry.HasField("display_name") else None
        items.append(LabelMapItem(id=entry.id, name=entry.name, display_name=display))
    if all(item.id == 0 for item in items):
        raise OdflowError(f"{where}: the label map has only the background class; "
                          "add at least one item with id >= 1")
    return LabelMap(items=tuple(sorted(items, key=lambda item: item.id)), path=source)


def from_names(names: Iterable[str], display_names: Iterable[str] | None = None) -> LabelMap:
    """Ids 1..N in the order given, as the tutorial's hand-written label map does."""
    names = list(names)
    proto = string_int_label_map_pb2.StringIntLabelMap()
    displays = list(display_names) if display_names is not None else None
    if displays is not None and len(displays) != len(names):
        raise OdflowError(f"{len(names)} class names but {len(displays)} display names; "
                          "give one display name per class name")
    for index, name in enumerate(names):
        if not isinstance(name, str) or not name.strip():
            raise OdflowError(f"class name {index + 1} is empty; give a non-empty name")
        entry = proto.item.add(id=index + 1, name=name)
        if displays is not None:
            entry.display_name = displays[index]
    return from_proto(proto, "class names")


# ----------------------------------------------------------------------------- writing


def _quote(value: str) -> str:
    return "'" + text_encoding.CEscape(value, as_utf8=True) + "'"


def format_label_map(label_map: LabelMap) -> str:
    """The tutorial's layout (``item {`` / ``  id: 1`` / ``  name: 'face'`` / ``}``)."""
    blocks = []
    for item in label_map.items:
        lines = ["item {", f"  id: {item.id}", f"  name: {_quote(item.name)}"]
        if item.display_name is not None:
            lines.append(f"  display_name: {_quote(item.display_name)}")
        lines.append("}")
        blocks.append("\n".join(lines) + "\n")
    return "\n".join(blocks)


def write(path: str | os.PathLike, names_or_labelmap: LabelMap | Iterable[str],
          display_names: Iterable[str] | None = None) -> LabelMap:
    """Write a label map atomically; the same input always gives the same bytes."""
    if isinstance(names_or_labelmap, LabelMap):
        if display_names is not None:
            raise ValueError("display_names only apply when writing from class names")
        label_map = names_or_labelmap
    else:
        label_map = from_names(names_or_labelmap, display_names)
    atomic_write_text(path, format_label_map(label_map))
    return LabelMap(items=label_map.items, path=str(path))


# ----------------------------------------------------------------------------- CLI


def _read_names_file(path: str) -> list[str]:
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as error:
        raise OdflowError(f"{path}: cannot read the class names: {error.strerror}") from error
    except UnicodeDecodeError as error:
        raise OdflowError(f"{path}: the class names are not UTF-8 text (byte {error.start}); "
                          "save the file as UTF-8") from error
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


def _parse_names_json(text: str) -> list[str]:
    """--names-json: a JSON list of strings. One argument holds every name, so a name that
    starts with '-' (which --names would take for an option) or has spaces stays one name."""
    try:
        names = json.loads(text)
    except json.JSONDecodeError as error:
        raise OdflowError(f"--names-json: not JSON ({error.msg} at character {error.pos}); "
                          'give a list of strings, e.g. ["face", "car"]') from None
    if not isinstance(names, list) or not all(isinstance(name, str) for name in names):
        raise OdflowError(f"--names-json: expected a list of strings, got {text!r}; "
                          'e.g. ["face", "car"]')
    return names


def run(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m odflow.label_map",
        description="Write a label_map.pbtxt (ids 1..N in the order given), or check one.")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--names", nargs="+", metavar="NAME", help="class names, in id order")
    source.add_argument("--names-json", metavar="JSON",
                        help="class names as one JSON list, e.g. --names-json='[\"face\"]' "
                             "(what the workflow passes: any name, even one starting "
                             "with '-' or holding quotes, arrives exactly)")
    source.add_argument("--names-file", metavar="FILE",
                        help="a text file with one class name per line (# comments allowed)")
    source.add_argument("--check", metavar="PBTXT",
                        help="validate an existing label map and print its classes")
    parser.add_argument("--display-names", nargs="+", metavar="NAME",
                        help="optional display names, one per class name")
    parser.add_argument("--output", "-o", metavar="PBTXT", help="the label map to write")
    parser.add_argument("--log-file", help="also log to this file")
    args = parser.parse_args(argv)
    setup_logging(args.log_file)
    if args.check:
        label_map = load(args.check)
        for item in label_map.items:
            suffix = f" ({item.display_name})" if item.display_name else ""
            print(f"{item.id}\t{item.name}{suffix}")
        print(f"{args.check}: {len(label_map.items)} items, num_classes {label_map.num_classes}")
        return 0
    if not args.output:
        parser.error("--output is required when writing a label map")
    if args.names:
        names = args.names
    elif args.names_json is not None:
        names = _parse_names_json(args.names_json)
    else:
        names = _read_names_file(args.names_file)
    label_map = write(args.output, names, args.display_names)
    log.info("wrote %s (%d classes)", args.output, label_map.num_classes)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run_cli(run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
