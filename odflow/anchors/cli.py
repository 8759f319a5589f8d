"""``odflow anchors``: how many training boxes the model's anchors can match, and anchors
fitted to them.

    odflow anchors coverage --pipeline_config ckpt/ssd_mobilenet_v1_coco.config
    odflow anchors fit --pipeline_config ckpt/ssd_mobilenet_v1_coco.config
"""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Sequence

from odflow.utils.atomic import atomic_write_text
from odflow.utils.cli import run_cli, setup_logging

log = logging.getLogger("odflow.anchors")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="odflow anchors",
        description="Anchor coverage: the fraction of ground-truth boxes whose best anchor IoU "
                    "reaches the matcher's matched_threshold (the others are never positives).")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    coverage = commands.add_parser(
        "coverage", help="coverage of the training boxes by the config's anchors",
        description="Print the coverage, overall and by COCO size at the model's input size.")
    fit = commands.add_parser(
        "fit", help="search the anchor generator's fields for a higher coverage",
        description="Search min_scale, max_scale, aspect_ratios and "
                    "reduce_boxes_in_lowest_layer (ssd_anchor_generator) or anchor_scale, "
                    "scales_per_octave and aspect_ratios (multiscale_anchor_generator) for the "
                    "highest coverage of the training boxes; print the coverage before and "
                    "after and the pipeline.overrides lines that give it.")
    fit.add_argument("--max-boxes", type=int, default=5000, metavar="N",
                     help="score each candidate on at most N boxes, evenly sampled (default "
                          "5000; before/after are measured on all)")
    for sub in (coverage, fit):
        sub.add_argument("--pipeline_config", "--pipeline-config", required=True,
                         dest="pipeline_config", help="the pipeline config (its model and, "
                         "unless --records is given, its train_input_reader records)")
        sub.add_argument("--records", nargs="+", metavar="PATH",
                         help="record files or globs to measure instead of the config's "
                              "training records")
        sub.add_argument("--json", metavar="FILE", help="also write the numbers as JSON")
        sub.add_argument("--log-file", help="also log to this file")
    return parser


def run(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(args.log_file)
    from odflow import config as config_lib
    from odflow.anchors.groundtruth import require_boxes
    from odflow.anchors.measure import measure_coverage

    config = config_lib.load(args.pipeline_config)
    num_classes = config.model.ssd.num_classes
    if args.command == "coverage":
        measured = measure_coverage(config, args.records)
        require_boxes(measured.groundtruth, num_classes)
        print(measured.coverage.line())
        for name, counts in measured.coverage.by_size.items():
            if counts.boxes:
                print(f"  {name}: {counts.covered:,} of {counts.boxes:,}")
        if args.json:
            atomic_write_text(args.json, json.dumps(measured.coverage.to_dict(), indent=2) + "\n")
        return 0
    from odflow.anchors.fit import fit_anchors
    from odflow.anchors.groundtruth import read_boxes
    from odflow.anchors.measure import train_record_paths
    from odflow.anchors.model import boxes_at_input

    groundtruth = read_boxes(args.records or train_record_paths(config), num_classes)
    require_boxes(groundtruth, num_classes)
    boxes = boxes_at_input(config, groundtruth.boxes, groundtruth.image_sizes)
    result = fit_anchors(config, boxes, max_boxes=args.max_boxes)
    for line in result.report_lines():
        print(line)
    if args.json:
        atomic_write_text(args.json, json.dumps({
            "before": result.before.to_dict(), "after": result.after.to_dict(),
            "overrides": result.overrides,
            "anchors_per_location": {"before": result.anchors_per_location_before,
                                     "after": result.anchors_per_location_after},
            "head_shapes_change": result.head_shapes_change}, indent=2) + "\n")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run_cli(run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
