"""WIDER FACE conversion from files in the download's layout (made here, never real data)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from odflow import label_map as label_map_lib
from odflow.data.cli import main as data_main
from odflow.data.records import iter_examples
from odflow.data.wider_face import WiderEntry, WiderProblem, convert_wider, parse_annotations
from odflow.errors import OdflowError
from tests.support.images import write_random_jpeg

# Three images: two faces (one flagged invalid, one 8 px), a face-less image (count 0 + a
# line of zeros), and one with a zero-width box and a box running past the right edge.
ANNOTATIONS = """\
0--Parade/0_Parade_1.jpg
2
10 20 30 40 0 0 0 0 0 0 
50 5 8 8 2 0 0 1 0 0 
1--Handshaking/1_Hand_2.jpg
0
0 0 0 0 0 0 0 0 0 0 
1--Handshaking/1_Hand_3.jpg
2
5 5 0 10 0 0 0 0 0 0 
70 10 20 20 0 0 0 0 1 0 
"""
SIZES = {"0--Parade/0_Parade_1.jpg": (80, 60), "1--Handshaking/1_Hand_2.jpg": (64, 48),
         "1--Handshaking/1_Hand_3.jpg": (80, 50)}


def make_wider(root: Path, annotations: str = ANNOTATIONS, split: str = "train") -> Path:
    split_dir = root / "wider_face_split"
    split_dir.mkdir(parents=True, exist_ok=True)
    gt = split_dir / f"wider_face_{split}_bbx_gt.txt"
    gt.write_text(annotations)
    for index, (name, (w, h)) in enumerate(SIZES.items()):
        path = root / f"WIDER_{split}" / "images" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        write_random_jpeg(path, w, h, index)
    return gt


def face_label_map(tmp_path: Path) -> Path:
    """'face' deliberately not id 1: the id must come from the label map."""
    path = tmp_path / "label_map.pbtxt"
    label_map_lib.write(path, ["person", "car", "face"])
    return path


def convert(tmp_path: Path, output: Path | None = None, **options):
    gt = tmp_path / "WIDER" / "wider_face_split" / "wider_face_train_bbx_gt.txt"
    output = output or tmp_path / "out" / "train.record"
    summary = convert_wider(gt, tmp_path / "WIDER" / "WIDER_train" / "images", output,
                            label_map_path=face_label_map(tmp_path), **options)
    sharded = options.get("num_shards", 1) > 1
    return summary, list(iter_examples(str(output) + ("-*" if sharded else "")))


def test_parser_reads_blocks_including_empty_images(tmp_path):
    gt = make_wider(tmp_path)
    entries = list(parse_annotations(gt))
    assert all(isinstance(e, WiderEntry) for e in entries)
    assert [e.path for e in entries] == list(SIZES)
    assert [e.line for e in entries] == [1, 5, 8]
    assert [len(e.faces) for e in entries] == [2, 0, 2]
    assert entries[0].faces[1].tolist() == [50, 5, 8, 8, 2, 0, 0, 1, 0, 0]


def test_convert_reads_back_every_field(tmp_path):
    make_wider(tmp_path / "WIDER")
    summary, records = convert(tmp_path)
    assert [r.filename for r in records] == list(SIZES)
    assert [r.source_id for r in records] == list(SIZES)
    first, empty, third = records
    image_dir = tmp_path / "WIDER" / "WIDER_train" / "images"
    assert first.encoded == (image_dir / "0--Parade/0_Parade_1.jpg").read_bytes()
    assert (first.height, first.width, first.image_format) == (60, 80, "jpeg")
    # x1 y1 w h -> [ymin, xmin, ymax, xmax] normalised by the image size.
    np.testing.assert_allclose(first.boxes, [[20 / 60, 10 / 80, 60 / 60, 40 / 80],
                                             [5 / 60, 50 / 80, 13 / 60, 58 / 80]], rtol=1e-6)
    assert first.classes.tolist() == [3, 3]
    assert first.class_texts == ["face", "face"]
    assert first.difficult.tolist() == [0, 0]
    # The face-less image stays, as a negative.
    assert empty.num_boxes == 0 and (empty.height, empty.width) == (48, 64)
    # Zero-width box dropped; the box past the right edge clipped to x = 80.
    np.testing.assert_allclose(third.boxes, [[10 / 50, 70 / 80, 30 / 50, 1.0]], rtol=1e-6)
    assert summary.images == 3 and summary.boxes == 3
    data = json.loads((tmp_path / "out" / "train.record.summary.json").read_text())
    assert data["dropped_boxes"] == {"zero width or height": 1}
    assert data["adjusted_boxes"] == {"clipped to the image": 1}
    assert data["images_without_boxes"] == 1
    assert data["options"]["label"] == 3


def test_filters_drop_invalid_small_and_empty(tmp_path):
    make_wider(tmp_path / "WIDER")
    summary, records = convert(tmp_path, drop_invalid=True, min_size=9, drop_empty=True)
    assert [r.filename for r in records] == ["0--Parade/0_Parade_1.jpg",
                                             "1--Handshaking/1_Hand_3.jpg"]
    assert [r.num_boxes for r in records] == [1, 1]
    data = summary.to_dict()
    assert data["dropped_boxes"] == {"flagged invalid (--drop-invalid)": 1,
                                     "zero width or height": 1}
    assert data["dropped_images"] == {"no faces left (--drop-empty)": 1}
    # The 8 px face, and the clipped box (10 px wide after clipping) are under 12 px.
    summary, records = convert(tmp_path, min_size=12)
    assert [r.num_boxes for r in records] == [1, 0, 0]
    assert summary.to_dict()["dropped_boxes"]["smaller than --min-size"] == 2


def test_shards(tmp_path):
    make_wider(tmp_path / "WIDER")
    output = tmp_path / "out" / "train.record"
    convert(tmp_path, output, num_shards=2)
    names = sorted(p.name for p in output.parent.iterdir())
    assert names == ["train.record-00000-of-00002", "train.record-00001-of-00002",
                     "train.record.summary.json"]
    records = list(iter_examples(str(output) + "-?????-of-00002"))
    assert sorted(r.filename for r in records) == sorted(SIZES)


BAD_CASES = {
    "malformed face line": (
        ANNOTATIONS.replace("10 20 30 40 0 0 0 0 0 0 ", "10 20 30 0 0 0"),
        (r"wider_face_train_bbx_gt.txt:3: malformed face line for 0--Parade/0_Parade_1.jpg: "
         r"expected 10 numbers")),
    "face line with text": (
        ANNOTATIONS.replace("10 20 30 40 0 0 0 0 0 0 ", "10 20 thirty 40 0 0 0 0 0 0"),
        (r"wider_face_train_bbx_gt.txt:3: malformed face line for 0--Parade/0_Parade_1.jpg: "
         r"expected 10 numbers .* found text")),
    "count line missing": (
        ANNOTATIONS.replace("1--Handshaking/1_Hand_2.jpg\n0\n0 0 0 0 0 0 0 0 0 0 \n", ""
                            ).replace("0--Parade/0_Parade_1.jpg\n2\n", "0--Parade/0_Parade_1.jpg\n"),
        r"wider_face_train_bbx_gt.txt:2: expected the face count of 0--Parade/0_Parade_1.jpg"),
    "count line not a number": (
        ANNOTATIONS.replace("0--Parade/0_Parade_1.jpg\n2\n", "0--Parade/0_Parade_1.jpg\ntwo\n"),
        r"wider_face_train_bbx_gt.txt:2: expected the face count of 0--Parade/0_Parade_1.jpg"),
    "fewer faces than the count": (
        ANNOTATIONS.replace("0--Parade/0_Parade_1.jpg\n2\n", "0--Parade/0_Parade_1.jpg\n3\n"),
        (r"wider_face_train_bbx_gt.txt:2: the face count of 0--Parade/0_Parade_1.jpg is 3 but 2 "
         r"face lines follow \(line 5 is the next image path\)")),
    "more faces than the count": (
        ANNOTATIONS.replace("0--Parade/0_Parade_1.jpg\n2\n", "0--Parade/0_Parade_1.jpg\n1\n"),
        (r"wider_face_train_bbx_gt.txt:2: the face count of 0--Parade/0_Parade_1.jpg is 1 but "
         r"more face lines follow \(line 4")),
    "missing image": (
        ANNOTATIONS.replace("1--Handshaking/1_Hand_2.jpg", "1--Handshaking/nope.jpg"),
        r"wider_face_train_bbx_gt.txt:5: image .*1--Handshaking/nope.jpg not found"),
    # The faces of such a block were dropped silently; only the real placeholder (a line of
    # zeros) may follow a count of 0.
    "faces after a count of 0": (
        ANNOTATIONS.replace("1--Handshaking/1_Hand_2.jpg\n0\n0 0 0 0 0 0 0 0 0 0 \n",
                            "1--Handshaking/1_Hand_2.jpg\n0\n5 5 10 10 0 0 0 0 0 0 \n"),
        (r"wider_face_train_bbx_gt.txt:6: the face count of 1--Handshaking/1_Hand_2.jpg is 0 "
         r"but line 7 is not the placeholder line of zeros: '5 5 10 10 0 0 0 0 0 0'")),
    "two faces after a count of 0": (
        ANNOTATIONS.replace("1--Handshaking/1_Hand_2.jpg\n0\n0 0 0 0 0 0 0 0 0 0 \n",
                            "1--Handshaking/1_Hand_2.jpg\n0\n5 5 10 10 0 0 0 0 0 0 \n"
                            "9 9 10 10 0 0 0 0 0 0 \n"),
        r"wider_face_train_bbx_gt.txt:6: the face count of 1--Handshaking/1_Hand_2.jpg is 0"),
    "count at end of file": (
        ANNOTATIONS + "2--Demo/x.jpg\n",
        r"wider_face_train_bbx_gt.txt:12: 2--Demo/x.jpg has no face count line"),
}


@pytest.mark.parametrize("case", sorted(BAD_CASES))
def test_bad_input_fails_naming_file_and_line_and_leaves_no_output(tmp_path, case):
    text, message = BAD_CASES[case]
    make_wider(tmp_path / "WIDER", text)
    output = tmp_path / "out" / "train.record"
    with pytest.raises(OdflowError, match=message):
        convert(tmp_path, output)
    assert not output.parent.exists() or list(output.parent.iterdir()) == []


@pytest.mark.parametrize("case", sorted(BAD_CASES))
def test_skip_bad_counts_the_problem_and_goes_on(tmp_path, case):
    text, _ = BAD_CASES[case]
    make_wider(tmp_path / "WIDER", text)
    summary, records = convert(tmp_path, skip_bad=True)
    assert summary.num_warnings == 1
    assert sum(summary.dropped_images.values()) == 1
    assert 1 <= len(records) <= 3
    # The images after the bad block are still there.
    assert "1--Handshaking/1_Hand_3.jpg" in [r.filename for r in records]


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_undecodable_image(tmp_path, damage):
    make_wider(tmp_path / "WIDER")
    path = tmp_path / "WIDER" / "WIDER_train" / "images" / "1--Handshaking" / "1_Hand_3.jpg"
    data = path.read_bytes()
    path.write_bytes(b"not an image at all" if damage == "garbage" else data[: len(data) // 2])
    expected = "not a readable image" if damage == "garbage" else "cannot be decoded"
    with pytest.raises(OdflowError, match=f"bbx_gt.txt:8: image .*1_Hand_3.jpg.*{expected}"):
        convert(tmp_path)
    summary, records = convert(tmp_path, skip_bad=True)
    assert len(records) == 2
    assert summary.to_dict()["dropped_images"] == {"missing or unreadable image": 1}
    assert "1_Hand_3.jpg" in summary.warnings[0]


def test_count_of_zero_with_its_placeholder_or_without_is_an_empty_image(tmp_path):
    gt = tmp_path / "gt.txt"
    gt.write_text("a/a.jpg\n0\n0 0 0 0 0 0 0 0 0 0 \nb/b.jpg\n0\nc/c.jpg\n0\n0 0 0 0\n")
    items = list(parse_annotations(gt))
    assert [(type(i).__name__, i.path, len(i.faces)) for i in items] == [
        ("WiderEntry", "a/a.jpg", 0), ("WiderEntry", "b/b.jpg", 0), ("WiderEntry", "c/c.jpg", 0)]


def test_no_image_left_is_an_error_naming_the_file_and_the_count(tmp_path):
    make_wider(tmp_path / "WIDER", ANNOTATIONS.split("1--Handshaking/1_Hand_3.jpg")[0])
    output = tmp_path / "out" / "train.record"
    with pytest.raises(OdflowError, match=r"out/train.record: 0 images after converting "
                       r".*wider_face_train_bbx_gt.txt \(2 read, all left out: 2 no faces left "
                       r"\(--drop-empty\)\)"):
        convert(tmp_path, output, drop_empty=True, min_size=50)
    assert not output.parent.exists() or list(output.parent.iterdir()) == []


def test_parser_yields_problems_and_resumes(tmp_path):
    gt = tmp_path / "gt.txt"
    gt.write_text("a.jpg\n2\n1 1 5 5 0 0 0 0 0 0\nb.jpg\n1\n1 1 5 5 0 0 0 0 0 0\n")
    items = list(parse_annotations(gt))
    assert isinstance(items[0], WiderProblem) and items[0].line == 2
    assert isinstance(items[1], WiderEntry) and items[1].path == "b.jpg"


def test_cli(tmp_path, capsys):
    make_wider(tmp_path / "WIDER")
    output = tmp_path / "cli" / "train.record"
    label_map = face_label_map(tmp_path)
    code = data_main(["wider", "--root", str(tmp_path / "WIDER"), "--split", "train",
                      "-o", str(output), "--label-map", str(label_map), "--num-shards", "1"])
    assert code == 0
    assert [r.classes.tolist() for r in iter_examples(str(output))] == [[3, 3], [], [3]]
    missing = data_main(["wider", "--root", str(tmp_path / "WIDER"), "--split", "val",
                         "-o", str(tmp_path / "cli" / "val.record")])
    assert missing == 2
    assert "WIDER_val/images: WIDER FACE image directory not found" in capsys.readouterr().err
    unknown = data_main(["wider", "--root", str(tmp_path / "WIDER"), "-o", str(output),
                         "--label-map", str(label_map), "--class-name", "head"])
    assert unknown == 2
    assert "class 'head' is not in the label map" in capsys.readouterr().err


def test_help_exits_zero(capsys):
    with pytest.raises(SystemExit) as exit_info:
        data_main(["wider", "--help"])
    assert exit_info.value.code == 0
    assert "--drop-invalid" in capsys.readouterr().out
