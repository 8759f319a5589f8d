"""Generic ``dotted.path=value`` edits of a pipeline config, checked against the schema.

The seven named edits of the tutorial do not cover everything users change (learning rate,
batch size, augmentations), and hand-editing a copy defeats a declarative workflow.  So any
field can be set from the command line or ``config.yaml``, with the same typo protection as
parsing: a wrong name lists the nearest valid ones, a wrong value names the expected type.

Grammar (``PATH=VALUE``, ``PATH`` is field names joined by dots, starting at the top level):

- ``model.ssd.num_classes=1``: a scalar; ints, floats, ``true``/``false``, strings (quotes
  optional), enums by name (``model.ssd.post_processing.score_converter=SIGMOID``).
- ``train_config.data_augmentation_options[1].ssd_random_crop={}``: an element of a repeated
  field by index (negative counts from the end), ``[+]`` appends a new element.
- Setting a field inside one branch of a ``oneof`` selects that branch and clears its
  siblings: ``train_config.optimizer.adam_optimizer.learning_rate.constant_learning_rate.
  learning_rate=0.001`` replaces an ``rms_prop_optimizer``.
- A message: ``PATH={}`` (present and empty) or ``PATH={ text format }`` (replaces it).
- A repeated scalar: ``PATH=[a, b]`` replaces the whole list (``[]`` empties it); a bare
  value replaces it with one element.  ``PATH=[]`` also empties a repeated message field.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable

from google.protobuf import descriptor, text_format
from google.protobuf.message import Message

from odflow.config.loader import TrainEvalPipelineConfig, format_parse_error, suggest
from odflow.errors import OdflowError

FD = descriptor.FieldDescriptor
_SEGMENT = re.compile(r"^(?P<name>[A-Za-z_]\w*)(?:\[(?P<index>[^\]]*)\])?$")
_INT_TYPES = {FD.CPPTYPE_INT32: (-(2**31), 2**31 - 1), FD.CPPTYPE_INT64: (-(2**63), 2**63 - 1),
              FD.CPPTYPE_UINT32: (0, 2**32 - 1), FD.CPPTYPE_UINT64: (0, 2**64 - 1)}
_TYPE_NAMES = {FD.CPPTYPE_INT32: "int32", FD.CPPTYPE_INT64: "int64", FD.CPPTYPE_UINT32: "uint32",
               FD.CPPTYPE_UINT64: "uint64", FD.CPPTYPE_FLOAT: "float",
               FD.CPPTYPE_DOUBLE: "double", FD.CPPTYPE_BOOL: "bool",
               FD.CPPTYPE_STRING: "string", FD.CPPTYPE_ENUM: "enum",
               FD.CPPTYPE_MESSAGE: "message"}
_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


def apply_overrides(config: TrainEvalPipelineConfig,
                    overrides: Iterable[str]) -> TrainEvalPipelineConfig:
    """A copy of ``config`` with each ``PATH=VALUE`` applied in order (``config`` is untouched)."""
    result = type(config)()
    result.CopyFrom(config)
    for override in overrides:
        apply_override(result, override)
    return result


def apply_override(message: Message, override: str) -> None:
    """Apply one ``PATH=VALUE`` to ``message`` in place."""
    path, sep, value = override.partition("=")
    path = path.strip()
    if not sep or not path:
        raise OdflowError(f"override {override!r}: expected PATH=VALUE, "
                          "e.g. model.ssd.num_classes=1")
    segments = path.split(".")
    parent = message
    for position, segment in enumerate(segments[:-1]):
        parent = _descend(parent, segment, ".".join(segments[:position + 1]))
    _assign(parent, segments[-1], value.strip(), path)


def _parse_segment(segment: str, path: str) -> tuple[str, str | None]:
    match = _SEGMENT.match(segment.strip())
    if not match:
        raise OdflowError(f"override {path}: `{segment}` is not a field name "
                          "(expected name, name[INDEX] or name[+])")
    return match["name"], match["index"]


def _field(message: Message, name: str, path: str) -> descriptor.FieldDescriptor:
    fields = message.DESCRIPTOR.fields_by_name
    if name not in fields:
        short = message.DESCRIPTOR.name
        raise OdflowError(f"override {path}: {short} has no field `{name}`; "
                          + suggest(name, list(fields)))
    return fields[name]


def _index(index: str, length: int, path: str) -> int:
    try:
        number = int(index)
    except ValueError:
        raise OdflowError(f"override {path}: index [{index}] is not an integer "
                          "(use [0], [1], ..., [-1] or [+] to append)") from None
    if not -length <= number < length:
        raise OdflowError(f"override {path}: index {number} is out of range; the field has "
                          f"{length} element(s) (use [+] to append)")
    return number


def _descend(message: Message, segment: str, path: str) -> Message:
    name, index = _parse_segment(segment, path)
    field = _field(message, name, path)
    if field.cpp_type != FD.CPPTYPE_MESSAGE:
        raise OdflowError(f"override {path}: `{name}` is of type {_type_name(field)}, "
                          "not a message; nothing can follow it in the path")
    if _is_repeated(field):
        container = getattr(message, name)
        if index is None:
            raise OdflowError(f"override {path}: `{name}` is repeated; say which element, "
                              f"e.g. {name}[0], or {name}[+] to append one")
        if index == "+":
            return container.add()
        return container[_index(index, len(container), path)]
    if index is not None:
        raise OdflowError(f"override {path}: `{name}` is not repeated; drop the [{index}]")
    child = getattr(message, name)
    # Mark it present now: `a.b={}` style edits rely on the chain existing, and selecting a
    # oneof branch must clear its siblings even before a leaf value is set.
    child.SetInParent()
    return child


def _assign(message: Message, segment: str, value: str, path: str) -> None:
    name, index = _parse_segment(segment, path)
    field = _field(message, name, path)
    if _is_repeated(field):
        container = getattr(message, name)
        if index is None:
            if field.cpp_type == FD.CPPTYPE_MESSAGE:
                if value.strip() == "[]":
                    del container[:]
                    return
                raise OdflowError(f"override {path}: `{name}` is a repeated message; set "
                                  f"one element with {name}[INDEX]=... or {name}[+]=..., "
                                  f"or empty it with {name}=[]")
            items = _split_list(value, path)
            converted = [_convert(field, item, path) for item in items]
            del container[:]
            container.extend(converted)
            return
        if field.cpp_type == FD.CPPTYPE_MESSAGE:
            element = container.add() if index == "+" else container[
                _index(index, len(container), path)]
            _merge_message_value(element, value, path)
            return
        converted = _convert(field, _unquote(value), path)
        if index == "+":
            container.append(converted)
        else:
            container[_index(index, len(container), path)] = converted
        return
    if index is not None:
        raise OdflowError(f"override {path}: `{name}` is not repeated; drop the [{index}]")
    if field.cpp_type == FD.CPPTYPE_MESSAGE:
        child = getattr(message, name)
        child.SetInParent()
        _merge_message_value(child, value, path)
        return
    setattr(message, name, _convert(field, _unquote(value), path))


def _merge_message_value(target: Message, value: str, path: str) -> None:
    body = value.strip()
    if not (body.startswith("{") and body.endswith("}")):
        raise OdflowError(f"override {path}: is a message ({target.DESCRIPTOR.name}); give "
                          f"{{}} or a text-format body such as {{ field: value }}, or set one "
                          f"of its fields: {path}.FIELD=VALUE")
    target.Clear()
    _merge_text(target, body[1:-1], path)
    target.SetInParent()


def _merge_text(target: Message, text: str, path: str) -> None:
    try:
        text_format.Merge(text, target)
    except text_format.ParseError as error:
        raise OdflowError(format_parse_error(error, f"override {path} (value)")) from error


def _is_repeated(field: descriptor.FieldDescriptor) -> bool:
    return field.is_repeated


def _type_name(field: descriptor.FieldDescriptor) -> str:
    if field.cpp_type == FD.CPPTYPE_ENUM:
        return f"enum {field.enum_type.name}"
    if field.cpp_type == FD.CPPTYPE_MESSAGE:
        return f"message {field.message_type.name}"
    return _TYPE_NAMES[field.cpp_type]


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    return value


def _split_list(value: str, path: str) -> list[str]:
    """``[a, 'b,c', 3]`` -> ``['a', 'b,c', '3']``; a bare value is a one-element list."""
    body = value.strip()
    if not (body.startswith("[") and body.endswith("]")):
        return [_unquote(body)]
    inner = body[1:-1].strip()
    if not inner:
        return []
    items, current, quote = [], [], None
    for char in inner:
        if quote:
            if char == quote:
                quote = None
            current.append(char)
        elif char in "'\"":
            quote = char
            current.append(char)
        elif char == ",":
            items.append("".join(current).strip())
            current = []
        else:
            current.append(char)
    if quote:
        raise OdflowError(f"override {path}: unterminated quote in {value}")
    items.append("".join(current).strip())
    return [_unquote(item) for item in items]


def _convert(field: descriptor.FieldDescriptor, text: str, path: str):
    """``text`` as the Python value of ``field``'s type, or an error naming what was expected."""
    kind = field.cpp_type

    def wrong(expected: str) -> OdflowError:
        return OdflowError(f"override {path}: field `{field.name}` expects {expected}, "
                           f"got {text!r}")

    if kind in _INT_TYPES:
        try:
            number = int(text, 0) if text.lower().startswith(("0x", "-0x")) else int(text)
        except ValueError:
            raise wrong(f"an integer ({_TYPE_NAMES[kind]})") from None
        low, high = _INT_TYPES[kind]
        if not low <= number <= high:
            raise wrong(f"an integer in [{low}, {high}] ({_TYPE_NAMES[kind]})")
        return number
    if kind in (FD.CPPTYPE_FLOAT, FD.CPPTYPE_DOUBLE):
        try:
            number = float(text)
        except ValueError:
            raise wrong(f"a number ({_TYPE_NAMES[kind]})") from None
        if math.isnan(number):
            raise wrong("a number, not nan")
        return number
    if kind == FD.CPPTYPE_BOOL:
        lowered = text.lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        raise wrong("a bool (true or false)")
    if kind == FD.CPPTYPE_ENUM:
        names = [value.name for value in field.enum_type.values]
        if text in names:
            return field.enum_type.values_by_name[text].number
        raise OdflowError(f"override {path}: field `{field.name}` expects a value of enum "
                          f"{field.enum_type.name}, got {text!r}; " + suggest(text, names))
    if kind == FD.CPPTYPE_STRING:
        if field.type == FD.TYPE_BYTES:
            return text.encode("utf-8")
        return text
    raise wrong(_type_name(field))  # pragma: no cover - messages are handled by the caller
