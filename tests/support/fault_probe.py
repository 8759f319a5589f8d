"""Fault probe of round 3's new inputs: COCO JSON, YOLO, class names, TF2 tarballs, anchors, TF2 flags.

Each case builds a small bad input in a fresh folder and runs the command a user runs
(``odflow ...`` in-process, the one line ``run_cli`` prints for a user error), then checks:
the exit code, words the message must hold (the file, the line or field, the fix), no
traceback, nothing written at the output, the user's input files unchanged.

    python tests/support/fault_probe.py            # table of every case
    python tests/support/fault_probe.py -k coco    # the cases whose id holds "coco"

``tests/test_faults_round3.py`` runs the same cases under pytest.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import sys
import tarfile
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.support.images import random_jpeg, write_random_jpeg


@dataclass
class Case:
    """One probe: ``make(folder)`` writes the input and returns the argv of ``odflow``."""

    id: str
    make: Callable[[Path], list[str]]
    exit_code: int
    words: tuple[str, ...] = ()
    # for skip_bad cases: words the log must hold (counts)
    log_words: tuple[str, ...] = ()
    output: str = "out/train.record"   # must not exist after a failure
    command: str = "odflow"


@dataclass
class Outcome:
    case: Case
    exit_code: int | None
    stderr: str
    problems: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.problems


# -- inputs --------------------------------------------------------------------------------------

LABEL_MAP = "item {\n  id: 1\n  name: 'face'\n}\nitem {\n  id: 2\n  name: 'car'\n}\n"


def _label_map(folder: Path, names: list[str] | None = None) -> Path:
    """``face`` and ``car`` (ids 1, 2), or ``names`` written by odflow's label-map writer."""
    path = folder / "label_map.pbtxt"
    if names is None:
        path.write_text(LABEL_MAP)
    else:
        from odflow import label_map

        label_map.write(path, names)
    return path


def _coco(images=None, annotations=None, categories=None) -> dict:
    return {
        "images": images if images is not None else [
            {"id": 1, "file_name": "a.jpg", "width": 64, "height": 48}],
        "annotations": annotations if annotations is not None else [
            {"id": 1, "image_id": 1, "category_id": 1, "bbox": [4, 4, 20, 20], "iscrowd": 0}],
        "categories": categories if categories is not None else [{"id": 1, "name": "face"}],
    }


def coco_case(data=None, *, text: str | bytes | None = None, images=("a.jpg",),
              extra: tuple[str, ...] = (), json_name: str = "_annotations.coco.json",
              label_map: list[str] | None = None):
    """A Roboflow-layout COCO folder: the JSON with 64x48 JPEGs beside it."""
    def make(folder: Path) -> list[str]:
        data_dir = folder / "train"
        data_dir.mkdir(parents=True, exist_ok=True)
        for i, name in enumerate(images):
            write_random_jpeg(data_dir / name, 64, 48, seed=i)
        json_path = data_dir / json_name
        content = text if text is not None else json.dumps(data if data is not None else _coco())
        if isinstance(content, str):
            json_path.write_text(content, encoding="utf-8")
        else:
            json_path.write_bytes(content)
        return ["data", "coco", "--json", str(json_path), "-o", str(folder / "out/train.record"),
                "--label-map", str(_label_map(folder, label_map)), *extra]
    return make


def yolo_case(labels: dict[str, str | bytes] | None = None, *, yaml_text: str | None = None,
              images=("a.jpg",), extra: tuple[str, ...] = (), folder_name: str = "ds",
              label_map: list[str] | None = None):
    """An Ultralytics layout: data.yaml, train/images/*.jpg, train/labels/*.txt."""
    def make(folder: Path) -> list[str]:
        root = folder / folder_name
        for i, name in enumerate(images):
            write_random_jpeg(root / "train/images" / name, 64, 48, seed=i)
        (root / "train/images").mkdir(parents=True, exist_ok=True)
        (root / "val/images").mkdir(parents=True, exist_ok=True)
        (root / "train/labels").mkdir(parents=True, exist_ok=True)
        for name, content in (labels if labels is not None
                              else {"a.txt": "0 0.5 0.5 0.25 0.25\n"}).items():
            path = root / "train/labels" / name
            if isinstance(content, bytes):
                path.write_bytes(content)
            else:
                path.write_text(content, encoding="utf-8", newline="")
        yaml_path = root / "data.yaml"
        yaml_path.write_text(yaml_text if yaml_text is not None else
                             "train: train/images\nval: val/images\nnames: [face, car]\n",
                             encoding="utf-8")
        return ["data", "yolo", "--data", str(yaml_path), "-o",
                str(folder / "out/train.record"), "--label-map",
                str(_label_map(folder, label_map)), *extra]
    return make


def _tarball(folder: Path, members: dict[str, bytes | tuple[str, str]], name="m.tar.gz") -> Path:
    """A tarball of ``members``: bytes are files, ``("sym"|"hard", target)`` links."""
    path = folder / name
    with tarfile.open(path, "w:gz") as archive:
        for member, content in members.items():
            info = tarfile.TarInfo(member)
            if isinstance(content, tuple):
                info.type = tarfile.SYMTYPE if content[0] == "sym" else tarfile.LNKTYPE
                info.linkname = content[1]
                archive.addfile(info)
            else:
                info.size = len(content)
                archive.addfile(info, io.BytesIO(content))
    return path


TF2_MEMBERS = {"m/pipeline.config": b"model {}\n", "m/checkpoint/checkpoint": b"x",
               "m/checkpoint/ckpt-0.index": b"x", "m/checkpoint/ckpt-0.data-00000-of-00001": b"x"}
TF1_MEMBERS = {"m/pipeline.config": b"model {}\n", "m/model.ckpt.index": b"x",
               "m/model.ckpt.data-00000-of-00001": b"x", "m/model.ckpt.meta": b"x"}


def tar_case(members: dict, layout: str = "tf2"):
    def make(folder: Path) -> list[str]:
        tar = _tarball(folder, members)
        return ["zoo", "extract", "--tarball", str(tar), "--output-dir", str(folder / "out/m"),
                "--layout", layout]
    return make


def _without(members: dict, *names: str) -> dict:
    return {k: v for k, v in members.items() if k not in names}


def copy_ckpt_case(files: dict[str, bytes]):
    def make(folder: Path) -> list[str]:
        model = folder / "model"
        for name, content in files.items():
            (model / name).parent.mkdir(parents=True, exist_ok=True)
            (model / name).write_bytes(content)
        return ["zoo", "copy-checkpoint", "--model-dir", str(model), "--ckpt-dir",
                str(folder / "out/ckpt"), "--layout", "tf2"]
    return make


def argv_case(*argv: str):
    def make(folder: Path) -> list[str]:
        return [a.replace("{tmp}", str(folder)) for a in argv]
    return make


def anchors_case(config_text: str | None, records: tuple[str, ...] | None = None,
                 command: str = "coverage"):
    def make(folder: Path) -> list[str]:
        config = folder / "pipeline.config"
        if config_text is not None:
            config.write_text(config_text)
        argv = ["anchors", command, "--pipeline_config", str(config)]
        if records is not None:
            paths = []
            for name in records:
                if name.endswith("!empty"):
                    name = name[:-6]
                    (folder / name).write_bytes(b"")
                elif name.endswith("!junk"):
                    name = name[:-5]
                    (folder / name).write_bytes(b"not a record at all" * 10)
                paths.append(str(folder / name))
            argv += ["--records", *paths]
        return argv
    return make


# -- the cases -----------------------------------------------------------------------------------

def _ann(**changes) -> dict:
    ann = {"id": 1, "image_id": 1, "category_id": 1, "bbox": [4, 4, 20, 20], "iscrowd": 0}
    ann.update(changes)
    return ann


def cases() -> list[Case]:
    two_images = [{"id": 1, "file_name": "a.jpg", "width": 64, "height": 48},
                  {"id": 2, "file_name": "b.jpg", "width": 64, "height": 48}]
    c = Case
    coco = [
        c("coco_ok", coco_case(), 0),
        c("coco_malformed_json", coco_case(text='{"images": [\n  {"id": 1,,}]}'), 2,
          ("_annotations.coco.json:2:", "not valid JSON")),
        c("coco_truncated_json", coco_case(text=json.dumps(_coco())[:-20]), 2,
          ("_annotations.coco.json", "not valid JSON")),
        c("coco_empty_file", coco_case(text=""), 2, ("_annotations.coco.json", "JSON")),
        c("coco_top_level_list", coco_case(text="[1, 2]"), 2, ("_annotations.coco.json", "object")),
        c("coco_missing_images", coco_case(text=json.dumps(
            {"annotations": [], "categories": [{"id": 1, "name": "face"}]})), 2,
          ("'images'",)),
        c("coco_missing_annotations", coco_case(text=json.dumps(
            {"images": [], "categories": []})), 2, ("'annotations'",)),
        c("coco_missing_categories", coco_case(text=json.dumps(
            {"images": [], "annotations": []})), 2, ("'categories'",)),
        c("coco_images_not_list", coco_case(text=json.dumps(
            {"images": {}, "annotations": [], "categories": []})), 2, ("'images'", "list")),
        c("coco_unknown_image_id", coco_case(_coco(annotations=[_ann(image_id=7)])), 2,
          ("annotations[0].image_id", "7")),
        c("coco_unknown_image_id_skip", coco_case(_coco(annotations=[_ann(image_id=7)]),
                                                  extra=("--skip-bad",)), 0,
          log_words=("'malformed annotation': 1", "1 warnings")),
        c("coco_negative_width", coco_case(_coco(annotations=[_ann(bbox=[4, 4, -3, 5])])), 2,
          ("annotations[0].bbox", "negative")),
        c("coco_zero_width", coco_case(_coco(annotations=[_ann(bbox=[4, 4, 0, 5])])), 0,
          log_words=("zero width",)),
        c("coco_bbox_outside", coco_case(_coco(annotations=[_ann(bbox=[100, 4, 5, 5])])), 2,
          ("annotations[0].bbox", "outside")),
        c("coco_bbox_outside_skip", coco_case(
            _coco(images=two_images, annotations=[_ann(bbox=[100, 4, 5, 5]),
                                                  _ann(id=2, image_id=2)]),
            images=("a.jpg", "b.jpg"), extra=("--skip-bad",)), 0,
          log_words=("1 images, 1 boxes", "'bad image or box': 1", "1 warnings")),
        c("coco_bbox_string", coco_case(_coco(annotations=[_ann(bbox=[4, "4", 5, 5])])), 2,
          ("annotations[0].bbox[1]", "number")),
        c("coco_bbox_three", coco_case(_coco(annotations=[_ann(bbox=[4, 4, 5])])), 2,
          ("annotations[0].bbox", "[x, y, width, height]")),
        c("coco_bbox_null", coco_case(_coco(annotations=[_ann(bbox=None)])), 2,
          ("annotations[0].bbox",)),
        c("coco_bbox_nan", coco_case(text=json.dumps(_coco()).replace("[4, 4, 20, 20]",
                                                                       "[4, NaN, 20, 20]")), 2,
          ("_annotations.coco.json",)),
        c("coco_missing_bbox", coco_case(_coco(annotations=[
            {"id": 1, "image_id": 1, "category_id": 1}])), 2, ("annotations[0]", "'bbox'")),
        c("coco_category_id_string", coco_case(_coco(annotations=[_ann(category_id="1")])), 2,
          ("annotations[0].category_id",)),
        c("coco_duplicate_image_id", coco_case(_coco(images=[two_images[0],
                                                             dict(two_images[1], id=1)]),
                                               images=("a.jpg", "b.jpg")), 2,
          ("images[1].id", "duplicate")),
        c("coco_duplicate_file_name", coco_case(_coco(images=[two_images[0],
                                                              dict(two_images[1], file_name="a.jpg")])),
          2, ("images[1]", "a.jpg", "duplicate")),
        c("coco_unknown_category", coco_case(_coco(annotations=[_ann(category_id=9)])), 2,
          ("annotations[0].category_id", "9")),
        c("coco_image_missing_on_disk", coco_case(_coco(images=two_images),
                                                  images=("a.jpg",)), 2,
          ("images[1]", "b.jpg", "not found")),
        c("coco_image_missing_skip", coco_case(_coco(images=two_images), images=("a.jpg",),
                                               extra=("--skip-bad",)), 0,
          log_words=("1 images, 1 boxes", "'bad image or box': 1")),
        c("coco_corrupt_image", _corrupt_coco_image, 2, ("images[0]", "a.jpg")),
        c("coco_wrong_size", coco_case(_coco(images=[dict(two_images[0], width=640)])), 2,
          ("images[0]", "640x48")),
        c("coco_non_utf8", coco_case(text=json.dumps(_coco()).replace(
            '"face"', '"f\\u00e9"').encode().replace(b"\\u00e9", b"\xe9")), 2,
          ("_annotations.coco.json", "UTF-8")),
        c("coco_bom", coco_case(text=b"\xef\xbb\xbf" + json.dumps(_coco()).encode()), 0),
        c("coco_class_not_in_config", coco_case(_coco(categories=[{"id": 1, "name": "dog"}])),
          2, ("dog", "classes:")),
        c("coco_extra_class", coco_case(_coco(
            annotations=[_ann(), _ann(id=2, category_id=3)],
            categories=[{"id": 1, "name": "face"}, {"id": 3, "name": "dog"}])), 2,
          ("dog", "skip_unknown_classes")),
        c("coco_extra_class_skip", coco_case(_coco(
            annotations=[_ann(), _ann(id=2, category_id=3)],
            categories=[{"id": 1, "name": "face"}, {"id": 3, "name": "dog"}]),
            extra=("--skip-unknown-classes",)), 0, log_words=("dropped boxes",)),
        c("coco_hostile_category", coco_case(_coco(categories=[
            {"id": 1, "name": "$(touch INJECTED); `x` \"q\""}])), 2, ("$(touch INJECTED)",)),
        c("coco_unicode_space_path", coco_case(
            _coco(images=[{"id": 1, "file_name": "été photo.jpg", "width": 64, "height": 48}]),
            images=("été photo.jpg",)), 0),
        c("coco_json_not_found", _coco_json_missing, 2, ("nope.json", "not found")),
        c("coco_json_is_dir", _coco_json_dir, 2, ("directory",)),
        c("coco_iscrowd_2", coco_case(_coco(annotations=[_ann(iscrowd=2)])), 2,
          ("annotations[0].iscrowd",)),
        c("coco_annotation_not_object", coco_case(_coco(annotations=[[1, 2]])), 2,
          ("annotations[0]", "object")),
        c("coco_image_no_file_name", coco_case(_coco(images=[{"id": 1}])), 2,
          ("images[0]", "'file_name'")),
        c("coco_file_name_escapes", coco_case(_coco(images=[
            {"id": 1, "file_name": "../../etc/passwd", "width": 64, "height": 48}])), 2,
          ("images[0]",)),
    ]
    yolo = [
        c("yolo_ok", yolo_case(), 0),
        c("yolo_four_fields", yolo_case({"a.txt": "0 0.5 0.5 0.2\n"}), 2,
          ("a.txt:1", "5 numbers")),
        c("yolo_six_fields", yolo_case({"a.txt": "0 0.5 0.5 0.2 0.2 0.9\n"}), 2,
          ("a.txt:1", "5 numbers")),
        c("yolo_six_fields_skip", yolo_case({"a.txt": "0 0.5 0.5 0.2 0.2 0.9\n",
                                             "b.txt": "1 0.5 0.5 0.2 0.2\n"},
                                            images=("a.jpg", "b.jpg"), extra=("--skip-bad",)),
          0, log_words=("1 images, 1 boxes", "'malformed label file': 1", "1 warnings")),
        c("yolo_class_out_of_range", yolo_case({"a.txt": "5 0.5 0.5 0.2 0.2\n"}), 2,
          ("a.txt:1", "class 5")),
        c("yolo_negative_class", yolo_case({"a.txt": "-1 0.5 0.5 0.2 0.2\n"}), 2,
          ("a.txt:1",)),
        c("yolo_coords_over_one", yolo_case({"a.txt": "0 32 24 10 10\n"}), 2,
          ("a.txt:1", "normalised")),
        c("yolo_coords_negative", yolo_case({"a.txt": "0 -0.5 0.5 0.2 0.2\n"}), 2,
          ("a.txt:1", "normalised")),
        c("yolo_non_numeric", yolo_case({"a.txt": "0 0.5 abc 0.2 0.2\n"}), 2,
          ("a.txt:1", "number")),
        c("yolo_class_name_as_id", yolo_case({"a.txt": "face 0.5 0.5 0.2 0.2\n"}), 2,
          ("a.txt:1",)),
        c("yolo_crlf", yolo_case({"a.txt": "0 0.5 0.5 0.2 0.2\r\n1 0.3 0.3 0.1 0.1\r\n"}), 0),
        c("yolo_bom", yolo_case({"a.txt": "\ufeff0 0.5 0.5 0.2 0.2\n"}), 0),
        c("yolo_non_utf8_label", yolo_case({"a.txt": b"0 0.5 0.5 0.2 0.2 \xe9\n"}), 2,
          ("a.txt",)),
        c("yolo_empty_label", yolo_case({"a.txt": ""}), 0),
        c("yolo_no_names", yolo_case(yaml_text="train: train/images\nval: val/images\n"), 2,
          ("data.yaml", "names")),
        c("yolo_names_dict", yolo_case(
            yaml_text="train: train/images\nval: val/images\nnames: {0: face, 1: car}\n"), 0),
        c("yolo_names_dict_gap", yolo_case(
            yaml_text="train: train/images\nval: val/images\nnames: {0: face, 2: car}\n"), 2,
          ("data.yaml", "names")),
        c("yolo_names_string", yolo_case(
            yaml_text="train: train/images\nval: val/images\nnames: face\n"), 2,
          ("data.yaml", "names")),
        c("yolo_nc_mismatch", yolo_case(
            yaml_text="train: train/images\nval: val/images\nnc: 3\nnames: [face, car]\n"), 2,
          ("data.yaml", "nc")),
        c("yolo_yaml_syntax", yolo_case(yaml_text="train: [train/images\nval: val\n"), 2,
          ("data.yaml:", "YAML")),
        c("yolo_yaml_empty", yolo_case(yaml_text=""), 2, ("data.yaml",)),
        c("yolo_yaml_non_utf8", _yolo_yaml_bytes(b"names: [f\xe9]\ntrain: train/images\n"
                                                 b"val: val/images\n"), 2,
          ("data.yaml", "UTF-8")),
        c("yolo_yaml_bom", _yolo_yaml_bytes(b"\xef\xbb\xbftrain: train/images\nval: val/images\n"
                                            b"names: [face, car]\n"), 0),
        c("yolo_train_missing", yolo_case(
            yaml_text="train: nowhere/images\nval: val/images\nnames: [face]\n"), 2,
          ("data.yaml", "nowhere/images", "not found")),
        c("yolo_no_val", yolo_case(yaml_text="train: train/images\nnames: [face]\n"), 2,
          ("data.yaml", "'val'")),
        c("yolo_yaml_not_found", argv_case("data", "yolo", "--data", "{tmp}/nope.yaml", "-o",
                                           "{tmp}/out/train.record", "--label-map",
                                           "{tmp}/lm.pbtxt"), 2, ("not found",)),
        c("yolo_yaml_is_dir", _yolo_yaml_dir, 2, ("directory",)),
        c("yolo_class_not_in_config", yolo_case(
            yaml_text="train: train/images\nval: val/images\nnames: [dog]\n"), 2,
          ("dog", "classes:")),
        c("yolo_unicode_space_path", yolo_case(folder_name="my données", images=("é 1.jpg",),
                                               labels={"é 1.txt": "0 0.5 0.5 0.2 0.2\n"}), 0),
        c("yolo_corrupt_image", _yolo_corrupt_image, 2, ("a.jpg",)),
        c("yolo_corrupt_image_skip", _yolo_corrupt_image_skip, 0,
          log_words=("1 images", "'missing or unreadable image': 1")),
        # rglob does not follow links to folders: the loop is harmless, the image read once
        c("yolo_symlink_loop", _yolo_symlink_loop, 0, log_words=("1 images, 1 boxes",)),
        c("yolo_bmp_image", yolo_case(images=("a.jpg", "b.bmp")), 2, ("b.bmp", "JPEG")),
        c("yolo_no_data_no_images", argv_case("data", "yolo", "-o", "{tmp}/out/train.record",
                                              "--label-map", "{tmp}/lm.pbtxt"), 2,
          ("--data",)),
    ]
    tar = [
        c("tar_tf2_ok", tar_case(TF2_MEMBERS), 0, output=""),
        c("tar_tf2_missing_index", tar_case(_without(TF2_MEMBERS, "m/checkpoint/ckpt-0.index")),
          2, ("ckpt-0.index",), output="out/m"),
        c("tar_tf2_missing_data", tar_case(_without(
            TF2_MEMBERS, "m/checkpoint/ckpt-0.data-00000-of-00001")), 2,
          ("ckpt-0.data",), output="out/m"),
        c("tar_tf1_given_as_tf2", tar_case(TF1_MEMBERS), 2, ("tf1",), output="out/m"),
        c("tar_tf2_given_as_tf1", tar_case(TF2_MEMBERS, layout="tf1"), 2, ("tf2",),
          output="out/m"),
        c("tar_dotdot_config", tar_case({**_without(TF2_MEMBERS, "m/pipeline.config"),
                                         "m/../pipeline.config": b"model {}"}), 2,
          ("pipeline.config",), output="out/m"),
        c("tar_symlink_config", tar_case({**_without(TF2_MEMBERS, "m/pipeline.config"),
                                          "m/pipeline.config": ("sym", "/etc/passwd")}), 2,
          ("link",), output="out/m"),
        c("tar_hardlink_index", tar_case({**_without(TF2_MEMBERS, "m/checkpoint/ckpt-0.index"),
                                          "m/checkpoint/ckpt-0.index": ("hard", "/etc/passwd")}),
          2, ("link",), output="out/m"),
        c("tar_not_a_tar", _not_a_tar, 2, ("tar",), output="out/m"),
        c("tar_truncated", _truncated_tar, 2, ("complete",), output="out/m"),
        c("tar_not_found", argv_case("zoo", "extract", "--tarball", "{tmp}/none.tar.gz",
                                     "--output-dir", "{tmp}/out/m", "--layout", "tf2"), 2,
          ("not found",), output="out/m"),
        c("copy_ckpt_missing_data", copy_ckpt_case({
            "checkpoint/ckpt-0.index": b"x", "pipeline.config": b""}), 2,
          ("ckpt-0.data",), output="out/ckpt"),
        c("copy_ckpt_no_model_dir", argv_case("zoo", "copy-checkpoint", "--model-dir",
                                              "{tmp}/none", "--ckpt-dir", "{tmp}/out/ckpt",
                                              "--layout", "tf2"), 2, ("none",),
          output="out/ckpt"),
    ]
    anchors = [
        c("anchors_config_missing", anchors_case(None), 2, ("pipeline.config",), output=""),
        c("anchors_config_garbage", anchors_case("model { ssd { nonsense: 1 } }"), 2,
          ("pipeline.config",), output=""),
        c("anchors_records_missing", anchors_case(_MINI_CONFIG, ("none.record",)), 2,
          ("none.record",), output=""),
        c("anchors_records_empty", anchors_case(_MINI_CONFIG, ("e.record!empty",)), 2,
          ("e.record",), output=""),
        c("anchors_records_junk", anchors_case(_MINI_CONFIG, ("j.record!junk",)), 2,
          ("j.record",), output=""),
        c("anchors_fit_records_junk", anchors_case(_MINI_CONFIG, ("j.record!junk",), "fit"), 2,
          ("j.record",), output=""),
    ]
    scripts = [
        c("tf2_train_no_pipeline", argv_case("--model_dir={tmp}/ckpt"), 2,
          ("pipeline_config_path",), output="ckpt", command="model_main_tf2"),
        c("tf2_train_config_missing", argv_case("--model_dir={tmp}/ckpt",
                                                "--pipeline_config_path={tmp}/none.config"), 2,
          ("none.config",), output="ckpt", command="model_main_tf2"),
        c("tf2_eval_checkpoint_dir_missing", _with_config(
            "--model_dir={tmp}/ckpt", "--pipeline_config_path={tmp}/p.config",
            "--checkpoint_dir={tmp}/nockpt"), 2, ("nockpt",), output="ckpt",
          command="model_main_tf2"),
        c("tf2_train_bad_steps", argv_case("--model_dir={tmp}/ckpt",
                                           "--pipeline_config_path={tmp}/p.config",
                                           "--num_train_steps=ten"), 2,
          ("num_train_steps",), output="ckpt", command="model_main_tf2"),
        c("tf2_export_no_flags", argv_case(), 2, ("--",), output="", command="exporter_main_v2"),
        c("tf2_export_ckpt_dir_missing", _with_config(
            "--input_type=image_tensor", "--pipeline_config_path={tmp}/p.config",
            "--trained_checkpoint_dir={tmp}/nockpt", "--output_directory={tmp}/out/e"), 2,
          ("nockpt",), output="out/e", command="exporter_main_v2"),
        c("tf2_export_bad_input_type", argv_case(
            "--input_type=float_tensor_x", "--pipeline_config_path={tmp}/p.config",
            "--trained_checkpoint_dir={tmp}/ckpt", "--output_directory={tmp}/out/e"), 2,
          ("input_type",), output="out/e", command="exporter_main_v2"),
    ]
    checkpoints = [
        c("ckpt_v2_ok", ckpt_case(), 0, output="", command="restore"),
        c("ckpt_missing_index", ckpt_case(remove="ckpt-0.index"), 2, ("ckpt-0.index",),
          output="", command="restore"),
        c("ckpt_missing_data", ckpt_case(remove="ckpt-0.data-00000-of-00001"), 2,
          ("ckpt-0", "data"), output="", command="restore"),
        c("ckpt_truncated_data", ckpt_case(truncate=True), 2, ("ckpt-0",), output="",
          command="restore"),
        c("ckpt_v2_given_as_v1", ckpt_case(version=1), 2,
          ("fine_tune_checkpoint_version", "V2"), output="", command="restore"),
        c("ckpt_v1_given_as_v2", ckpt_case(kind="v1", version=2), 2,
          ("fine_tune_checkpoint_version", "V1"), output="", command="restore"),
        c("ckpt_other_architecture", ckpt_case(architecture=OTHER_ARCHITECTURE), 2,
          ("does not fit this model", "feature extractor type"), output="",
          command="restore"),
        c("ckpt_detection_as_classification", ckpt_case(checkpoint_type="classification"), 2,
          ("fine_tune_checkpoint_type", "detection"), output="", command="restore"),
        c("ckpt_type_unknown", ckpt_case(checkpoint_type="everything"), 2,
          ("fine_tune_checkpoint_type",), output="", command="restore"),
    ]
    preview = [
        c("preview_config_missing", preview_case(config=False), 2, ("pipeline.config",),
          output="out/plots"),
        c("preview_train_records_missing", preview_case(train="none.record"), 2,
          ("none.record",), output="out/plots"),
        c("preview_val_records_missing", preview_case(val="none.record"), 2,
          ("none.record",), output="out/plots"),
        c("preview_num_images_zero", preview_case(extra=("--num-images", "0")), 2,
          ("--num-images",), output="out/plots"),
    ]
    best = [
        c("best_metrics_missing", best_case(best=None), 2, ("best.json", "not found"),
          output="out/metrics.json", command="exported_metrics"),
        c("best_metrics_not_json", best_case(best="{not json"), 2, ("best.json",),
          output="out/metrics.json", command="exported_metrics"),
        c("best_metrics_wrong_shape", best_case(best='{"global_step": 3}'), 2,
          ("best.json", "metrics"), output="out/metrics.json", command="exported_metrics"),
        c("best_checkpoint_unknown", best_case(checkpoint="bestest"), 2, ("--checkpoint",),
          output="out/metrics.json", command="exported_metrics"),
        c("best_ok", best_case(), 0, output="", command="exported_metrics"),
    ]
    hostile = [
        c("yolo_hostile_names", yolo_case(
            {"a.txt": "0 0.5 0.5 0.2 0.2\n1 0.3 0.3 0.1 0.1\n"},
            yaml_text=f"train: train/images\nval: val/images\nnames: {json.dumps(HOSTILE)}\n",
            label_map=HOSTILE), 0, log_words=("1 images, 2 boxes",)),
        c("coco_hostile_names", coco_case(_coco(
            annotations=[_ann(), _ann(id=2, category_id=2)],
            categories=[{"id": 1, "name": HOSTILE[0]}, {"id": 2, "name": HOSTILE[1]}]),
            label_map=HOSTILE), 0, log_words=("1 images, 2 boxes",)),
    ]
    more = [
        c("coco_width_string", coco_case(_coco(images=[dict(two_images[0], width="64")])), 2,
          ("images[0].width", "integer")),
        c("coco_image_not_an_image", _coco_text_image, 2, ("images[0]", "a.jpg")),
        c("coco_images_dir_missing", coco_case(extra=("--images", "no such dir")), 2,
          ("no such dir", "not found")),
        c("coco_num_shards_zero", coco_case(extra=("--num-shards", "0")), 2, ("shards",)),
        c("coco_output_is_dir", _coco_output_dir, 2, ("train.record", "folder"), output=""),
        c("coco_only_negatives", coco_case(_coco(annotations=[])), 0,
          log_words=("1 images, 0 boxes",)),
        c("yolo_empty_images_folder", yolo_case(labels={}, images=()), 2, ("0 images",)),
        c("yolo_label_is_dir", _yolo_label_dir, 2, ("a.txt",)),
        c("yolo_zero_size_box", yolo_case({"a.txt": "0 0.5 0.5 0 0.2\n"}), 0,
          log_words=("'zero width or height': 1",)),
        c("yolo_uppercase_suffix", yolo_case({"A.txt": "0 0.5 0.5 0.2 0.2\n"},
                                             images=("A.JPG",)), 0,
          log_words=("1 images, 1 boxes",)),
        c("yolo_list_file_entry", _yolo_list_file, 2, ("list file", "folder")),
        c("tar_absolute_member", tar_case({**_without(TF2_MEMBERS, "m/pipeline.config"),
                                           "/m/pipeline.config": b"model {}"}), 2,
          ("pipeline.config",), output="out/m"),
        c("tar_empty", tar_case({}), 2, ("m.tar.gz",), output="out/m"),
        c("tar_layout_unknown", tar_case(TF2_MEMBERS, layout="tf3"), 2, ("--layout",),
          output="out/m"),
        c("anchors_not_ssd", anchors_case("model { faster_rcnn { num_classes: 1 } }"), 2,
          ("pipeline.config",), output=""),
        c("anchors_ok", anchors_records_case(), 0, output=""),
        c("anchors_json_is_dir", anchors_records_case(json_dir=True), 2, ("cov.json", "folder"),
          output=""),
        c("anchors_fit_ok", anchors_records_case(command="fit"), 0, output=""),
    ]
    return coco + yolo + tar + anchors + scripts + checkpoints + preview + best + hostile + more


def _records(folder: Path) -> Path:
    """A small COCO dataset converted to ``folder/train.record`` (classes face, car)."""
    from odflow.data.cli import run

    run(coco_case(_coco(annotations=[_ann(), _ann(id=2, bbox=[30, 10, 12, 30])]))(folder)[1:])
    records = folder / "train.record"
    (folder / "out/train.record").rename(records)
    (folder / "out/train.record.summary.json").unlink()
    return records


def anchors_records_case(*, command: str = "coverage", json_dir: bool = False):
    def make(folder: Path) -> list[str]:
        records = _records(folder)
        argv = anchors_case(_MINI_CONFIG, command=command)(folder)
        argv += ["--records", str(records)]
        if json_dir:
            (folder / "cov.json").mkdir()
            argv += ["--json", str(folder / "cov.json")]
        return argv
    return make


def _coco_text_image(folder: Path) -> list[str]:
    argv = coco_case()(folder)
    (folder / "train/a.jpg").write_text("not an image\n")
    return argv


def _coco_output_dir(folder: Path) -> list[str]:
    argv = coco_case()(folder)
    (folder / "out/train.record").mkdir(parents=True)
    return argv


def _yolo_label_dir(folder: Path) -> list[str]:
    argv = yolo_case(labels={})(folder)
    (folder / "ds/train/labels/a.txt").mkdir()
    return argv


def _yolo_list_file(folder: Path) -> list[str]:
    argv = yolo_case(yaml_text="train: train.txt\nval: val/images\nnames: [face]\n")(folder)
    (folder / "ds/train.txt").write_text("train/images/a.jpg\n")
    return argv


#: Class names that must stay data: shell syntax, quotes, a leading dash, non-ASCII, spaces.
HOSTILE = ["$(touch INJECTED) `id`", "-x it's \"été\"; rm -rf"]


def preview_case(*, config: bool = True, train: str = "train.record", val: str = "train.record",
                 extra: tuple[str, ...] = ()):
    """``odflow data preview`` of a pipeline config whose records come from ``coco_case``."""
    def make(folder: Path) -> list[str]:
        argv = coco_case()(folder)
        from odflow.data.cli import run

        run(argv[1:])
        records = folder / "out/train.record"
        records.rename(folder / "train.record")
        (folder / "out/train.record.summary.json").unlink()
        label_map = folder / "label_map.pbtxt"
        readers = "".join(
            f'{name} {{ label_map_path: "{label_map}" '
            f'tf_record_input_reader {{ input_path: "{folder / path}" }} }}\n'
            for name, path in (("train_input_reader", train), ("eval_input_reader", val)))
        if config:
            (folder / "pipeline.config").write_text(_MINI_CONFIG.replace("num_classes: 1",
                                                                         "num_classes: 2")
                                                    + readers)
        return ["data", "preview", "--pipeline_config", str(folder / "pipeline.config"),
                "--output_dir", str(folder / "out/plots"), *extra]
    return make


def best_case(*, best: str | None = "", checkpoint: str = "best"):
    """``scripts/exported_metrics.py`` (``export.checkpoint``) with the two metrics JSONs."""
    good = ('{"global_step": %d, "metrics": {"DetectionBoxes_Precision/mAP": %s}}')

    def make(folder: Path) -> list[str]:
        (folder / "last.json").write_text(good % (6, "0.1"))
        if best is not None:
            (folder / "best.json").write_text(best or good % (3, "0.2"))
        return ["--last", str(folder / "last.json"), "--best", str(folder / "best.json"),
                "--checkpoint", checkpoint, "--output", str(folder / "out/metrics.json")]
    return make


# -- TF2 checkpoints (restored as ``odflow train`` does for fine_tune_checkpoint) ----------------

#: The checkpoints' architecture (a starter model: small and built offline), and another one.
ARCHITECTURE = "ssd_mobilenet_v2_keras"
OTHER_ARCHITECTURE = "ssd_mobilenet_v1_fpn_keras"
_CACHE: dict[tuple[str, str], object] = {}


def _starter_text(architecture: str) -> str:
    from odflow.workflow.starter import starter_pipeline_text

    return starter_pipeline_text(depth_multiplier=0.25, image_size=64, num_classes=1,
                                 architecture=architecture)


def _model(architecture: str):
    """The odflow model of a small starter config (built once per process)."""
    if ("model", architecture) not in _CACHE:
        from odflow.config import loads
        from odflow.model.builder import build

        _CACHE["model", architecture] = build(loads(_starter_text(architecture)).model,
                                              is_training=False)
    return _CACHE["model", architecture]


def _checkpoint_files(kind: str) -> dict[str, bytes]:
    """The files of a starter checkpoint: ``v2`` object-based ``ckpt-0.*`` (the TF2 zoo's),
    ``v1`` name-based ``model.ckpt.*`` (the TF1 zoo's); written once per process."""
    if ("files", kind) not in _CACHE:
        import tempfile

        from odflow.workflow.starter import write_starter_checkpoint, write_starter_checkpoint_v2

        with tempfile.TemporaryDirectory() as tmp:
            write = write_starter_checkpoint_v2 if kind == "v2" else write_starter_checkpoint
            write(_starter_text(ARCHITECTURE if kind == "v2" else "ssd_mobilenet_v1"),
                  Path(tmp), 7)
            _CACHE["files", kind] = {p.name: p.read_bytes() for p in Path(tmp).iterdir()}
    return _CACHE["files", kind]  # type: ignore[return-value]


def ckpt_case(kind: str = "v2", *, remove: str = "", truncate: bool = False,
              architecture: str = ARCHITECTURE, checkpoint_type: str = "detection",
              version: int | None = None):
    def make(folder: Path) -> list[str]:
        ckpt = folder / "ckpt"
        ckpt.mkdir()
        for name, content in _checkpoint_files(kind).items():
            if name != remove:
                (ckpt / name).write_bytes(content[: len(content) // 2]
                                          if truncate and ".data-" in name else content)
        prefix = ckpt / ("ckpt-0" if kind == "v2" else "model.ckpt")
        return [str(prefix), architecture, checkpoint_type,
                str(version if version is not None else (2 if kind == "v2" else 1))]
    return make


def _restore_main(argv: list[str]) -> int:
    """``restore_for_version`` as training's fine-tune restore calls it, as a command."""
    from odflow.model.tf2_checkpoint import restore_for_version
    from odflow.utils.cli import run_cli

    def run(args) -> int:
        path, architecture, checkpoint_type, version = args
        restore_for_version(_model(architecture), path, checkpoint_type, int(version))
        return 0
    return run_cli(run, argv)


_MINI_CONFIG = """model { ssd { num_classes: 1 image_resizer { fixed_shape_resizer { height: 64 width: 64 } }
  feature_extractor { type: "ssd_mobilenet_v1" depth_multiplier: 0.25 min_depth: 8
    conv_hyperparams { regularizer { l2_regularizer {} } initializer { truncated_normal_initializer {} } } }
  box_coder { faster_rcnn_box_coder { y_scale: 10 x_scale: 10 height_scale: 5 width_scale: 5 } }
  matcher { argmax_matcher { matched_threshold: 0.5 unmatched_threshold: 0.5 } }
  similarity_calculator { iou_similarity {} }
  anchor_generator { ssd_anchor_generator { num_layers: 6 min_scale: 0.2 max_scale: 0.95
    aspect_ratios: 1.0 } }
  box_predictor { convolutional_box_predictor { kernel_size: 1 box_code_size: 4
    conv_hyperparams { regularizer { l2_regularizer {} } initializer { truncated_normal_initializer {} } } } }
  loss { classification_loss { weighted_sigmoid {} } localization_loss { weighted_smooth_l1 {} } }
  post_processing { batch_non_max_suppression { score_threshold: 0.1 iou_threshold: 0.5
    max_detections_per_class: 10 max_total_detections: 10 } score_converter: SIGMOID }
} }
train_config { batch_size: 1 }
"""


def _with_config(*argv: str):
    """``argv_case`` with a valid small pipeline config at ``{tmp}/p.config``."""
    def make(folder: Path) -> list[str]:
        (folder / "p.config").write_text(_MINI_CONFIG)
        return argv_case(*argv)(folder)
    return make


def _coco_json_missing(folder: Path) -> list[str]:
    argv = coco_case()(folder)
    argv[argv.index("--json") + 1] = str(folder / "nope.json")
    return argv


def _corrupt_coco_image(folder: Path) -> list[str]:
    argv = coco_case()(folder)
    image = folder / "train/a.jpg"
    image.write_bytes(image.read_bytes()[:200])
    return argv


def _coco_json_dir(folder: Path) -> list[str]:
    argv = coco_case()(folder)
    (folder / "dir.json").mkdir()
    argv[argv.index("--json") + 1] = str(folder / "dir.json")
    return argv


def _yolo_yaml_bytes(content: bytes):
    def make(folder: Path) -> list[str]:
        argv = yolo_case()(folder)
        (folder / "ds/data.yaml").write_bytes(content)
        return argv
    return make


def _yolo_yaml_dir(folder: Path) -> list[str]:
    argv = yolo_case()(folder)
    (folder / "d.yaml").mkdir()
    argv[argv.index("--data") + 1] = str(folder / "d.yaml")
    return argv


def _yolo_corrupt_image(folder: Path) -> list[str]:
    argv = yolo_case({"a.txt": "0 0.5 0.5 0.2 0.2\n", "b.txt": "1 0.5 0.5 0.2 0.2\n"},
                     images=("a.jpg", "b.jpg"))(folder)
    image = folder / "ds/train/images/a.jpg"
    image.write_bytes(image.read_bytes()[:200])
    return argv


def _yolo_corrupt_image_skip(folder: Path) -> list[str]:
    return [*_yolo_corrupt_image(folder), "--skip-bad"]


def _yolo_symlink_loop(folder: Path) -> list[str]:
    argv = yolo_case()(folder)
    os.symlink(".", folder / "ds/train/images/loop")
    return argv


def _not_a_tar(folder: Path) -> list[str]:
    (folder / "m.tar.gz").write_bytes(b"<html>404 Not Found</html>")
    return ["zoo", "extract", "--tarball", str(folder / "m.tar.gz"), "--output-dir",
            str(folder / "out/m"), "--layout", "tf2"]


def _truncated_tar(folder: Path) -> list[str]:
    big = {**TF2_MEMBERS, "m/checkpoint/ckpt-0.data-00000-of-00001": random_jpeg(256, 256)}
    tar = _tarball(folder, big)
    tar.write_bytes(tar.read_bytes()[: tar.stat().st_size // 2])
    return ["zoo", "extract", "--tarball", str(tar), "--output-dir", str(folder / "out/m"),
            "--layout", "tf2"]


# -- running -------------------------------------------------------------------------------------

def _entry(command: str):
    if command == "restore":
        return _restore_main
    if command == "exported_metrics":
        from odflow.train.best import main as exported_metrics
        return exported_metrics
    if command == "model_main_tf2":
        from odflow.train.tf2_flags import main
        return main
    if command == "exporter_main_v2":
        from odflow.export.tf2_flags import main
        return main
    from odflow.cli import main
    return main


def _snapshot(folder: Path) -> dict[str, str]:
    """sha256 of every file under ``folder`` (links not followed): the user's inputs."""
    found = {}
    for root, _, files in os.walk(folder):
        for name in files:
            path = Path(root, name)
            if path.is_file() and not path.is_symlink():
                found[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def run_case(case: Case, folder: Path) -> Outcome:
    """Build the case's input in ``folder``, run it, and list what is wrong."""
    folder.mkdir(parents=True, exist_ok=True)
    argv = case.make(folder)
    before = _snapshot(folder)
    import logging

    root = logging.getLogger()
    handlers = list(root.handlers)
    stderr = io.StringIO()
    code: int | None
    with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
        try:
            code = _entry(case.command)(argv)
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else 2
        except BaseException:  # noqa: BLE001 - a traceback is what the probe looks for
            traceback.print_exc(file=stderr)
            code = None
    for handler in root.handlers[:]:  # the CLI's handlers write to the closed StringIO
        if handler not in handlers:
            root.removeHandler(handler)
            handler.close()
    text = stderr.getvalue()
    outcome = Outcome(case, code, text)
    if "Traceback (most recent call last)" in text:
        outcome.problems.append("traceback")
    if code != case.exit_code:
        outcome.problems.append(f"exit {code}, expected {case.exit_code}")
    if case.exit_code != 0:
        error_lines = [line for line in text.splitlines() if line.startswith(("error:", "usage:"))
                       or ": error:" in line]
        message = "\n".join(error_lines) or text
        missing = [w for w in case.words if w.lower() not in message.lower()]
        if missing:
            outcome.problems.append(f"message lacks {missing}")
        if case.output and (folder / case.output).exists():
            outcome.problems.append(f"{case.output} written")
        leftovers = [p for p in (folder / "out").rglob("*") if p.is_file()] \
            if (folder / "out").is_dir() and case.output.startswith("out") else []
        if leftovers:
            outcome.problems.append(f"left {[p.name for p in leftovers]}")
    else:
        missing = [w for w in case.log_words if w.lower() not in text.lower()]
        if missing:
            outcome.problems.append(f"log lacks {missing}")
    after = _snapshot(folder)
    changed = [p for p, digest in before.items() if after.get(p) != digest]
    if changed:
        outcome.problems.append(f"inputs changed: {changed}")
    return outcome


# -- the same inputs through ``snakemake -n`` (the config a user writes) -----------------------

@dataclass
class WorkflowCase:
    """A setting and what ``snakemake -n`` must say (non-zero exit, no traceback)."""

    id: str
    make: Callable[[Path], dict]     # writes the data in the folder; returns ``dataset``
    words: tuple[str, ...]
    changes: dict = field(default_factory=dict)   # other sections of the config


def _yolo_dataset(yaml_bytes: bytes | None):
    def make(folder: Path) -> dict:
        write_random_jpeg(folder / "ds/train/images/a.jpg", 64, 48)
        (folder / "ds/val/images").mkdir(parents=True)
        data = folder / "ds/data.yaml"
        if yaml_bytes is None:
            data.mkdir()
        else:
            data.write_bytes(yaml_bytes)
        return {"source": "yolo", "yolo": {"data": str(data)}}
    return make


def workflow_cases() -> list[WorkflowCase]:
    return [
        WorkflowCase("wf_coco_json_missing", lambda folder: {
            "source": "coco", "coco": {"train_json": str(folder / "none/train.json"),
                                       "val_json": str(folder / "none/val.json")}},
                     ("Missing input files", "none/val.json")),
        WorkflowCase("wf_coco_json_unset", lambda folder: {"source": "coco"},
                     ("dataset.coco.val_json is not set",)),
        WorkflowCase("wf_yolo_no_names", _yolo_dataset(
            b"train: train/images\nval: val/images\n"), ("data.yaml", "names")),
        WorkflowCase("wf_yolo_yaml_not_utf8", _yolo_dataset(
            b"train: train/images\nval: val/images\nnames: [f\xe9]\n"), ("data.yaml", "UTF-8")),
        WorkflowCase("wf_yolo_yaml_is_dir", _yolo_dataset(None), ("data.yaml", "directory")),
        WorkflowCase("wf_yolo_train_missing", _yolo_dataset(
            b"train: nowhere/images\nval: val/images\nnames: [face]\n"),
                     ("nowhere/images", "not found")),
        WorkflowCase("wf_export_checkpoint_unknown", _synthetic, ("export", "checkpoint"),
                     {"export": {"checkpoint": "bestest"}}),
        WorkflowCase("wf_clip_before_nms_string", _synthetic, ("clip_before_nms",),
                     {"postprocess": {"clip_before_nms": "yes please"}}),
        WorkflowCase("wf_anchors_fit_string", _synthetic, ("fit",),
                     {"anchors": {"fit": "maybe"}}),
        WorkflowCase("wf_model_layout_unknown", _synthetic, ("layout",),
                     {"model": {"layout": "tf3"}}),
    ]


def _synthetic(folder: Path) -> dict:
    del folder
    return {"source": "synthetic"}


def run_workflow_cases(folder: Path) -> list[Outcome]:
    """Plan each case with ``snakemake -n`` (one batch: one Snakemake import)."""
    from tests.support.dry_runs import dry_runs
    from tests.support.workflow import tiny_config, write_config

    plans = []
    selected = workflow_cases()
    for case in selected:
        workdir = folder / case.id
        workdir.mkdir(parents=True)
        dataset = case.make(workdir)
        config = tiny_config(dataset=dataset, **case.changes)
        plans.append((workdir, write_config(workdir, config), ["all"]))
    outcomes = []
    for case, result in zip(selected, dry_runs(plans), strict=True):
        probe = Case(case.id, argv_case(), 1, case.words)
        outcome = Outcome(probe, result.returncode, result.output)
        if result.returncode == 0:
            outcome.problems.append("exit 0")
        if "Traceback (most recent call last)" in result.output:
            outcome.problems.append("traceback")
        missing = [w for w in case.words if w.lower() not in result.output.lower()]
        if missing:
            outcome.problems.append(f"message lacks {missing}")
        outcomes.append(outcome)
    return outcomes


def main(argv: list[str] | None = None) -> int:
    import argparse
    import tempfile

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-k", default="", help="run only the cases whose id holds this")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    parser.add_argument("--snakemake", action="store_true",
                        help="also plan the workflow cases with snakemake -n")
    args = parser.parse_args(argv)
    selected = [case for case in cases() if args.k in case.id]
    failed = 0
    with tempfile.TemporaryDirectory() as tmp:
        outcomes = [run_case(case, Path(tmp) / case.id) for case in selected]
        if args.snakemake:
            planned = [c for c in workflow_cases() if args.k in c.id]
            selected += planned
            outcomes = [*outcomes, *run_workflow_cases(Path(tmp) / "workflow")]
        for outcome in outcomes:
            case = outcome.case
            failed += not outcome.passed
            last = [line for line in outcome.stderr.strip().splitlines() if line][-1:] or [""]
            status = "ok" if outcome.passed else "FAIL " + "; ".join(outcome.problems)
            print(f"{case.id:34s} exit={outcome.exit_code!s:4s} {status}\n"
                  f"{'':34s} {last[0][:160]}")
    print(f"{len(selected) - failed}/{len(selected)} passed")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
