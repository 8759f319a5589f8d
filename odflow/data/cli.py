"""``odflow data`` (also ``python -m odflow.data``): make record files, or check them.

    python -m odflow.data wider --root data/WIDER --split train -o datasets/train.record \\
        --label-map datasets/label_map.pbtxt
    python -m odflow.data csv --csv train_labels.csv --images images/ -o datasets/train.record \\
        --label-map datasets/label_map.pbtxt
    python -m odflow.data voc --annotations VOC/Annotations --images VOC/JPEGImages ...
    python -m odflow.data coco --json train/_annotations.coco.json -o datasets/train.record ...
    python -m odflow.data yolo --data data.yaml --split train -o datasets/train.record ...
    python -m odflow.data synthetic --split train --num-images 400 --seed 1 -o datasets/train.record
    python -m odflow.data inspect datasets/train.record --label-map datasets/label_map.pbtxt
    python -m odflow.data validate --decode datasets/train.record  # (--decode is the default)
    python -m odflow.data preview --pipeline_config ckpt/ssd_mobilenet_v1_coco.config \\
        --output_dir plots/data
"""

from __future__ import annotations

import argparse
import json
import logging
import os
from collections.abc import Sequence

from odflow.data import preview
from odflow.errors import OdflowError
from odflow.utils.atomic import atomic_write_text
from odflow.utils.cli import run_cli, setup_logging

log = logging.getLogger("odflow.data")


def _add_output_options(parser: argparse.ArgumentParser, label_map_required: bool) -> None:
    parser.add_argument("-o", "--output", required=True,
                        help="record file to write (with --num-shards N: OUTPUT-0000i-of-0000N); "
                             "a summary goes to OUTPUT.summary.json")
    parser.add_argument("--num-shards", type=int, default=1, metavar="N",
                        help="split the output into N shards (default 1: one file)")
    parser.add_argument("--label-map", required=label_map_required, metavar="PBTXT",
                        help="label map giving the class ids"
                             + ("" if label_map_required else
                                " (default: one class, CLASS-NAME, with id 1)"))


def _add_filter_options(parser: argparse.ArgumentParser, empty_word: str = "boxes") -> None:
    parser.add_argument("--min-size", type=float, default=0.0, metavar="PIXELS",
                        help="drop boxes narrower or shorter than this after clipping (default 0)")
    parser.add_argument("--drop-empty", action="store_true",
                        help=f"leave out images with no {empty_word} (default: keep them as "
                             "negatives; the image files are never touched)")
    parser.add_argument("--skip-bad", action="store_true",
                        help="skip malformed lines, missing or undecodable images and unknown "
                             "classes with a counted warning instead of failing")


def _add_class_matching_options(parser: argparse.ArgumentParser) -> None:
    """The options of the converters whose datasets carry their own class names (COCO, YOLO:
    ``odflow.data.class_names`` matches them to the required label map by name)."""
    parser.add_argument("--skip-unknown-classes", action="store_true",
                        help="drop (and count) the boxes of dataset classes that are not in "
                             "the label map, instead of failing")
    _add_output_options(parser, label_map_required=True)
    _add_filter_options(parser)


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="odflow data",
        description="Convert datasets to TF Object Detection API records, or check records.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    wider = commands.add_parser(
        "wider", help="WIDER FACE as downloaded",
        description="Convert a WIDER FACE split from its download layout: "
                    "wider_face_split/wider_face_<split>_bbx_gt.txt and WIDER_<split>/images/.")
    wider.add_argument("--root", help="directory holding wider_face_split/ and WIDER_<split>/")
    wider.add_argument("--split", default="train", help="train or val (with --root)")
    wider.add_argument("--annotations", help="the *_bbx_gt.txt file (instead of --root)")
    wider.add_argument("--images", help="the WIDER_<split>/images directory (instead of --root)")
    wider.add_argument("--class-name", default="face",
                       help="class name of the faces; its id comes from the label map")
    wider.add_argument("--drop-invalid", action="store_true",
                       help="drop faces flagged invalid by the dataset's authors")
    _add_output_options(wider, label_map_required=False)
    _add_filter_options(wider, "faces")

    csv_parser = commands.add_parser(
        "csv", help="the tutorial's CSV (filename,width,height,class,xmin,ymin,xmax,ymax)",
        description="Convert a CSV with one row per box "
                    "(filename,width,height,class,xmin,ymin,xmax,ymax; pixels).")
    csv_parser.add_argument("--csv", required=True, help="the CSV file")
    csv_parser.add_argument("--images", required=True, help="directory the filenames are in")
    _add_output_options(csv_parser, label_map_required=True)
    _add_filter_options(csv_parser)

    voc = commands.add_parser("voc", help="Pascal VOC XML folders",
                              description="Convert Pascal VOC XML annotations.")
    voc.add_argument("--annotations", required=True, help="directory of .xml files")
    voc.add_argument("--images", required=True, help="directory of the images (JPEGImages)")
    voc.add_argument("--image-set", help="optional list of names (ImageSets/Main/train.txt)")
    voc.add_argument("--drop-difficult", action="store_true",
                     help="drop objects flagged difficult (default: keep them, flagged)")
    _add_output_options(voc, label_map_required=True)
    _add_filter_options(voc)

    coco = commands.add_parser(
        "coco", help="COCO JSON (instances_*.json, Roboflow's _annotations.coco.json)",
        description="Convert a COCO JSON detection file: bbox [x, y, width, height] in pixels, "
                    "categories matched to the label map by name, iscrowd kept as "
                    "image/object/is_crowd, segmentation ignored.")
    coco.add_argument("--json", required=True, help="the COCO JSON file")
    coco.add_argument("--images", help="folder the file_name entries are relative to "
                                       "(default: the JSON's folder, Roboflow's layout)")
    _add_class_matching_options(coco)

    yolo = commands.add_parser(
        "yolo", help="YOLO txt labels (Ultralytics data.yaml, or images/ + labels/ folders)",
        description="Convert YOLO labels (one 'class cx cy w h' line per box, normalised), "
                    "found by replacing the last 'images' path component with 'labels'. "
                    "An image without a label file is a negative.")
    yolo.add_argument("--data", help="Ultralytics data.yaml (path, train, val, names)")
    yolo.add_argument("--split", default="train", choices=("train", "val"),
                      help="which of the yaml's entries to convert (with --data)")
    yolo.add_argument("--images", action="append", default=[], metavar="FOLDER",
                      help="instead of --data: a folder of images (repeatable); class id i is "
                           "the label map's i-th class")
    _add_class_matching_options(yolo)

    synthetic = commands.add_parser(
        "synthetic", help="synthetic faces for the offline demo",
        description="Generate synthetic face images (deterministic for a seed).")
    synthetic.add_argument("--split", default="train",
                           help="split name; train and val differ for the same seed")
    synthetic.add_argument("--num-images", type=int, default=None,
                           help="how many images (default: 400 for train, 100 otherwise)")
    synthetic.add_argument("--seed", type=int, default=1)
    synthetic.add_argument("--height", type=int, default=256)
    synthetic.add_argument("--width", type=int, default=256)
    synthetic.add_argument("--class-name", default="face")
    _add_output_options(synthetic, label_map_required=False)

    for name in ("inspect", "validate"):
        check = commands.add_parser(
            name, help="check record files" + (" (same as inspect)" if name == "validate" else ""),
            description="Read every record: counts, box statistics, and errors (undecodable "
                        "images, boxes outside [0, 1] or inverted, unknown labels, missing "
                        "keys). Exits non-zero when there are errors.")
        check.add_argument("records", nargs="+", help="record files or globs")
        check.add_argument("--label-map", help="check the labels against this label map")
        check.add_argument("--json", metavar="FILE", help="also write the full report as JSON")
        check.add_argument("--decode", action=argparse.BooleanOptionalAction, default=True,
                           help="decode every image fully with TensorFlow's decoder, as "
                                "training does (the default); --no-decode reads image headers "
                                "only (faster; misses truncated or corrupt images)")
    preview.add_parser(commands)
    for subparser in commands.choices.values():
        subparser.add_argument("--log-file", help="also log to this file (Snakemake's log:)")
    return parser


def _log_summary(summary, output: str) -> None:
    data = summary.to_dict()
    log.info("%s: %d images, %d boxes; dropped boxes %s, dropped images %s, %d warnings",
             output, data["images"], data["boxes"], data["dropped_boxes"],
             data["dropped_images"], data["num_warnings"])


def run(argv: Sequence[str] | None = None) -> int:
    args = _build_parser().parse_args(argv)
    setup_logging(args.log_file)
    if args.command == "preview":
        return preview.run_preview(args)
    if args.command == "wider":
        from odflow.data.wider_face import convert_wider, split_paths

        if args.root:
            annotations, images = split_paths(args.root, args.split)
        elif args.annotations and args.images:
            annotations, images = args.annotations, args.images
        else:
            raise OdflowError("give --root (and --split), or both --annotations and --images")
        summary = convert_wider(annotations, images, args.output,
                                label_map_path=args.label_map, class_name=args.class_name,
                                num_shards=args.num_shards, drop_invalid=args.drop_invalid,
                                min_size=args.min_size, drop_empty=args.drop_empty,
                                skip_bad=args.skip_bad)
    elif args.command == "csv":
        from odflow.data.csv_source import convert_csv

        summary = convert_csv(args.csv, args.images, args.output, label_map_path=args.label_map,
                              num_shards=args.num_shards, min_size=args.min_size,
                              drop_empty=args.drop_empty, skip_bad=args.skip_bad)
    elif args.command == "voc":
        from odflow.data.voc import convert_voc

        summary = convert_voc(args.annotations, args.images, args.output,
                              label_map_path=args.label_map, image_set=args.image_set,
                              num_shards=args.num_shards, drop_difficult=args.drop_difficult,
                              min_size=args.min_size, drop_empty=args.drop_empty,
                              skip_bad=args.skip_bad)
    elif args.command == "coco":
        from odflow.data.coco_source import convert_coco

        summary = convert_coco(args.json, args.images, args.output,
                               label_map_path=args.label_map, num_shards=args.num_shards,
                               min_size=args.min_size, drop_empty=args.drop_empty,
                               skip_bad=args.skip_bad,
                               skip_unknown_classes=args.skip_unknown_classes)
    elif args.command == "yolo":
        from odflow.data.yolo_source import convert_yolo, yolo_split_folders

        if args.data and args.images:
            raise OdflowError("give --data or --images, not both")
        folders, names = yolo_split_folders(args.data, args.images, args.split)
        summary = convert_yolo(folders, args.output, label_map_path=args.label_map,
                               names=names, source=args.data, num_shards=args.num_shards,
                               min_size=args.min_size, drop_empty=args.drop_empty,
                               skip_bad=args.skip_bad,
                               skip_unknown_classes=args.skip_unknown_classes)
    elif args.command == "synthetic":
        from odflow.data.synthetic import SyntheticConfig, generate_records

        summary = generate_records(args.output, split=args.split, num_images=args.num_images,
                                   seed=args.seed, label_map_path=args.label_map,
                                   class_name=args.class_name, num_shards=args.num_shards,
                                   config=SyntheticConfig(height=args.height, width=args.width))
    else:
        from odflow.data.inspect import format_report, inspect_records

        report = inspect_records(args.records, args.label_map, decode_images=args.decode)
        print(format_report(report))
        if args.json:
            atomic_write_text(args.json, json.dumps(report.to_dict(), indent=2) + "\n")
        if report.num_errors:
            raise OdflowError(f"{report.num_errors} errors in {', '.join(report.files)} "
                              "(listed above)")
        return 0
    _log_summary(summary, os.fspath(args.output))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run_cli(run, argv)
