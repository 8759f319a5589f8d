"""Label maps: reading the API's files, writing the tutorial's layout, and each validation error."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from google.protobuf import text_format

from odflow import label_map
from odflow.errors import OdflowError
from odflow.protos import string_int_label_map_pb2

FIXTURES = Path(__file__).parent / "fixtures" / "reference" / "label_maps"


@pytest.mark.parametrize("name,items,max_id,first", [
    ("face_label_map.pbtxt", 1, 1, "face"),
    ("pascal_label_map.pbtxt", 20, 20, "aeroplane"),
    ("mscoco_label_map.pbtxt", 80, 90, "/m/01g317"),
])
def test_reference_label_maps_load(name: str, items: int, max_id: int, first: str) -> None:
    loaded = label_map.load(FIXTURES / name)
    assert len(loaded.items) == items
    assert loaded.max_id == loaded.num_classes == max_id
    assert loaded.id_to_name[1] == first
    assert loaded.name_to_id[first] == 1
    assert loaded.path == str(FIXTURES / name)


def test_display_name_falls_back_to_name() -> None:
    coco = label_map.load(FIXTURES / "mscoco_label_map.pbtxt")
    assert coco.display_name(1) == "person"
    pascal = label_map.load(FIXTURES / "pascal_label_map.pbtxt")
    assert pascal.display_name(2) == "bicycle"
    with pytest.raises(KeyError):
        pascal.display_name(99)


def test_single_double_quotes_comments_and_angle_brackets() -> None:
    text = """# classes
item { id: 2 name: "cat" display_name: 'Cat' }  # trailing comment
item < id: 1 name: 'dog' >
"""
    loaded = label_map.parse(text)
    assert [item.id for item in loaded.items] == [1, 2]  # sorted by id
    assert loaded.display_name(2) == "Cat"
    assert loaded.items[0].display_name is None


def test_written_face_label_map_is_the_tutorials_layout(tmp_path: Path) -> None:
    target = tmp_path / "datasets" / "label_map.pbtxt"
    written = label_map.write(target, ["face"])
    assert target.read_text() == "item {\n  id: 1\n  name: 'face'\n}\n"
    assert written.path == str(target)
    # The API's parser (protobuf text_format) reads it back.
    proto = text_format.Parse(target.read_text(), string_int_label_map_pb2.StringIntLabelMap())
    assert (proto.item[0].id, proto.item[0].name) == (1, "face")


def test_round_trip_with_display_names_and_awkward_characters(tmp_path: Path) -> None:
    names = ["face", "it's", 'say "hi"', "back\\slash", "café", "tab\there"]
    displays = ["Face", "It's", "Hi", "Slash", "Café", "Tab"]
    target = tmp_path / "label_map.pbtxt"
    label_map.write(target, names, displays)
    loaded = label_map.load(target)
    assert [item.name for item in loaded.items] == names
    assert [item.display_name for item in loaded.items] == displays
    assert [item.id for item in loaded.items] == [1, 2, 3, 4, 5, 6]
    # Writing what was read gives the same bytes again.
    again = tmp_path / "again.pbtxt"
    label_map.write(again, loaded)
    assert again.read_bytes() == target.read_bytes()


def test_write_is_deterministic(tmp_path: Path) -> None:
    label_map.write(tmp_path / "a.pbtxt", ["b", "a", "c"])
    label_map.write(tmp_path / "b.pbtxt", ["b", "a", "c"])
    assert (tmp_path / "a.pbtxt").read_bytes() == (tmp_path / "b.pbtxt").read_bytes()
    assert label_map.load(tmp_path / "a.pbtxt").name_to_id == {"b": 1, "a": 2, "c": 3}


def test_format_of_fixture_reparses_equal() -> None:
    coco = label_map.load(FIXTURES / "mscoco_label_map.pbtxt")
    assert label_map.parse(label_map.format_label_map(coco)).items == coco.items


def test_background_id_zero_is_allowed() -> None:
    loaded = label_map.parse("item { id: 0 name: 'background' } item { id: 1 name: 'face' }")
    assert loaded.name_to_id == {"background": 0, "face": 1}
    assert loaded.num_classes == 1


def test_binary_label_map_is_read(tmp_path: Path) -> None:
    proto = string_int_label_map_pb2.StringIntLabelMap()
    proto.item.add(id=1, name="face")
    proto.item.add(id=2, name="hand")
    path = tmp_path / "label_map.pb"
    path.write_bytes(proto.SerializeToString())
    assert label_map.load(path).id_to_name == {1: "face", 2: "hand"}


# ----------------------------------------------------------------------------- errors


@pytest.mark.parametrize("text,expected", [
    ("", "has no items"),
    ("# only a comment\n", "has no items"),
    ("item { id: 0 name: 'face' }", "has id 0; ids start at 1"),
    ("item { id: -3 name: 'face' }", "has id -3"),
    ("item { name: 'face' }", "has no id"),
    ("item { id: 1 }", "has no name"),
    ("item { id: 0 name: 'background' }", "only the background class"),
])
def test_validation_errors(text: str, expected: str) -> None:
    with pytest.raises(OdflowError, match=expected):
        label_map.parse(text, "lm.pbtxt")


def test_duplicate_id_names_file_line_and_both_items() -> None:
    text = "item {\n  id: 1\n  name: 'a'\n}\n\nitem {\n  id: 1\n  name: 'b'\n}\n"
    with pytest.raises(OdflowError) as error:
        label_map.parse(text, "lm.pbtxt")
    assert str(error.value) == "lm.pbtxt:6: item 2 ('b') repeats id 1 of item 1; ids must be unique"


def test_duplicate_name_names_the_line() -> None:
    text = "item { id: 1 name: 'a' }\nitem { id: 2 name: 'a' }\n"
    with pytest.raises(OdflowError, match=r"^lm.pbtxt:2: item 2 repeats the name 'a' of item 1"):
        label_map.parse(text, "lm.pbtxt")


def test_syntax_error_names_file_line_and_column() -> None:
    with pytest.raises(OdflowError, match=r"^lm.pbtxt:2:3: .*no field named \"nme\""):
        label_map.parse("item {\n  nme: 'a'\n  id: 1\n}\n", "lm.pbtxt")
    with pytest.raises(OdflowError, match=r"^lm.pbtxt:1:\d+: "):
        label_map.parse("item { id: 1 name: 'a' ", "lm.pbtxt")


def test_missing_directory_and_garbage_files(tmp_path: Path) -> None:
    with pytest.raises(OdflowError, match="label map not found"):
        label_map.load(tmp_path / "missing.pbtxt")
    with pytest.raises(OdflowError, match="is a directory"):
        label_map.load(tmp_path)
    garbage = tmp_path / "garbage.pbtxt"
    garbage.write_bytes(b"\xff\xfe\xfd\x00\x01")
    with pytest.raises(OdflowError, match="not a label map"):
        label_map.load(garbage)


def test_from_names_errors() -> None:
    with pytest.raises(OdflowError, match="has no items"):
        label_map.from_names([])
    with pytest.raises(OdflowError, match="repeats the name 'a'"):
        label_map.from_names(["a", "b", "a"])
    with pytest.raises(OdflowError, match="class name 2 is empty"):
        label_map.from_names(["a", " "])
    with pytest.raises(OdflowError, match="2 class names but 1 display names"):
        label_map.from_names(["a", "b"], ["A"])


def test_failed_write_leaves_no_file(tmp_path: Path) -> None:
    target = tmp_path / "label_map.pbtxt"
    with pytest.raises(OdflowError):
        label_map.write(target, ["a", "a"])
    assert list(tmp_path.iterdir()) == []


# ----------------------------------------------------------------------------- CLI


def test_cli_writes_and_checks(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "label_map.pbtxt"
    assert label_map.main(["--names", "face", "hand", "--display-names", "Face", "Hand",
                           "--output", str(target)]) == 0
    assert label_map.load(target).id_to_name == {1: "face", 2: "hand"}
    assert label_map.main(["--check", str(target)]) == 0
    assert "num_classes 2" in capsys.readouterr().out


def test_cli_names_json_keeps_every_name_exactly(tmp_path: Path) -> None:
    """One JSON argument: a leading '-', quotes, spaces and non-ASCII stay as given (the
    workflow passes config.yaml's classes this way)."""
    names = ["-x", "it's \"q\"", " visage été ", "a $(b)"]
    target = tmp_path / "lm.pbtxt"
    argument = '--names-json=["-x", "it\'s \\"q\\"", " visage \\u00e9t\\u00e9 ", "a $(b)"]'
    assert label_map.main([argument, "-o", str(target)]) == 0
    assert [item.name for item in label_map.load(target).items] == names
    for bad, message in [("--names-json=face", "--names-json: not JSON"),
                         ('--names-json={"a": 1}', "--names-json: expected a list of strings")]:
        assert _message(lambda bad=bad: label_map.run([bad, "-o", str(target)])) \
            .startswith(message)


def test_cli_names_file(tmp_path: Path) -> None:
    names = tmp_path / "classes.txt"
    names.write_text("# my classes\nface\n\nhand\n")
    target = tmp_path / "label_map.pbtxt"
    assert label_map.main(["--names-file", str(names), "-o", str(target)]) == 0
    assert label_map.load(target).name_to_id == {"face": 1, "hand": 2}


def test_cli_errors_exit_nonzero(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert label_map.main(["--names", "a", "a", "-o", str(tmp_path / "x.pbtxt")]) == 2
    assert "repeats the name 'a'" in capsys.readouterr().err
    assert not (tmp_path / "x.pbtxt").exists()
    assert label_map.main(["--check", str(tmp_path / "missing.pbtxt")]) == 2
    with pytest.raises(SystemExit) as usage:
        label_map.main(["--names", "a"])  # no --output
    assert usage.value.code == 2


def test_tabs_and_crlf_are_text_and_non_ascii_is_written_as_utf8(tmp_path: Path) -> None:
    """Tab and CR are the control bytes text files do contain: such a file is text, not a
    binary map.  Non-ASCII names are written as UTF-8, not as octal escapes."""
    path = tmp_path / "tabs.pbtxt"
    path.write_bytes(b"item {\r\n\tid: 1\r\n\tname: 'face'\r\n}\r\n")
    assert label_map.load(path).name_to_id == {"face": 1}
    target = tmp_path / "utf8.pbtxt"
    label_map.write(target, ["café"])
    assert "name: 'café'" in target.read_text(encoding="utf-8")
    assert label_map.load(target).name_to_id == {"café": 1}


def test_indented_comments_in_a_names_file_are_skipped(tmp_path: Path) -> None:
    names = tmp_path / "classes.txt"
    names.write_text("face\n   # not a class\nhand\n", encoding="utf-8")
    target = tmp_path / "label_map.pbtxt"
    assert label_map.main(["--names-file", str(names), "-o", str(target)]) == 0
    assert label_map.load(target).name_to_id == {"face": 1, "hand": 2}


# ----------------------------------------------------------------------------- exact messages


def _message(call) -> str:
    with pytest.raises((OdflowError, KeyError, ValueError)) as error:
        call()
    return str(error.value.args[0]) if isinstance(error.value, KeyError) else str(error.value)


def test_messages_name_the_source_and_the_fix(tmp_path: Path) -> None:
    loaded = label_map.parse("item { id: 1 name: 'a' }", "lm.pbtxt")
    assert _message(lambda: loaded.display_name(7)) == "class id 7 is not in the label map lm.pbtxt"
    unnamed = label_map.LabelMap(items=loaded.items)
    assert _message(lambda: unnamed.display_name(7)) == "class id 7 is not in the label map"
    assert _message(lambda: label_map.parse("", "lm.pbtxt")) == (
        "lm.pbtxt: the label map has no items; add at least one `item { id: 1 name: '...' }`")
    assert _message(lambda: label_map.parse("item { id: 0 name: 'background' }", "lm.pbtxt")) \
        == ("lm.pbtxt: the label map has only the background class; add at least one item "
            "with id >= 1")
    # Validated without a source (a proto built in code): the message still says what it is.
    assert _message(lambda: label_map.from_proto(
        string_int_label_map_pb2.StringIntLabelMap())).startswith(
        "label map: the label map has no items")
    assert _message(lambda: label_map.from_names(["a", "b"], ["A"])) == (
        "2 class names but 1 display names; give one display name per class name")
    assert _message(lambda: label_map.from_names(["a", "b", "a"])) == (
        "class names: item 3 repeats the name 'a' of item 1; names must be unique")
    assert label_map.from_names(["a"]).path == "class names"
    assert _message(lambda: label_map.write(tmp_path / "x.pbtxt", loaded, ["A"])) == (
        "display_names only apply when writing from class names")


def test_syntax_error_message_is_protobufs_without_its_position_prefix() -> None:
    """protobuf says ``2:3 : Message type ...``; we say ``SOURCE:2:3: Message type ...``."""
    message = _message(lambda: label_map.parse("item {\n  nme: 'a'\n}\n", "lm.pbtxt"))
    assert re.fullmatch(r'lm\.pbtxt:2:3: Message type "[\w.]+" has no field named "nme"\.',
                        message), message
    # Without a source, parse() names the text a string.
    assert _message(lambda: label_map.parse("item {")) == '<string>:1:6: Expected "}".'


def test_list_syntax_items_validate_without_line_numbers() -> None:
    """``item: [{...}, {...}]`` is one ``item`` token for two items: lines cannot be told, so
    the message names the item by its number only."""
    text = "item: [{id: 1 name: 'a'}, {id: 1 name: 'b'}]"
    assert _message(lambda: label_map.parse(text, "lm.pbtxt")) == (
        "lm.pbtxt: item 2 ('b') repeats id 1 of item 1; ids must be unique")
    assert label_map.parse("item: [{id: 2 name: 'b'}, {id: 1 name: 'a'}]").id_to_name == {
        1: "a", 2: "b"}


def test_file_errors_name_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    latin1 = tmp_path / "latin1.pbtxt"
    latin1.write_bytes("item { id: 1 name: 'café' }".encode("latin-1"))
    assert _message(lambda: label_map.load(latin1)) == (
        f"{latin1}: not a label map: not UTF-8 text (byte 23) and not a binary StringIntLabelMap")
    binary = tmp_path / "broken.pb"
    binary.write_bytes(b"\x0a\x05\x12")  # item of 5 bytes, cut after 1
    assert _message(lambda: label_map.load(binary)) == (
        f"{binary}: not a label map: neither UTF-8 text format nor a binary StringIntLabelMap")
    duplicate = string_int_label_map_pb2.StringIntLabelMap()
    duplicate.item.add(id=1, name="a")
    duplicate.item.add(id=1, name="b")
    binary.write_bytes(duplicate.SerializeToString())
    assert _message(lambda: label_map.load(binary)) == (
        f"{binary}: item 2 ('b') repeats id 1 of item 1; ids must be unique")

    def unreadable(self: Path) -> bytes:
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "read_bytes", unreadable)
    assert _message(lambda: label_map.load(latin1)) == (
        f"{latin1}: cannot read the label map: Permission denied")


def test_binary_label_map_keeps_its_path(tmp_path: Path) -> None:
    proto = string_int_label_map_pb2.StringIntLabelMap()
    proto.item.add(id=1, name="face")
    path = tmp_path / "label_map.pb"
    path.write_bytes(proto.SerializeToString())
    assert label_map.load(path).path == str(path)


def test_names_file_is_utf8_whatever_the_locale(tmp_path: Path) -> None:
    """Under the C locale Python's default text encoding is ASCII; a names file is UTF-8."""
    import locale

    names = tmp_path / "classes.txt"
    names.write_text("café\nhand\n", encoding="utf-8")
    target = tmp_path / "label_map.pbtxt"
    previous = locale.setlocale(locale.LC_CTYPE)
    locale.setlocale(locale.LC_CTYPE, "C")
    try:
        assert label_map.run(["--names-file", str(names), "-o", str(target)]) == 0
    finally:
        locale.setlocale(locale.LC_CTYPE, previous)
    assert label_map.load(target).name_to_id == {"café": 1, "hand": 2}
    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes("face\ncafé\n".encode("latin-1"))
    assert _message(lambda: label_map.run(["--names-file", str(latin1), "-o", str(target)])) == (
        f"{latin1}: the class names are not UTF-8 text (byte 8); save the file as UTF-8")
    missing = tmp_path / "missing.txt"
    assert _message(lambda: label_map.run(["--names-file", str(missing), "-o", str(target)])) \
        == f"{missing}: cannot read the class names: No such file or directory"


# ----------------------------------------------------------------------------- CLI contract


def test_cli_help_documents_every_option(capsys: pytest.CaptureFixture[str]) -> None:
    """The usage line shows the one-of source group (required: parentheses) and each
    option's placeholder; each option has its one-line help."""
    with pytest.raises(SystemExit) as done:
        label_map.main(["--help"])
    assert done.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert text.startswith(
        "usage: python -m odflow.label_map [-h] (--names NAME [NAME ...] | --names-json JSON | "
        "--names-file FILE | --check PBTXT) [--display-names NAME [NAME ...]] [--output PBTXT] "
        "[--log-file LOG_FILE] Write a label_map.pbtxt (ids 1..N in the order given), or check "
        "one.")
    for option, help_text in [
        ("--names NAME [NAME ...]", "class names, in id order"),
        ("--names-file FILE", "a text file with one class name per line (# comments allowed)"),
        ("--names-json JSON", "class names as one JSON list"),
        ("--check PBTXT", "validate an existing label map and print its classes"),
        ("--display-names NAME [NAME ...]", "optional display names, one per class name"),
        ("--log-file LOG_FILE", "also log to this file"),
    ]:
        assert f"{option} {help_text}" in text, option
    # How "--output, -o" is laid out differs between Python versions; its usage is above.
    assert "-o PBTXT the label map to write" in text


def test_cli_usage_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for argv, expected in [
        ([], "error: one of the arguments --names --names-json --names-file --check is "
             "required"),
        (["--names", "a"], "error: --output is required when writing a label map"),
    ]:
        with pytest.raises(SystemExit) as usage:
            label_map.main(argv)
        assert usage.value.code == 2
        assert capsys.readouterr().err.rstrip().endswith(expected)


def test_cli_check_prints_each_class(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "label_map.pbtxt"
    target.write_text("item { id: 2 name: 'hand' }\nitem { id: 1 name: 'face' "
                      "display_name: 'Face' }\n")
    assert label_map.main(["--check", str(target)]) == 0
    assert capsys.readouterr().out == (
        f"1\tface (Face)\n2\thand\n{target}: 2 items, num_classes 2\n")


def test_cli_writes_display_names_and_logs_to_the_log_file(tmp_path: Path) -> None:
    import logging

    target = tmp_path / "label_map.pbtxt"
    log_file = tmp_path / "label_map.log"
    try:
        assert label_map.main(["--names", "face", "hand", "--display-names", "Face", "Hand",
                               "-o", str(target), "--log-file", str(log_file)]) == 0
    finally:
        for handler in list(logging.root.handlers):
            if isinstance(handler, logging.FileHandler):
                logging.root.removeHandler(handler)
                handler.close()
    assert [item.display_name for item in label_map.load(target).items] == ["Face", "Hand"]
    assert log_file.read_text().rstrip().endswith(
        f"INFO odflow.label_map: wrote {target} (2 classes)")
