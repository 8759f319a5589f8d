"""Round 3's new inputs given wrong, through the commands users run (``tests/support/fault_probe.py``).

Each case of the probe is a test: a bad COCO JSON, YOLO dataset, class list, TF2 zoo tarball,
TF2 checkpoint, anchor command or TF2 script flag must end in one ``error:`` line naming the
file and the line or field (the words listed with the case, written by hand from the input
each case builds), exit 2, no traceback, nothing written at the output and the user's files
unchanged; the ``--skip-bad`` cases must finish and count what they skipped.  The cases run
in-process (one TensorFlow import for the file).
"""

from __future__ import annotations

import json

import pytest

from tests.support import fault_probe
from tests.support.images import write_random_jpeg

CASES = fault_probe.cases()
#: Cases that build models, write checkpoints or read records through the input pipeline
#: (seconds each on first use).
SLOW = {case.id for case in CASES if case.command == "restore"
        or case.id.startswith("preview") or case.id in ("anchors_ok", "anchors_fit_ok",
                                                         "anchors_json_is_dir")}


@pytest.mark.parametrize(
    "case", [pytest.param(case, id=case.id,
                          marks=[pytest.mark.slow] if case.id in SLOW else [])
             for case in CASES])
def test_fault_case(case: fault_probe.Case, tmp_path):
    outcome = fault_probe.run_case(case, tmp_path / "case")
    assert outcome.passed, f"{case.id}: {outcome.problems}\n{outcome.stderr[-2000:]}"


def _coco_run(tmp_path, content: bytes) -> fault_probe.Outcome:
    case = fault_probe.Case("coco", fault_probe.coco_case(text=content), 0)
    return fault_probe.run_case(case, tmp_path)


def test_non_utf8_coco_json_names_line_and_column(tmp_path):
    # Hand-worked: the bad byte 0xe9 is on line 2 at column 12 ('  "name": "' is 11 bytes).
    content = b'{"images": [], "annotations": [],\n  "name": "\xe9"}'
    outcome = _coco_run(tmp_path, content)
    assert outcome.exit_code == 2
    assert "_annotations.coco.json:2:12: not UTF-8" in outcome.stderr
    assert "0xe9" in outcome.stderr


def test_coco_json_with_bom_gives_the_same_records(tmp_path):
    text = json.dumps(fault_probe._coco()).encode()
    plain = _coco_run(tmp_path / "plain", text)
    bom = _coco_run(tmp_path / "bom", b"\xef\xbb\xbf" + text)
    assert plain.passed and bom.passed
    records = [(tmp_path / name / "out/train.record").read_bytes() for name in ("plain", "bom")]
    assert records[0] == records[1]


def test_yolo_label_with_bom_and_crlf_reads_its_boxes(tmp_path):
    """A label file saved by Notepad (BOM, CRLF) gives the same boxes as a plain one."""
    from odflow.data.yolo_source import parse_label_file

    plain, windows = tmp_path / "plain.txt", tmp_path / "windows.txt"
    plain.write_text("0 0.5 0.5 0.25 0.25\n1 0.1 0.2 0.1 0.2\n")
    windows.write_bytes(b"\xef\xbb\xbf0 0.5 0.5 0.25 0.25\r\n1 0.1 0.2 0.1 0.2\r\n")
    expected = [(1, 0, 0.5, 0.5, 0.25, 0.25), (2, 1, 0.1, 0.2, 0.1, 0.2)]
    assert parse_label_file(plain, 2, ["a", "b"]) == expected
    assert parse_label_file(windows, 2, ["a", "b"]) == expected


def test_yolo_label_not_utf8_names_the_line(tmp_path):
    from odflow.data.yolo_source import parse_label_file
    from odflow.errors import OdflowError

    path = tmp_path / "a.txt"
    path.write_bytes(b"0 0.5 0.5 0.2 0.2\n0 0.5 0.5 0.2 0.2 \xe9\n")
    with pytest.raises(OdflowError, match=r"a\.txt:2: not UTF-8 text \(byte 0xe9\)"):
        parse_label_file(path, 1, ["a"])


def test_duplicate_coco_file_name_is_refused(tmp_path):
    images = [{"id": 1, "file_name": "a.jpg", "width": 64, "height": 48},
              {"id": 2, "file_name": "a.jpg", "width": 64, "height": 48}]
    case = fault_probe.Case("dup", fault_probe.coco_case(fault_probe._coco(images=images)), 2)
    outcome = fault_probe.run_case(case, tmp_path)
    assert "images[1].file_name: 'a.jpg' is also the file of images[0]" in outcome.stderr


def test_copy_checkpoint_writes_nothing_when_a_file_is_missing(tmp_path):
    from odflow.errors import OdflowError
    from odflow.workflow.layout import TF2
    from odflow.workflow.tarball import copy_checkpoint

    model = tmp_path / "model"
    write_random_jpeg(model / "checkpoint/ckpt-0.index", 8, 8)  # any bytes
    with pytest.raises(OdflowError, match="ckpt-0.data-00000-of-00001 does not exist"):
        copy_checkpoint(model, tmp_path / "ckpt", layout=TF2)
    assert not (tmp_path / "ckpt").exists()


@pytest.mark.slow
def test_workflow_plans_refuse_bad_datasets(tmp_path):
    """The same mistakes in config.yaml: ``snakemake -n`` stops with the file and the fix
    (one batch of dry runs, about 8 s)."""
    outcomes = fault_probe.run_workflow_cases(tmp_path)
    failed = {o.case.id: (o.problems, o.stderr[-1500:]) for o in outcomes if not o.passed}
    assert not failed


@pytest.mark.parametrize("case_id", ["yolo_hostile_names", "coco_hostile_names"])
def test_hostile_class_names_reach_the_records_exactly(case_id, tmp_path):
    """Names with shell syntax, quotes, a leading dash and accents are data: the records'
    class/text holds them byte for byte, with the label map's ids (1, 2: the names' order)."""
    import tensorflow as tf

    case = next(c for c in CASES if c.id == case_id)
    outcome = fault_probe.run_case(case, tmp_path)
    assert outcome.passed, outcome.problems
    (record,) = tf.data.TFRecordDataset(str(tmp_path / "out/train.record")).as_numpy_iterator()
    features = tf.train.Example.FromString(record).features.feature
    texts = [t.decode() for t in features["image/object/class/text"].bytes_list.value]
    labels = list(features["image/object/class/label"].int64_list.value)
    assert sorted(zip(labels, texts)) == [(1, fault_probe.HOSTILE[0]), (2, fault_probe.HOSTILE[1])]
    assert not list(tmp_path.rglob("INJECTED"))


def test_large_non_utf8_coco_json_still_says_utf8(tmp_path, monkeypatch):
    """Above the size parsed twice for a line number, ijson's own message is made plain."""
    from odflow.data import coco_source
    from odflow.errors import OdflowError

    monkeypatch.setattr(coco_source, "_LINE_LOOKUP_MAX_BYTES", 0)
    path = tmp_path / "big.json"
    path.write_bytes(b'{"images": [{"id": 1, "file_name": "\xe9.jpg"}]}')
    with pytest.raises(OdflowError, match=r"big\.json: not UTF-8 text .*save or export"):
        list(coco_source.iter_sections(path))
