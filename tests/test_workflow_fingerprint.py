"""The image-folder digest the records rule gets as a param (odflow.workflow.fingerprint):
it must change for every edit Snakemake's directory mtime misses, and only then."""

from __future__ import annotations

import os
from pathlib import Path

from odflow.workflow.fingerprint import folder_digest


def _tree(root: Path) -> Path:
    for name in ("a/1.jpg", "a/2.jpg", "b/c/3.jpg"):
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"jpeg" + name.encode())
        os.utime(path, ns=(1_000_000_000, 1_000_000_000))
    return root


def test_same_tree_same_digest_and_count(tmp_path: Path) -> None:
    root = _tree(tmp_path / "images")
    digest = folder_digest([str(root)])
    assert digest == folder_digest([str(root)])
    assert digest.startswith("3 files, sha256 ")


def test_an_image_edited_in_place_changes_it(tmp_path: Path) -> None:
    root = _tree(tmp_path / "images")
    before = folder_digest([str(root)])
    folder_mtime = (root / "b" / "c").stat().st_mtime_ns
    (root / "b/c/3.jpg").write_bytes(b"other")  # what Snakemake's folder mtime does not see
    assert (root / "b" / "c").stat().st_mtime_ns == folder_mtime
    assert folder_digest([str(root)]) != before


def test_a_touched_image_changes_it(tmp_path: Path) -> None:
    root = _tree(tmp_path / "images")
    before = folder_digest([str(root)])
    os.utime(root / "a/1.jpg", ns=(2_000_000_000, 2_000_000_000))
    assert folder_digest([str(root)]) != before


def test_added_renamed_removed_files_change_it(tmp_path: Path) -> None:
    root = _tree(tmp_path / "images")
    digests = {folder_digest([str(root)])}
    (root / "a/1.jpg").rename(root / "a/0.jpg")
    digests.add(folder_digest([str(root)]))
    (root / "a/0.jpg").unlink()
    digests.add(folder_digest([str(root)]))
    assert len(digests) == 3


def test_a_missing_folder_and_no_folders(tmp_path: Path) -> None:
    assert folder_digest([]) == ""
    assert folder_digest([str(tmp_path / "nope")]) != folder_digest([str(tmp_path)])


def test_a_symlink_cycle_is_walked_once(tmp_path: Path) -> None:
    root = _tree(tmp_path / "images")
    (root / "a" / "loop").symlink_to(root, target_is_directory=True)
    assert folder_digest([str(root)]).startswith("3 files")  # ends; the root is not re-walked
