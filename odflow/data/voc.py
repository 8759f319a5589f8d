"""Pascal VOC XML folders -> records (``Annotations/*.xml`` with an image directory).

VOC is the API's most common input besides CSV; its XML carries ``difficult``, ``truncated``
and ``pose``, which go to ``image/object/difficult``, ``truncated`` and ``view`` as the API's
own ``create_pascal_tf_record.py`` wrote them.  Coordinates are used as given (pixels, VOC's
1-based corners divided by the image size, as that script did).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from xml.etree import ElementTree

from odflow.data.convert import (
    BadInput,
    check_box_order,
    class_id,
    clean_objects,
    load_image,
    resolve_label_map,
)
from odflow.data.example import ImageAnnotation
from odflow.data.records import RecordWriter
from odflow.data.summary import DatasetSummary
from odflow.errors import OdflowError

log = logging.getLogger(__name__)

DIFFICULT_DROPPED = "difficult (--drop-difficult)"


def _text(element: ElementTree.Element, tag: str, where: str, default: str | None = None) -> str:
    child = element.find(tag)
    if child is None or child.text is None or not child.text.strip():
        if default is not None:
            return default
        raise OdflowError(f"{where}: missing <{tag}>")
    return child.text.strip()


def _number(element: ElementTree.Element, tag: str, where: str) -> float:
    value = _text(element, tag, where)
    try:
        return float(value)
    except ValueError:
        raise OdflowError(f"{where}: <{tag}> is {value!r}, not a number") from None


def parse_voc_xml(path: str | os.PathLike) -> dict:
    """One annotation file -> ``{filename, width, height, objects: [{name, box, ...}]}``."""
    where = str(path)
    try:
        root = ElementTree.parse(path).getroot()
    except ElementTree.ParseError as error:
        line, _column = error.position
        raise OdflowError(f"{where}:{line}: not well-formed XML ({error.msg})") from None
    except FileNotFoundError:
        raise OdflowError(f"{where}: annotation file not found") from None
    size = root.find("size")
    objects = []
    for index, obj in enumerate(root.findall("object")):
        at = f"{where}: object {index + 1}"
        box = obj.find("bndbox")
        if box is None:
            raise OdflowError(f"{at}: missing <bndbox>")
        corners = [_number(box, tag, at) for tag in ("xmin", "ymin", "xmax", "ymax")]
        check_box_order(corners, at)
        objects.append({
            "name": _text(obj, "name", at),
            "box": corners,
            "difficult": int(float(_text(obj, "difficult", at, "0"))),
            "truncated": int(float(_text(obj, "truncated", at, "0"))),
            "pose": _text(obj, "pose", at, "Unspecified"),
        })
    return {
        "filename": _text(root, "filename", where),
        "width": int(_number(size, "width", where)) if size is not None else None,
        "height": int(_number(size, "height", where)) if size is not None else None,
        "objects": objects,
    }


def convert_voc(annotations_dir: str | os.PathLike, images_dir: str | os.PathLike,
                output_path: str | os.PathLike, *,
                label_map_path: str | os.PathLike, image_set: str | os.PathLike | None = None,
                num_shards: int = 1, drop_difficult: bool = False, min_size: float = 0.0,
                drop_empty: bool = False, skip_bad: bool = False) -> DatasetSummary:
    """Convert the XML files of ``annotations_dir`` (or those an image-set file lists)."""
    label_map = resolve_label_map(label_map_path)
    annotations_dir, images_dir = Path(annotations_dir), Path(images_dir)
    for directory, what in ((annotations_dir, "annotation"), (images_dir, "image")):
        if not directory.is_dir():
            raise OdflowError(f"{directory}: {what} directory not found")
    if image_set:
        try:
            names = [line.split()[0] for line in Path(image_set).read_text().splitlines()
                     if line.strip()]
        except FileNotFoundError:
            raise OdflowError(f"{image_set}: image set file not found") from None
        xml_paths = [annotations_dir / f"{name}.xml" for name in names]
    else:
        xml_paths = sorted(annotations_dir.glob("*.xml"))
    if not xml_paths:
        raise OdflowError(f"{annotations_dir}: no .xml annotation files")
    summary = DatasetSummary()
    bad = BadInput(summary, skip_bad)
    options = {"source": "voc", "annotations": str(annotations_dir), "images": str(images_dir),
               "image_set": str(image_set) if image_set else None,
               "drop_difficult": drop_difficult, "min_size": min_size, "drop_empty": drop_empty}
    with RecordWriter(output_path, num_shards, summary, {"options": options},
                      source=image_set or annotations_dir) as writer:
        for xml_path in xml_paths:
            try:
                entry = parse_voc_xml(xml_path)
                objects = entry["objects"]
                if drop_difficult:
                    summary.drop_boxes(DIFFICULT_DROPPED, sum(o["difficult"] for o in objects))
                    objects = [o for o in objects if not o["difficult"]]
                ids = [class_id(label_map, o["name"], f"{xml_path}: object {i + 1}")
                       for i, o in enumerate(objects)]
                image = load_image(images_dir / entry["filename"], str(xml_path))
            except OdflowError as error:
                bad(error, "bad annotation, image or class")
                continue
            cleaned = clean_objects(list(zip(objects, ids, strict=True)),
                                    [o["box"] for o in objects], image, min_size, summary,
                                    drop_empty)
            if cleaned is None:
                continue
            kept_ids, boxes = cleaned
            kept = [o for o, _ in kept_ids]
            writer.write(ImageAnnotation(
                encoded=image.encoded, image_format=image.image_format,
                filename=entry["filename"], source_id=entry["filename"],
                height=image.height, width=image.width, boxes=boxes,
                class_texts=[o["name"] for o in kept],
                class_ids=[i for _, i in kept_ids],
                difficult=[o["difficult"] for o in kept],
                truncated=[o["truncated"] for o in kept],
                view=[o["pose"] for o in kept]))
    return summary
