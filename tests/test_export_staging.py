"""The export directory appears complete or not at all, and never eats a foreign directory."""

from __future__ import annotations

import os
import stat

import pytest

from odflow.errors import OdflowError
from odflow.export.exporter import EXPORT_ENTRIES
from odflow.export.staging import staged_directory


def _siblings(path):
    return sorted(entry.name for entry in path.parent.iterdir())


def test_new_directory_appears_only_when_complete(tmp_path):
    target = tmp_path / "exported_model"
    with staged_directory(target, EXPORT_ENTRIES) as staging:
        (staging / "pipeline.config").write_text("x")
        assert not target.exists()
        assert staging.parent == tmp_path
    assert (target / "pipeline.config").read_text() == "x"
    assert _siblings(target) == ["exported_model"]
    mode = stat.S_IMODE(os.stat(target).st_mode)
    umask = os.umask(0)
    os.umask(umask)
    assert mode == 0o777 & ~umask


def test_failure_leaves_no_directory(tmp_path):
    target = tmp_path / "exported_model"
    with pytest.raises(RuntimeError, match="boom"), \
            staged_directory(target, EXPORT_ENTRIES) as staging:
        (staging / "frozen_inference_graph.pb").write_bytes(b"half")
        raise RuntimeError("boom")
    assert _siblings(target) == []


def test_failure_keeps_the_previous_export(tmp_path):
    target = tmp_path / "exported_model"
    target.mkdir()
    (target / "frozen_inference_graph.pb").write_bytes(b"old")
    with pytest.raises(KeyboardInterrupt), staged_directory(target, EXPORT_ENTRIES) as staging:
        (staging / "frozen_inference_graph.pb").write_bytes(b"new")
        raise KeyboardInterrupt
    assert (target / "frozen_inference_graph.pb").read_bytes() == b"old"
    assert _siblings(target) == ["exported_model"]


def test_success_replaces_the_previous_export_entirely(tmp_path):
    target = tmp_path / "exported_model"
    (target / "saved_model" / "variables").mkdir(parents=True)
    (target / "model.ckpt.index").write_bytes(b"old")
    (target / "label_map.pbtxt").write_text("old")
    with staged_directory(target, EXPORT_ENTRIES) as staging:
        (staging / "model.ckpt.index").write_bytes(b"new")
    assert sorted(os.listdir(target)) == ["model.ckpt.index"]
    assert (target / "model.ckpt.index").read_bytes() == b"new"
    assert _siblings(target) == ["exported_model"]


def test_refuses_to_replace_a_directory_with_other_files(tmp_path):
    target = tmp_path / "ckpt"
    target.mkdir()
    (target / "model.ckpt-41471.index").write_bytes(b"precious")
    with pytest.raises(OdflowError, match=r"model\.ckpt-41471\.index.*new or empty"), \
            staged_directory(target, EXPORT_ENTRIES):
        pytest.fail("must not start")
    assert (target / "model.ckpt-41471.index").read_bytes() == b"precious"
    assert _siblings(target) == ["ckpt"]


def test_refuses_a_file_as_target(tmp_path):
    target = tmp_path / "exported_model"
    target.write_text("not a directory")
    with pytest.raises(OdflowError, match="not a directory"), \
            staged_directory(target, EXPORT_ENTRIES):
        pytest.fail("must not start")
