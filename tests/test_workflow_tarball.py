"""Extracting the members we need from a zoo-layout tarball, and seeding ckpt/."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from odflow.errors import OdflowError
from odflow.workflow.tarball import copy_checkpoint, extract_model

ZOO_MEMBERS = {
    "checkpoint": b'model_checkpoint_path: "model.ckpt"\n',
    "model.ckpt.index": b"index-bytes",
    "model.ckpt.data-00000-of-00001": b"data-bytes" * 1000,
    "model.ckpt.meta": b"meta",
    "pipeline.config": b"model { ssd { num_classes: 90 } }\n",
    "frozen_inference_graph.pb": b"graph",
    "saved_model/saved_model.pb": b"saved",
}


def make_tarball(path: Path, members: dict[str, bytes], top: str = "zoo_model") -> Path:
    with tarfile.open(path, "w:gz") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(f"{top}/{name}" if top else name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path


def test_extracts_only_what_the_pipeline_uses(tmp_path: Path) -> None:
    tarball = make_tarball(tmp_path / "m.tar.gz", ZOO_MEMBERS)
    written = extract_model(tarball, tmp_path / "out")
    assert sorted(p.name for p in written) == sorted(
        ["pipeline.config", "model.ckpt.index", "model.ckpt.data-00000-of-00001"])
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(p.name for p in written)
    for path in written:
        assert path.read_bytes() == ZOO_MEMBERS[path.name]


def test_missing_member_is_named(tmp_path: Path) -> None:
    members = {k: v for k, v in ZOO_MEMBERS.items() if k != "model.ckpt.index"}
    tarball = make_tarball(tmp_path / "m.tar.gz", members)
    with pytest.raises(OdflowError, match="missing model.ckpt.index"):
        extract_model(tarball, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_member_outside_the_folder_is_never_written(tmp_path: Path) -> None:
    members = dict(ZOO_MEMBERS)
    tarball = tmp_path / "evil.tar.gz"
    with tarfile.open(tarball, "w:gz") as archive:
        for name, data in {**{f"zoo/{k}": v for k, v in members.items()},
                           "../escaped.txt": b"x"}.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    extract_model(tarball, tmp_path / "out" / "model")
    assert not (tmp_path / "out" / "escaped.txt").exists()
    assert not (tmp_path / "escaped.txt").exists()


def test_not_a_tarball(tmp_path: Path) -> None:
    bad = tmp_path / "m.tar.gz"
    bad.write_bytes(b"<html>proxy error</html>")
    with pytest.raises(OdflowError, match="not a readable tar archive"):
        extract_model(bad, tmp_path / "out")


def test_copy_checkpoint_leaves_the_state_file_behind(tmp_path: Path) -> None:
    tarball = make_tarball(tmp_path / "m.tar.gz", ZOO_MEMBERS)
    extract_model(tarball, tmp_path / "model", members=list(ZOO_MEMBERS))
    copied = copy_checkpoint(tmp_path / "model", tmp_path / "ckpt")
    assert sorted(p.name for p in (tmp_path / "ckpt").iterdir()) == sorted(
        ["model.ckpt.index", "model.ckpt.data-00000-of-00001"])
    assert all(p.read_bytes() == ZOO_MEMBERS[p.name] for p in copied)
    with pytest.raises(OdflowError, match="extract the model tarball first"):
        copy_checkpoint(tmp_path / "nowhere", tmp_path / "ckpt2")


@pytest.mark.parametrize("keep", [0.5, 0.05])
def test_truncated_tarball_is_a_message_not_a_traceback(tmp_path: Path, keep: float) -> None:
    import os

    members = dict(ZOO_MEMBERS, **{"model.ckpt.data-00000-of-00001": os.urandom(100_000)})
    data = make_tarball(tmp_path / "m.tar.gz", members).read_bytes()
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(OdflowError, match=r"cut.tar.gz: not a (complete|readable) tar archive "
                                          r"\(it is cut short.*delete it and rerun"):
        extract_model(cut, tmp_path / "out")
    out = tmp_path / "out"
    assert not out.exists() or not any(p.name.endswith(".tmp") for p in out.iterdir())


def test_check_archive_complete(tmp_path: Path) -> None:
    from odflow.workflow.tarball import check_archive_complete, is_tar_name

    data = make_tarball(tmp_path / "m.tar.gz", ZOO_MEMBERS).read_bytes()
    check_archive_complete(tmp_path / "m.tar.gz", "m", "fix")
    for cut in (len(data) - 4, len(data) // 2, 10):  # trailer only, mid-stream, header
        (tmp_path / "cut.tar.gz").write_bytes(data[:cut])
        with pytest.raises(OdflowError, match="W is not a complete tar archive .*FIX"):
            check_archive_complete(tmp_path / "cut.tar.gz", "W", "FIX")
    assert is_tar_name("x.TAR.GZ") and is_tar_name("x.tgz") and not is_tar_name("x.pb")


def test_extract_and_copy_remove_their_own_leftovers(tmp_path: Path) -> None:
    tarball = make_tarball(tmp_path / "m.tar.gz", ZOO_MEMBERS)
    (tmp_path / "model").mkdir()
    (tmp_path / "ckpt").mkdir()
    leftovers = [tmp_path / "model" / ".pipeline.config.ab12cd34.tmp",
                 tmp_path / "ckpt" / ".model.ckpt.index.ab12cd34.tmp"]
    kept = tmp_path / "ckpt" / ".checkpoint.ab12cd34.tmp"  # training's, not ours
    for path in [*leftovers, kept]:
        path.write_bytes(b"partial")
    extract_model(tarball, tmp_path / "model")
    copy_checkpoint(tmp_path / "model", tmp_path / "ckpt")
    assert not any(p.exists() for p in leftovers) and kept.exists()


def _hand_made_tarball(path: Path, files: dict[str, bytes],
                       links: dict[str, tuple[bytes, str]] | None = None) -> Path:
    """A tarball with ``files`` (full member names) and ``links``: name -> (tar type, target)."""
    with tarfile.open(path, "w:gz") as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
        for name, (kind, target) in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type = kind
            info.linkname = target
            archive.addfile(info)
    return path


def _zoo_files(without: str = "") -> dict[str, bytes]:
    return {f"zoo/{name}": data for name, data in ZOO_MEMBERS.items() if name != without}


@pytest.mark.parametrize("name", ["../pipeline.config", "/pipeline.config"])
def test_member_outside_the_folder_never_stands_in_for_the_config(tmp_path: Path,
                                                                  name: str) -> None:
    # "../pipeline.config" used to be read as <top>/pipeline.config, its top folder being "..".
    tarball = _hand_made_tarball(tmp_path / "m.tar.gz",
                                 {**_zoo_files(without="pipeline.config"), name: b"evil"})
    with pytest.raises(OdflowError) as error:
        extract_model(tarball, tmp_path / "out")
    message = str(error.value)
    assert "missing pipeline.config" in message
    assert f"{name} is" in message and "refuses" in message
    assert not (tmp_path / "out").exists()


def test_member_outside_the_folder_is_ignored_beside_the_real_config(tmp_path: Path) -> None:
    tarball = _hand_made_tarball(tmp_path / "m.tar.gz",
                                 {**_zoo_files(), "../pipeline.config": b"evil"})
    extract_model(tarball, tmp_path / "out")
    assert (tmp_path / "out/pipeline.config").read_bytes() == ZOO_MEMBERS["pipeline.config"]


@pytest.mark.parametrize(("member", "kind", "said"), [
    ("pipeline.config", tarfile.SYMTYPE, "symbolic link (to /etc/passwd)"),
    ("pipeline.config", tarfile.LNKTYPE, "hard link (to zoo/frozen_inference_graph.pb)"),
    ("model.ckpt.index", tarfile.SYMTYPE, "symbolic link (to /etc/passwd)"),
    ("model.ckpt.data-00000-of-00001", tarfile.LNKTYPE,
     "hard link (to zoo/frozen_inference_graph.pb)"),
])
def test_linked_member_is_named_as_a_link(tmp_path: Path, member: str, kind: bytes,
                                          said: str) -> None:
    target = "/etc/passwd" if kind == tarfile.SYMTYPE else "zoo/frozen_inference_graph.pb"
    tarball = _hand_made_tarball(tmp_path / "m.tar.gz", _zoo_files(without=member),
                                 links={f"zoo/{member}": (kind, target)})
    with pytest.raises(OdflowError) as error:
        extract_model(tarball, tmp_path / "out")
    message = str(error.value)
    assert f"missing {member}: zoo/{member} is a {said}" in message
    assert "odflow refuses links" in message
    assert not (tmp_path / "out").exists()
