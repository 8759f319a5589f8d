"""COCO JSON (``instances_*.json``, Roboflow's ``_annotations.coco.json``...) -> records.

The format labelling tools and dataset hubs export (CVAT, Label Studio, Roboflow, FiftyOne):
one JSON object with ``images`` (``id``, ``file_name``, ``width``, ``height``),
``annotations`` (``image_id``, ``category_id``, ``bbox`` ``[x, y, width, height]`` in pixels,
``iscrowd``) and ``categories`` (``id``, ``name``).  What becomes of each part:

- ``category_id`` -> the label map's id **by name** (``odflow.data.class_names``): the file's
  own ids are arbitrary (COCO's skip numbers, Roboflow's start at 0 with a supercategory).
  A category no annotation uses (Roboflow's supercategory entry) is ignored.
- ``iscrowd`` -> ``image/object/is_crowd``, which the evaluator passes on to COCO's own rules
  (a crowd box is neither missed nor a false positive).
- ``segmentation``, ``area``, ``info``, ``licenses``: ignored.  An image with no annotation is
  kept as a negative.
- ``source_id`` is the image's COCO id (as the API's ``create_coco_tf_record.py`` wrote it),
  so detections can be matched back to the JSON; ``filename`` its ``file_name``.

Memory: the file is streamed with ijson (its C parser and item builder) and only what the
records need is kept (a tuple per box); ``json.load`` builds every polygon point as a Python
float and needs several times the file's size.  ``benchmarks/coco_json_memory.md`` measures
both.

Bad input names the file and the JSON path (``annotations[12].bbox``); with ``skip_bad`` an
image with a bad annotation is left out whole (written with a box missing, it would teach
the model that the object is background) and counted.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from odflow.data.class_names import ClassMatcher
from odflow.data.convert import BadInput, clean_objects, load_image, resolve_label_map
from odflow.data.example import ImageAnnotation
from odflow.data.records import RecordWriter
from odflow.data.summary import DatasetSummary
from odflow.errors import OdflowError

log = logging.getLogger(__name__)

SECTIONS = ("images", "annotations", "categories")
#: Above this size a malformed file is not parsed a second time (by the standard library)
#: just to give the line and column of the error; ijson's own message shows the spot.
_LINE_LOOKUP_MAX_BYTES = 256 * 1024 * 1024
MALFORMED = "malformed annotation"


@dataclass(slots=True)
class CocoImage:
    """One entry of ``images`` and the boxes of its annotations."""

    index: int                       # position in ``images`` (for messages)
    image_id: int | str
    file_name: str
    width: int | None
    height: int | None
    # (annotation index, category id, x, y, w, h, iscrowd): small tuples, not dicts.
    boxes: list[tuple[int, int, float, float, float, float, int]] = field(default_factory=list)
    broken: bool = False             # an annotation of it was bad (skip_bad: left out)


@dataclass
class CocoDataset:
    path: str
    images: list[CocoImage]
    categories: dict[int, str]       # id -> name, in the file's order

    def used_category_names(self) -> list[str]:
        """Names of the categories some annotation uses, in ``categories`` order."""
        used = {box[1] for image in self.images for box in image.boxes}
        return [name for cid, name in self.categories.items() if cid in used]


# -- JSON values ---------------------------------------------------------------------------------


def _describe(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _integer(value: Any, where: str) -> int:
    """An integer (``3`` or ``3.0``); booleans and other values are an error at ``where``."""
    if (isinstance(value, bool) or not isinstance(value, int | float)
            or not math.isfinite(value) or value != int(value)):
        raise OdflowError(f"{where}: expected an integer, found {_describe(value)}")
    return int(value)


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise OdflowError(f"{where}: expected a number, found {_describe(value)}")
    return float(value)


def _object(value: Any, where: str) -> dict:
    if not isinstance(value, dict):
        raise OdflowError(f"{where}: expected an object {{...}}, found {_describe(value)}")
    return value


def _field(item: dict, key: str, where: str) -> Any:
    if key not in item:
        raise OdflowError(f"{where}: missing {key!r} (has {', '.join(map(repr, item)) or 'none'})")
    return item[key]


# -- streaming the three arrays ------------------------------------------------------------------


_BOM = b"\xef\xbb\xbf"


def _open_json(path: str):
    """The file opened for ijson, past a UTF-8 byte-order mark (Windows tools write one; JSON
    forbids it but Python's and browsers' readers accept it, so users cannot see it)."""
    handle = open(path, "rb")  # noqa: SIM115 - returned to the caller's with
    if handle.read(len(_BOM)) != _BOM:
        handle.seek(0)
    return handle


def _not_utf8(path: str, raw: bytes, error: UnicodeDecodeError) -> OdflowError:
    """Where the first non-UTF-8 byte is (line and column), and what to do."""
    line = raw.count(b"\n", 0, error.start) + 1
    column = error.start - (raw.rfind(b"\n", 0, error.start) + 1) + 1
    return OdflowError(f"{path}:{line}:{column}: not UTF-8 text (byte 0x{raw[error.start]:02x}; "
                       "JSON files are UTF-8); save or export the file as UTF-8")


def _malformed(path: str, error: Exception) -> OdflowError:
    """The parse error with the line and column (from the standard parser, small files)."""
    try:
        if os.path.getsize(path) <= _LINE_LOOKUP_MAX_BYTES:
            with open(path, "rb") as handle:
                raw = handle.read()
            body = raw.removeprefix(_BOM)
            try:
                text = body.decode("utf-8")
            except UnicodeDecodeError as bad_byte:
                offset = len(raw) - len(body)
                bad_byte.start += offset
                return _not_utf8(path, raw, bad_byte)
            json.loads(text)
    except json.JSONDecodeError as precise:
        return OdflowError(f"{path}:{precise.lineno}:{precise.colno}: not valid JSON "
                           f"({precise.msg}); fix the file or export it again")
    except OSError:
        pass
    if "UTF8" in str(error):  # a file too large to read twice: ijson's words, made plain
        return OdflowError(f"{path}: not UTF-8 text ({str(error).strip()}); save or export the "
                           "file as UTF-8")
    return OdflowError(f"{path}: not valid JSON: {str(error).strip()}; fix the file or export "
                       "it again")


def iter_sections(path: str | os.PathLike) -> Iterator[tuple[str, int, Any]]:
    """``(section, index, item)`` for every item of ``images``, ``annotations``, ``categories``.

    One pass per section with ijson's C item builder: three C-speed passes take about half
    the time of one pass whose events go through Python (measured in
    benchmarks/coco_json_memory.md), and each item is built alone (a polygon lives only
    while its annotation is looked at).  A section that yields nothing is checked for being
    missing or not a list (``_check_section``), which is an error.
    """
    import ijson

    source = os.fspath(path)
    for section in SECTIONS:
        count = 0
        try:
            with _open_json(source) as handle:
                for item in ijson.items(handle, f"{section}.item", use_float=True):
                    yield section, count, item
                    count += 1
        except FileNotFoundError:
            raise OdflowError(f"{source}: COCO JSON file not found") from None
        except IsADirectoryError:
            raise OdflowError(f"{source} is a directory; give the COCO JSON file in it "
                              "(e.g. _annotations.coco.json)") from None
        except ijson.JSONError as error:
            raise _malformed(source, error) from None
        if count == 0:
            _check_section(source, section)


def _check_section(source: str, section: str) -> None:
    """An empty ``section`` is fine only as an empty list in a JSON object; else an error."""
    import ijson

    key = None
    with _open_json(source) as handle:
        for prefix, event, value in ijson.parse(handle):
            if prefix == "":
                if event == "map_key":
                    key = value
                elif event not in ("start_map", "end_map"):
                    raise OdflowError(f"{source}: the file is a JSON {_json_type(event)}; a "
                                      "COCO file is an object with images, annotations and "
                                      "categories")
            elif prefix == section and key == section:
                if event != "start_array":
                    raise OdflowError(f"{source}: {section!r} must be a list, found a JSON "
                                      f"{_json_type(event)}")
                return
    raise OdflowError(f"{source}: no {section!r} list; a COCO detection file has images, "
                      "annotations and categories (an image_info file without annotations "
                      "cannot train a detector)")


def _json_type(event: str) -> str:
    return {"start_map": "object", "start_array": "list", "string": "string",
            "number": "number", "integer": "number", "double": "number",
            "boolean": "boolean", "null": "null"}.get(event, event)


# -- reading -------------------------------------------------------------------------------------


def _read_image(item: Any, index: int, where: str) -> CocoImage:
    item = _object(item, where)
    image_id = _field(item, "id", where)
    if isinstance(image_id, bool) or not isinstance(image_id, int | str | float):
        raise OdflowError(f"{where}.id: expected an integer or a string, found "
                          f"{_describe(image_id)}")
    if isinstance(image_id, float):
        image_id = _integer(image_id, f"{where}.id")
    file_name = _field(item, "file_name", where)
    if not isinstance(file_name, str) or not file_name:
        raise OdflowError(f"{where}.file_name: expected a file name, found "
                          f"{_describe(file_name)}")
    size = []
    for key in ("width", "height"):
        value = item.get(key)
        value = None if value is None else _integer(value, f"{where}.{key}")
        if value is not None and value <= 0:
            raise OdflowError(f"{where}.{key}: must be positive, found {value}")
        size.append(value)
    return CocoImage(index, image_id, file_name, *size)


def _read_annotation(item: dict, where: str
                     ) -> tuple[Any, tuple[int, float, float, float, float, int]]:
    """``(image_id, (category id, x, y, w, h, iscrowd))`` of one annotation."""
    image_id = _field(item, "image_id", where)
    if isinstance(image_id, float):
        image_id = _integer(image_id, f"{where}.image_id")
    category = _integer(_field(item, "category_id", where), f"{where}.category_id")
    bbox = _field(item, "bbox", where)
    if not isinstance(bbox, list) or len(bbox) != 4:
        raise OdflowError(f"{where}.bbox: expected [x, y, width, height] in pixels, found "
                          f"{_describe(bbox)}")
    x, y, w, h = (_number(v, f"{where}.bbox[{i}]") for i, v in enumerate(bbox))
    if w < 0 or h < 0:
        raise OdflowError(f"{where}.bbox: negative width or height ({_describe(bbox)}); COCO "
                          "boxes are [x, y, width, height], not corners")
    crowd = _integer(item.get("iscrowd", 0), f"{where}.iscrowd")
    if crowd not in (0, 1):
        raise OdflowError(f"{where}.iscrowd: expected 0 or 1, found {crowd}")
    return image_id, (category, x, y, w, h, crowd)


def read_coco(path: str | os.PathLike, bad: BadInput) -> CocoDataset:
    """Read the parts of a COCO file the records need; bad items go through ``bad``."""
    source = os.fspath(path)
    images: list[CocoImage] = []
    by_id: dict[Any, CocoImage] = {}
    by_name: dict[str, CocoImage] = {}
    categories: dict[int, str] = {}
    # Annotations may come before their images in the file: held by image id until the end.
    pending: dict[Any, list[tuple[int, tuple]]] = {}
    broken_ids: set = set()
    for section, index, item in iter_sections(source):
        where = f"{source}: {section}[{index}]"
        if section == "images":
            image = _read_image(item, index, where)
            if image.image_id in by_id:
                first = by_id[image.image_id].index
                raise OdflowError(f"{where}.id: duplicate image id {image.image_id!r} (also "
                                  f"images[{first}]); each image needs its own id")
            if image.file_name in by_name:
                first = by_name[image.file_name].index
                raise OdflowError(f"{where}.file_name: {image.file_name!r} is also the file of "
                                  f"images[{first}]; list each image once (give its "
                                  "annotations the one image id)")
            by_id[image.image_id] = image
            by_name[image.file_name] = image
            images.append(image)
        elif section == "categories":
            item = _object(item, where)
            cid = _integer(_field(item, "id", where), f"{where}.id")
            name = _field(item, "name", where)
            if not isinstance(name, str) or not name:
                raise OdflowError(f"{where}.name: expected a name, found {_describe(name)}")
            if cid in categories:
                raise OdflowError(f"{where}.id: duplicate category id {cid}")
            categories[cid] = name
        else:
            try:
                item = _object(item, where)
                image_id, box = _read_annotation(item, where)
            except OdflowError as error:
                if isinstance(item, dict) and "image_id" in item:
                    try:
                        broken_ids.add(item["image_id"])
                    except TypeError:  # an unhashable image_id
                        pass
                bad(error, MALFORMED)
                continue
            pending.setdefault(image_id, []).append((index, box))
    for image_id in list(pending):  # emptied as it goes: the boxes are held once, not twice
        boxes = pending.pop(image_id)
        image = by_id.get(image_id)
        if image is None:
            index = boxes[0][0]
            bad(f"{source}: annotations[{index}].image_id: no image has the id {image_id!r} "
                f"({len(boxes)} annotation(s) name it); fix the id or add the image to "
                "'images'", MALFORMED)
            continue
        image.boxes = [(index, *box) for index, box in boxes]
    for image in images:
        if image.image_id in broken_ids:
            image.broken = True
        for index, category, *_ in image.boxes:
            if category not in categories:
                bad(f"{source}: annotations[{index}].category_id: {category} is not the id of "
                    f"any entry of 'categories' (ids {sorted(categories)})", MALFORMED)
                image.broken = True
                break
    return CocoDataset(source, images, categories)


def check_inside(box: tuple[float, float, float, float], width: int, height: int,
                 where: str) -> None:
    """A box wholly outside its image is an error: the wrong image, or not pixels.

    A box that only crosses the border is clipped (counted), as exporters often round one
    pixel past the edge.
    """
    x, y, w, h = box
    if x >= width or y >= height or x + w <= 0 or y + h <= 0:
        raise OdflowError(
            f"{where}: box [x, y, width, height] = [{x:g}, {y:g}, {w:g}, {h:g}] lies outside "
            f"the {width}x{height} image; COCO boxes are in pixels of that image (fix the box, "
            "or the image it belongs to)")


# -- converting ----------------------------------------------------------------------------------


def default_images_dir(json_path: str | os.PathLike) -> Path:
    """Roboflow's layout: ``train/_annotations.coco.json`` with the images beside it."""
    return Path(json_path).parent


def convert_coco(json_path: str | os.PathLike, images_dir: str | os.PathLike | None,
                 output_path: str | os.PathLike, *, label_map_path: str | os.PathLike,
                 num_shards: int = 1, min_size: float = 0.0, drop_empty: bool = False,
                 skip_bad: bool = False, skip_unknown_classes: bool = False
                 ) -> DatasetSummary:
    """Convert a COCO JSON file with its image folder (default: the JSON's folder)."""
    label_map = resolve_label_map(label_map_path)
    images_dir = Path(images_dir) if images_dir else default_images_dir(json_path)
    if not images_dir.is_dir():
        raise OdflowError(f"{images_dir}: image directory not found (the folder the "
                          f"file_name entries of {json_path} are relative to)")
    summary = DatasetSummary()
    bad = BadInput(summary, skip_bad)
    dataset = read_coco(json_path, bad)
    names = dataset.used_category_names()
    matcher = ClassMatcher(label_map, names, str(json_path), skip_unknown=skip_unknown_classes,
                           option="coco.skip_unknown_classes (--skip-unknown-classes)")
    ignored = [name for name in dataset.categories.values() if name not in names]
    if ignored:
        log.info("%s: categories no annotation uses are ignored: %s", json_path, ignored)
    options = {"source": "coco", "json": str(json_path), "images": str(images_dir),
               "min_size": min_size, "drop_empty": drop_empty,
               "skip_unknown_classes": skip_unknown_classes}
    extra = {"options": options, "ignored_categories": ignored}
    with RecordWriter(output_path, num_shards, summary, extra, source=json_path) as writer:
        for entry in dataset.images:
            if entry.broken:
                continue  # counted when its bad annotation was read
            where = f"{json_path}: images[{entry.index}]"
            try:
                image = load_image(images_dir / entry.file_name, where)
                if (entry.width, entry.height) not in ((image.width, image.height),
                                                       (None, None)):
                    raise OdflowError(
                        f"{where}: the JSON gives {entry.file_name} the size "
                        f"{entry.width}x{entry.height} but the image is "
                        f"{image.width}x{image.height}; were the boxes drawn on a resized "
                        "copy?")
                for index, _, *box, _ in entry.boxes:
                    check_inside(tuple(box), image.width, image.height,
                                 f"{json_path}: annotations[{index}].bbox")
            except OdflowError as error:
                bad(error, "bad image or box")
                continue
            kept = []
            for _, category, x, y, w, h, crowd in entry.boxes:
                name = dataset.categories[category]
                label = matcher.id_of(name, summary)
                if label is not None:
                    kept.append((name, label, crowd, (x, y, x + w, y + h)))
            cleaned = clean_objects(kept, [k[3] for k in kept], image, min_size, summary,
                                    drop_empty)
            if cleaned is None:
                continue
            kept, boxes = cleaned
            writer.write(ImageAnnotation(
                encoded=image.encoded, image_format=image.image_format,
                filename=entry.file_name, source_id=str(entry.image_id),
                height=image.height, width=image.width, boxes=boxes,
                class_texts=[k[0] for k in kept], class_ids=[k[1] for k in kept],
                is_crowd=[k[2] for k in kept]))
    return summary
