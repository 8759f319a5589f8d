"""``odflow detect``: run an exported detector on images, write what it found.

    odflow detect --model exported_model --images photos/ --min-score 0.5 --output detections

writes, in ``--output``: ``images/<n>_<name>.jpg`` (boxes, label names, scores drawn),
``detections.json`` (COCO results: ``image_id``, ``bbox`` [x, y, w, h] in pixels,
``category_id``, ``score``; plus ``file_name``), ``images.json`` (the image ids), a CSV
(``filename,width,height,class,score,xmin,ymin,xmax,ymax``) and last ``done`` (a summary).
``--model`` is an export directory or its ``frozen_inference_graph.pb``, a ``saved_model/``,
a ``.tflite`` or an ``.onnx`` file.  ``--images`` is a folder (searched recursively), a glob,
an image, or TFRecord files (their images).  Unreadable images are reported and skipped.
"""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Sequence
from pathlib import Path

from odflow.errors import OdflowError
from odflow.utils.cli import run_cli, start_job

log = logging.getLogger(__name__)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="odflow detect", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True,
                        help="export directory, frozen graph .pb, saved_model/, .tflite or .onnx")
    parser.add_argument("--images", required=True,
                        help="folder, glob (quote it), image file or .record file(s)")
    parser.add_argument("--output", required=True, help="folder to write the results to")
    parser.add_argument("--min-score", "--min_score", type=float, default=0.5, dest="min_score",
                        help="keep detections scoring at least this (default 0.5)")
    parser.add_argument("--label-map", "--label_map", default=None, dest="label_map",
                        help="label map for class names (default: the one beside the model)")
    parser.add_argument("--no-annotate", action="store_true",
                        help="do not write annotated JPEGs")
    parser.add_argument("--log_file", "--log-file", default=None, dest="log_file",
                        help="also write the log to this file")
    return parser.parse_args(argv)


def class_names(label_map_path: Path | None, metadata: dict | None) -> dict[int, str]:
    from odflow import label_map as label_map_lib

    if label_map_path is not None:
        labels = label_map_lib.load(label_map_path)
        return {item.id: labels.display_name(item.id) for item in labels.items}
    if metadata and metadata.get("label_map"):
        return {int(e["id"]): e.get("display_name") or e["name"] for e in metadata["label_map"]}
    return {}


def run(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if not 0.0 <= args.min_score <= 1.0:
        raise OdflowError(f"--min-score {args.min_score}: give a score between 0 and 1")
    start_job(args.log_file)
    from tqdm import tqdm

    from odflow.detect import images as images_lib
    from odflow.detect.outputs import Results, annotated_name, write_annotated
    from odflow.detect.runners import load_detector
    from odflow.export import metadata as metadata_lib

    files = images_lib.list_sources(args.images)
    detector = load_detector(args.model)
    label_map = Path(args.label_map) if args.label_map else detector.label_map_path()
    if args.label_map and not label_map.is_file():
        raise OdflowError(f"--label-map {label_map} does not exist")
    names = class_names(label_map, metadata_lib.read(detector.path))
    output = Path(args.output)
    annotated_dir = output / "images"
    annotated_dir.mkdir(parents=True, exist_ok=True)
    results = Results(names)
    skipped: list[str] = []
    log.info("detecting with %s (%s) on %s", detector.path, detector.format, args.images)
    total = images_lib.count_images(files)
    for index, item in enumerate(tqdm(images_lib.iter_images(files), total=total,
                                      unit="img", desc="detect"), start=1):
        if item.image is None:
            log.warning("skipped unreadable image %s (%s)", item.name, item.error)
            skipped.append(item.name)
            continue
        detections = detector.detect(item.image).above(args.min_score)
        height, width = item.image.shape[:2]
        results.add(index, item.name, height, width, detections)
        if not args.no_annotate:
            write_annotated(annotated_dir / annotated_name(item.name, index), item.image,
                            detections, names)
    if not results.images:
        raise OdflowError(f"--images {args.images}: none of the {len(skipped)} images could be "
                          "read")
    results.write(output)
    summary = {"model": str(detector.path), "format": detector.format, "images": args.images,
               "min_score": args.min_score, "num_images": len(results.images),
               "num_detections": len(results.coco), "skipped": skipped}
    from odflow.utils.atomic import atomic_write_text

    atomic_write_text(output / "done", json.dumps(summary, indent=2) + "\n")
    log.info("%d images, %d detections with score >= %g, written to %s", len(results.images),
             len(results.coco), args.min_score, output)
    if skipped:
        log.warning("skipped %d unreadable image(s): %s", len(skipped), ", ".join(skipped[:10]))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run_cli(run, argv)
