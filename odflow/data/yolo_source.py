"""YOLO txt datasets (Ultralytics ``data.yaml``, or ``images/`` + ``labels/`` folders) -> records.

Each image ``.../images/.../name.jpg`` has a label file ``.../labels/.../name.txt`` (the LAST
``images`` path component replaced by ``labels``, as Ultralytics finds them), one line per
box: ``class cx cy w h``, the centre and size normalised to [0, 1].  An image without a label
file, or with an empty one, is a negative.

``data.yaml`` gives ``train`` and ``val`` (a folder of images, or a list of folders) relative
to a dataset root, and ``names`` (a list, or a dict ``{0: name}``).  An entry is looked for
as Ultralytics' ``check_det_dataset`` does: against ``path`` if the file sets it (relative to
the yaml's folder), then against the yaml's folder, then its parent; a ``../``-prefixed entry
found nowhere is tried again without the ``../``.  Roboflow's exports need that last rule:
their ``data.yaml`` sits in the dataset root and says ``train: ../train/images``.  Which
candidate was used is logged.

Without a yaml (``--images`` folders), class id ``i`` is ``classes[i]`` of the label map.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path

import yaml

from odflow.data.class_names import ClassMatcher
from odflow.data.convert import BadInput, clean_objects, load_image, resolve_label_map
from odflow.data.example import ImageAnnotation
from odflow.data.records import RecordWriter
from odflow.data.summary import DatasetSummary
from odflow.errors import OdflowError

log = logging.getLogger(__name__)

#: Image files a record can hold (``image/format`` jpeg or png).
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
#: Other image types Ultralytics reads; found ones are reported, not silently left out.
OTHER_IMAGE_SUFFIXES = (".bmp", ".tif", ".tiff", ".webp", ".dng", ".mpo", ".pfm", ".heic")
#: Normalised coordinates may overshoot [0, 1] by rounding; more is an error.
_TOLERANCE = 1e-3
MALFORMED = "malformed label file"


@dataclass
class YoloData:
    """What a ``data.yaml`` says, with its paths resolved."""

    yaml_path: Path
    names: list[str]
    splits: dict[str, list[Path]]    # "train"/"val" -> image folders


def _names(raw, where: str) -> list[str]:
    """``names`` as a list by class id: a list, or a dict ``{0: a, 1: b}`` with ids 0..N-1."""
    if isinstance(raw, list):
        names = raw
    elif isinstance(raw, dict):
        try:
            ids = sorted(int(k) for k in raw)
        except (TypeError, ValueError):
            raise OdflowError(f"{where}: names: the keys must be class ids 0, 1, ...; found "
                              f"{list(raw)}") from None
        if ids != list(range(len(ids))):
            raise OdflowError(f"{where}: names: the class ids must be 0..{len(ids) - 1} without "
                              f"gaps; found {ids}")
        by_id = {int(k): v for k, v in raw.items()}
        names = [by_id[i] for i in ids]
    else:
        raise OdflowError(f"{where}: names: expected a list or a mapping id -> name, found "
                          f"{raw!r}")
    for i, name in enumerate(names):
        if not isinstance(name, str | int | float) or isinstance(name, bool) or str(name) == "":
            raise OdflowError(f"{where}: names: class {i} has no usable name ({name!r})")
    return [str(name) for name in names]


def _resolve(entry: str, root: Path | None, yaml_dir: Path, where: str) -> Path:
    """The folder a ``train``/``val`` entry means (see the module docstring); logs which.

    Candidates in order: against ``path`` (when the yaml sets it), against the yaml's folder,
    then its parent; for a ``../`` entry, each of those again without the ``../``.
    """
    if Path(entry).is_absolute():
        candidates = [Path(entry)]
    else:
        bases = [b for b in (root, yaml_dir, yaml_dir.parent) if b is not None]
        candidates = [base / entry for base in bases]
        if entry.startswith("../"):
            candidates += [base / entry[3:] for base in bases]
    for candidate in candidates:
        if candidate.exists():
            if candidate.suffix == ".txt":
                raise OdflowError(f"{where}: {entry!r} is a list file ({candidate}); odflow "
                                  "reads folders of images: give the folder instead")
            log.info("%s: %r resolved to %s%s", where, entry, candidate,
                     "" if candidate == candidates[0] else
                     f" (not found at {candidates[0]}; Ultralytics' rules for relative paths)")
            return candidate
    tried = ", ".join(str(c) for c in candidates)
    raise OdflowError(f"{where}: {entry!r} not found (tried {tried}); set 'path' in the yaml to "
                      "the dataset root, or fix the entry")


def read_utf8(path: Path) -> str:
    """The text of ``path``, without a UTF-8 byte-order mark (Windows editors add one).

    Bytes that are not UTF-8 are an ``OdflowError`` naming the line, not a traceback: a label
    file saved in a legacy code page is a user's file to re-save.
    """
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = raw.count(b"\n", 0, error.start) + 1
        raise OdflowError(f"{path}:{line}: not UTF-8 text (byte 0x{raw[error.start]:02x}); save "
                          "the file as UTF-8") from None


def load_data_yaml(path: str | os.PathLike) -> YoloData:
    """Read and resolve an Ultralytics ``data.yaml``."""
    yaml_path = Path(path)
    where = str(yaml_path)
    try:
        data = yaml.safe_load(read_utf8(yaml_path))
    except FileNotFoundError:
        raise OdflowError(f"{where}: YOLO data.yaml not found") from None
    except IsADirectoryError:
        raise OdflowError(f"{where} is a directory; give the data.yaml file in it") from None
    except OSError as error:
        raise OdflowError(f"{where}: cannot read it: {error.strerror}") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        at = f":{mark.line + 1}:{mark.column + 1}" if mark else ""
        raise OdflowError(f"{where}{at}: not valid YAML ({getattr(error, 'problem', error)})"
                          ) from None
    if not isinstance(data, dict):
        raise OdflowError(f"{where}: expected a mapping with train, val and names")
    if "names" not in data:
        raise OdflowError(f"{where}: no 'names' (the class names, by id); add names: [a, b]")
    names = _names(data["names"], where)
    if "nc" in data and data["nc"] != len(names):
        raise OdflowError(f"{where}: nc is {data['nc']} but names has {len(names)} entries")
    root = None
    if data.get("path"):
        root = Path(str(data["path"]))
        if not root.is_absolute():
            root = yaml_path.parent / root
    splits: dict[str, list[Path]] = {}
    for split in ("train", "val"):
        entry = data.get(split, data.get("validation") if split == "val" else None)
        if not entry:
            raise OdflowError(f"{where}: no {split!r} entry (a folder of images, relative to "
                              "'path' or to this file)")
        entries = entry if isinstance(entry, list) else [entry]
        splits[split] = [_resolve(str(e), root, yaml_path.parent, f"{where}: {split}")
                         for e in entries]
    return YoloData(yaml_path, names, splits)


def label_path(image: Path) -> Path:
    """``a/images/b/c.jpg`` -> ``a/labels/b/c.txt``: the LAST ``images`` component replaced."""
    parts = list(image.parts)
    for i in range(len(parts) - 2, -1, -1):
        if parts[i] == "images":
            parts[i] = "labels"
            return Path(*parts).with_suffix(".txt")
    raise OdflowError(f"{image}: no 'images' folder in its path, so its label file cannot be "
                      "found (YOLO datasets keep images under images/ and labels under labels/)")


def find_images(folder: Path) -> tuple[list[Path], list[Path]]:
    """``(JPEG and PNG files, other image files)`` under ``folder``, sorted.

    Records hold JPEG or PNG; the other types Ultralytics reads are returned so that the
    caller reports them (an error, or counted and skipped), never left out unsaid.
    """
    if not folder.is_dir():
        raise OdflowError(f"{folder}: image folder not found")
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    images = [p for p in files if p.suffix.lower() in IMAGE_SUFFIXES]
    others = [p for p in files if p.suffix.lower() in OTHER_IMAGE_SUFFIXES]
    return images, others


def parse_label_file(path: Path, num_classes: int, names: list[str]
                     ) -> list[tuple[int, int, float, float, float, float]]:
    """``(line, class id, cx, cy, w, h)`` per box; a missing file is an image without boxes."""
    try:
        text = read_utf8(path)
    except FileNotFoundError:
        return []
    except OSError as error:
        raise OdflowError(f"{path}: cannot read the label file: {error.strerror}") from None
    boxes = []
    for number, line in enumerate(text.splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        where = f"{path}:{number}"
        if len(fields) != 5:
            kind = " (a segmentation polygon?)" if len(fields) > 5 and len(fields) % 2 == 1 else ""
            raise OdflowError(f"{where}: expected 'class cx cy w h' (5 numbers), found "
                              f"{len(fields)} fields{kind}: {line.strip()!r}")
        try:
            values = [float(f) for f in fields]
        except ValueError:
            values = []
        if not values or not all(math.isfinite(v) for v in values):
            raise OdflowError(f"{where}: not a number in {line.strip()!r}")
        cls = values[0]
        if cls != int(cls) or not 0 <= cls < num_classes:
            raise OdflowError(f"{where}: class {fields[0]} is not a class id 0..{num_classes - 1} "
                              f"(names: {names})")
        cx, cy, w, h = values[1:]
        if min(values[1:]) < -_TOLERANCE or max(values[1:]) > 1 + _TOLERANCE:
            raise OdflowError(f"{where}: cx cy w h = {' '.join(fields[1:])} are not normalised "
                              "to [0, 1] (pixels? YOLO labels divide by the image size)")
        if w < 0 or h < 0:
            raise OdflowError(f"{where}: negative width or height: {line.strip()!r}")
        boxes.append((number, int(cls), cx, cy, w, h))
    return boxes


def convert_yolo(image_folders: list[str | os.PathLike], output_path: str | os.PathLike, *,
                 label_map_path: str | os.PathLike, names: list[str] | None = None,
                 source: str | os.PathLike | None = None, num_shards: int = 1,
                 min_size: float = 0.0, drop_empty: bool = False, skip_bad: bool = False,
                 skip_unknown_classes: bool = False) -> DatasetSummary:
    """Convert the images under ``image_folders`` with their YOLO label files.

    ``names`` maps class ids to names (``data.yaml``'s); ``None`` uses the label map's order
    (class id ``i`` is the label map's ``i``-th name).  ``source`` is what the images were
    named by (the yaml), for messages and the summary.
    """
    label_map = resolve_label_map(label_map_path)
    if names is None:
        names = [item.name for item in sorted(label_map.items, key=lambda item: item.id)]
    folders = [Path(f) for f in image_folders]
    found = [find_images(folder) for folder in folders]
    images = [image for listed, _ in found for image in listed]
    others = [other for _, unlisted in found for other in unlisted]
    summary = DatasetSummary()
    bad = BadInput(summary, skip_bad)
    for other in others:
        bad(f"{other}: neither JPEG nor PNG ({len(others)} such image(s) in "
            f"{', '.join(map(str, folders))}); records hold JPEG or PNG: convert them first",
            "image neither JPEG nor PNG")
    labelled: list[tuple[Path, list]] = []
    for image in images:
        try:
            labelled.append((image, parse_label_file(label_path(image), len(names), names)))
        except OdflowError as error:
            bad(error, MALFORMED)
    used = sorted({box[1] for _, boxes in labelled for box in boxes})
    where = str(source or ", ".join(map(str, folders)))
    matcher = ClassMatcher(label_map, [names[i] for i in used], where,
                           skip_unknown=skip_unknown_classes,
                           option="yolo.skip_unknown_classes (--skip-unknown-classes)")
    options = {"source": "yolo", "data": str(source) if source else None,
               "images": [str(f) for f in folders], "names": names, "min_size": min_size,
               "drop_empty": drop_empty, "skip_unknown_classes": skip_unknown_classes}
    with RecordWriter(output_path, num_shards, summary, {"options": options},
                      source=source or folders[0]) as writer:
        for image_path, boxes in labelled:
            try:
                image = load_image(image_path, str(label_path(image_path)))
            except OdflowError as error:
                bad(error, "missing or unreadable image")
                continue
            kept = []
            for _, cls, cx, cy, w, h in boxes:
                label = matcher.id_of(names[cls], summary)
                if label is not None:
                    kept.append((names[cls], label,
                                 ((cx - w / 2) * image.width, (cy - h / 2) * image.height,
                                  (cx + w / 2) * image.width, (cy + h / 2) * image.height)))
            cleaned = clean_objects(kept, [k[2] for k in kept], image, min_size, summary,
                                    drop_empty)
            if cleaned is None:
                continue
            kept, normalised = cleaned
            relative = _relative_name(image_path, folders)
            writer.write(ImageAnnotation(
                encoded=image.encoded, image_format=image.image_format,
                filename=relative, source_id=relative, height=image.height,
                width=image.width, boxes=normalised, class_texts=[k[0] for k in kept],
                class_ids=[k[1] for k in kept]))
    return summary


def _relative_name(image: Path, folders: list[Path]) -> str:
    """The image's path below its folder (unique within a split, unlike the bare name)."""
    for folder in folders:
        if image.is_relative_to(folder):
            return image.relative_to(folder).as_posix()
    return image.name


def yolo_split_folders(data_yaml: str | os.PathLike | None, images: list[str], split: str
                       ) -> tuple[list[Path], list[str] | None]:
    """The image folders and names for ``split``: from a data.yaml, or the given folders."""
    if data_yaml:
        data = load_data_yaml(data_yaml)
        return data.splits[split], data.names
    if not images:
        raise OdflowError("give --data data.yaml, or --images FOLDER (a folder of images "
                          "beside a labels/ folder)")
    return [Path(i) for i in images], None



def label_folder(image_folder: Path) -> Path:
    """The labels folder of an images folder (``train/images`` -> ``train/labels``)."""
    return label_path(image_folder / "_").parent


def split_inputs(data_yaml: str, images: str, split: str) -> dict[str, str | list[str]]:
    """What the records rule of a YOLO split reads, for Snakemake to watch: the yaml, the
    image folders it names (or ``images``), and those folders' label folders that exist (a
    split without one is all negatives)."""
    folders, _ = yolo_split_folders(data_yaml, [images] if images else [], split)
    labels = [label_folder(folder) for folder in folders]
    inputs: dict[str, str | list[str]] = {
        "images": [str(f) for f in folders],
        "labels": [str(f) for f in labels if f.is_dir()],
    }
    if data_yaml:
        inputs["data"] = data_yaml
    return inputs
