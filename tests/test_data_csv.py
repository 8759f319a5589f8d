"""The tutorial's CSV format and Pascal VOC XML, converted from files made here."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from odflow import label_map as label_map_lib
from odflow.data.cli import main as data_main
from odflow.data.csv_source import convert_csv
from odflow.data.records import iter_examples
from odflow.data.voc import convert_voc
from odflow.errors import OdflowError

HEADER = "filename,width,height,class,xmin,ymin,xmax,ymax\n"
ROWS = """\
a.jpg,100,50,face,10,5,30,45
a.jpg,100,50,person,50,0,100,50
b.png,40,40,face,0,0,40,40
c.jpg,60,30,,,,,
"""


def write_image(path: Path, width: int, height: int, seed: int = 0) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG" if path.suffix == ".png" else "JPEG")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(buffer.getvalue())
    return buffer.getvalue()


def make_csv(tmp_path: Path, rows: str = ROWS, header: str = HEADER) -> tuple[Path, Path, Path]:
    images = tmp_path / "images"
    write_image(images / "a.jpg", 100, 50, 0)
    write_image(images / "b.png", 40, 40, 1)
    write_image(images / "c.jpg", 60, 30, 2)
    csv_path = tmp_path / "labels.csv"
    csv_path.write_text(header + rows)
    label_map = tmp_path / "label_map.pbtxt"
    label_map_lib.write(label_map, ["person", "face"])
    return csv_path, images, label_map


def test_csv_round_trip(tmp_path):
    csv_path, images, label_map = make_csv(tmp_path)
    output = tmp_path / "out.record"
    summary = convert_csv(csv_path, images, output, label_map_path=label_map)
    a, b, c = iter_examples(str(output))
    assert (a.filename, a.source_id, a.height, a.width, a.image_format) == (
        "a.jpg", "a.jpg", 50, 100, "jpeg")
    assert a.encoded == (images / "a.jpg").read_bytes()
    np.testing.assert_allclose(a.boxes, [[0.1, 0.1, 0.9, 0.3], [0.0, 0.5, 1.0, 1.0]])
    assert a.classes.tolist() == [2, 1]
    assert a.class_texts == ["face", "person"]
    assert b.image_format == "png" and b.classes.tolist() == [2]
    np.testing.assert_allclose(b.boxes, [[0, 0, 1, 1]])
    assert c.num_boxes == 0  # a row without a box: a negative image
    assert summary.to_dict()["boxes_per_class"] == {"face": 2, "person": 1}
    assert json.loads((tmp_path / "out.record.summary.json").read_text())["images"] == 3


def test_csv_columns_in_another_order(tmp_path):
    header = "class,filename,xmin,ymin,xmax,ymax,width,height\n"
    csv_path, images, label_map = make_csv(tmp_path, "face,a.jpg,10,5,30,45,100,50\n", header)
    convert_csv(csv_path, images, tmp_path / "o.record", label_map_path=label_map)
    (a,) = iter_examples(str(tmp_path / "o.record"))
    np.testing.assert_allclose(a.boxes, [[0.1, 0.1, 0.9, 0.3]])


CSV_BAD = {
    "wrong columns": (HEADER.replace("xmax", "x2"), ROWS,
                      r"labels.csv:1: wrong columns: missing xmax"),
    "unknown class": (HEADER, ROWS.replace("person", "dog"),
                      r"labels.csv:3: class 'dog' is not in the label map .*'person', 'face'"),
    "not a number": (HEADER, ROWS.replace("50,0,100", "50,zero,100"),
                     r"labels.csv:3: column 'ymin' is 'zero', not a number"),
    "missing column in a row": (HEADER, ROWS.replace("b.png,40,40,face,0,0,40,40",
                                                     "b.png,40,40,face,0,0,40"),
                                r"labels.csv:4: 7 columns, the header has 8"),
    "missing image": (HEADER, ROWS.replace("b.png", "nope.png"),
                      r"labels.csv:4: image .*nope.png not found"),
    "size mismatch": (HEADER, ROWS.replace("c.jpg,60,30", "c.jpg,61,30"),
                      r"labels.csv:5: the CSV gives c.jpg the size 61x30 but the image is 60x30"),
    # Inverted corners were dropped silently as zero-sized; the object would vanish unseen.
    "xmin > xmax": (HEADER, ROWS.replace("person,50,0,100,50", "person,100,0,50,50"),
                    r"labels.csv:3: inverted box: xmin 100 > xmax 50"),
    "ymin > ymax": (HEADER, ROWS.replace("face,0,0,40,40", "face,0,40,40,0"),
                    r"labels.csv:4: inverted box: ymin 40 > ymax 0"),
}


@pytest.mark.parametrize("case", sorted(CSV_BAD))
def test_csv_bad_input(tmp_path, case):
    header, rows, message = CSV_BAD[case]
    csv_path, images, label_map = make_csv(tmp_path, rows, header)
    output = tmp_path / "out" / "o.record"
    with pytest.raises(OdflowError, match=message):
        convert_csv(csv_path, images, output, label_map_path=label_map)
    assert not output.parent.exists() or list(output.parent.iterdir()) == []
    if case == "wrong columns":
        return  # nothing to skip: the whole file is unusable
    summary = convert_csv(csv_path, images, output, label_map_path=label_map, skip_bad=True)
    assert summary.num_warnings == 1
    assert summary.images == 2  # the bad image is left out entirely, the others written
    assert len(list(iter_examples(str(output)))) == 2


def test_zero_sized_box_is_still_a_counted_drop_not_an_error(tmp_path):
    rows = ROWS.replace("person,50,0,100,50", "person,50,0,50,50")
    csv_path, images, label_map = make_csv(tmp_path, rows)
    summary = convert_csv(csv_path, images, tmp_path / "o.record", label_map_path=label_map)
    assert summary.to_dict()["dropped_boxes"] == {"zero width or height": 1}


def test_empty_set_fails_naming_the_files_and_the_count(tmp_path):
    csv_path, images, label_map = make_csv(tmp_path, "")
    output = tmp_path / "out" / "train.record"
    with pytest.raises(OdflowError, match=r"out/train.record: 0 images after converting "
                       r".*labels.csv \(0 read\); nothing was written"):
        convert_csv(csv_path, images, output, label_map_path=label_map)
    assert not output.parent.exists() or list(output.parent.iterdir()) == []
    # Every image left out by a filter: the count and the reason are in the message.
    csv_path, images, label_map = make_csv(tmp_path, "c.jpg,60,30,,,,,\n")
    with pytest.raises(OdflowError, match=r"0 images after converting .*labels.csv \(1 read, "
                       r"all left out: 1 no boxes left \(--drop-empty\)\)"):
        convert_csv(csv_path, images, output, label_map_path=label_map, drop_empty=True)
    assert not output.parent.exists() or list(output.parent.iterdir()) == []


def test_empty_set_keeps_an_earlier_output(tmp_path):
    csv_path, images, label_map = make_csv(tmp_path)
    output = tmp_path / "train.record"
    convert_csv(csv_path, images, output, label_map_path=label_map)
    before = output.read_bytes()
    csv_path.write_text(HEADER)
    with pytest.raises(OdflowError, match="0 images"):
        convert_csv(csv_path, images, output, label_map_path=label_map)
    assert output.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith((".", "train"))) == [
        "train.record", "train.record.summary.json"]


def test_csv_cli(tmp_path, capsys):
    csv_path, images, label_map = make_csv(tmp_path)
    output = tmp_path / "cli.record"
    assert data_main(["csv", "--csv", str(csv_path), "--images", str(images), "-o", str(output),
                      "--label-map", str(label_map), "--drop-empty", "--num-shards", "2"]) == 0
    records = list(iter_examples(str(output) + "-?????-of-00002"))
    assert sorted(r.filename for r in records) == ["a.jpg", "b.png"]
    assert data_main(["csv", "--csv", str(tmp_path / "none.csv"), "--images", str(images),
                      "-o", str(output), "--label-map", str(label_map)]) == 2
    assert "none.csv: CSV file not found" in capsys.readouterr().err


VOC_XML = """<annotation>
  <folder>VOC</folder>
  <filename>{name}</filename>
  <size><width>{w}</width><height>{h}</height><depth>3</depth></size>
  <object><name>face</name><pose>Frontal</pose><truncated>0</truncated><difficult>0</difficult>
    <bndbox><xmin>10</xmin><ymin>5</ymin><xmax>30</xmax><ymax>45</ymax></bndbox></object>
  <object><name>person</name><pose>Left</pose><truncated>1</truncated><difficult>1</difficult>
    <bndbox><xmin>50</xmin><ymin>0</ymin><xmax>120</xmax><ymax>50</ymax></bndbox></object>
</annotation>
"""


def make_voc(tmp_path: Path) -> tuple[Path, Path, Path]:
    annotations, images = tmp_path / "Annotations", tmp_path / "JPEGImages"
    annotations.mkdir()
    for index, name in enumerate(("x1", "x2")):
        write_image(images / f"{name}.jpg", 100, 50, index)
        (annotations / f"{name}.xml").write_text(VOC_XML.format(name=f"{name}.jpg", w=100, h=50))
    label_map = tmp_path / "label_map.pbtxt"
    label_map_lib.write(label_map, ["person", "face"])
    return annotations, images, label_map


def test_voc_round_trip_with_difficult_truncated_and_view(tmp_path):
    annotations, images, label_map = make_voc(tmp_path)
    output = tmp_path / "voc.record"
    summary = convert_voc(annotations, images, output, label_map_path=label_map)
    first, second = iter_examples(str(output))
    assert first.filename == "x1.jpg" and second.filename == "x2.jpg"
    assert first.encoded == (images / "x1.jpg").read_bytes()
    np.testing.assert_allclose(first.boxes, [[0.1, 0.1, 0.9, 0.3], [0.0, 0.5, 1.0, 1.0]])
    assert first.classes.tolist() == [2, 1]
    assert first.difficult.tolist() == [0, 1]
    assert first.truncated.tolist() == [0, 1]
    assert first.view == ["Frontal", "Left"]
    assert summary.to_dict()["adjusted_boxes"] == {"clipped to the image": 2}
    convert_voc(annotations, images, output, label_map_path=label_map, drop_difficult=True)
    assert [r.num_boxes for r in iter_examples(str(output))] == [1, 1]


def test_voc_inverted_box_is_an_error_naming_the_object(tmp_path):
    annotations, images, label_map = make_voc(tmp_path)
    xml = annotations / "x2.xml"
    xml.write_text(xml.read_text().replace("<ymin>5</ymin>", "<ymin>46</ymin>"))
    with pytest.raises(OdflowError, match=r"x2.xml: object 1: inverted box: ymin 46 > ymax 45"):
        convert_voc(annotations, images, tmp_path / "o.record", label_map_path=label_map)
    summary = convert_voc(annotations, images, tmp_path / "o.record", label_map_path=label_map,
                          skip_bad=True)
    assert summary.images == 1 and summary.num_warnings == 1


def test_voc_bad_xml_names_the_file_and_line(tmp_path):
    annotations, images, label_map = make_voc(tmp_path)
    (annotations / "x2.xml").write_text("<annotation>\n<filename>x2.jpg</filename>\n<object>\n")
    with pytest.raises(OdflowError, match=r"x2.xml:4: not well-formed XML"):
        convert_voc(annotations, images, tmp_path / "o.record", label_map_path=label_map)
    summary = convert_voc(annotations, images, tmp_path / "o.record", label_map_path=label_map,
                          skip_bad=True)
    assert summary.images == 1 and summary.num_warnings == 1


@pytest.mark.slow
def test_records_cli_bad_input_exits_2_without_a_traceback(tmp_path):
    import subprocess
    import sys

    script = Path(__file__).resolve().parents[1] / "scripts" / "create_records.py"
    csv_path, images, label_map = make_csv(tmp_path, "")
    output = tmp_path / "datasets" / "train.record"
    base = [sys.executable, str(script), "csv", "--images", str(images), "-o", str(output),
            "--label-map", str(label_map)]
    empty = subprocess.run(base + ["--csv", str(csv_path)], check=False, capture_output=True,
                           text=True, timeout=300)
    assert empty.returncode == 2
    assert "train.record: 0 images after converting" in empty.stderr
    inverted = tmp_path / "inverted.csv"
    inverted.write_text(HEADER + "a.jpg,100,50,face,30,5,10,45\n")
    bad_box = subprocess.run(base + ["--csv", str(inverted)], check=False, capture_output=True,
                             text=True, timeout=300)
    assert bad_box.returncode == 2
    assert "inverted.csv:2: inverted box: xmin 30 > xmax 10" in bad_box.stderr
    for result in (empty, bad_box):
        assert "Traceback" not in result.stderr
    assert not output.parent.exists() or list(output.parent.iterdir()) == []
