"""``python -m odflow.config {patch,check,show}``: the config stage of the workflow.

    python -m odflow.config patch samples/ssd_mobilenet_v1_coco.config \\
        -o ckpt/ssd_mobilenet_v1_coco.config --num-classes-from-label-map \\
        --fine-tune-checkpoint ckpt/model.ckpt --fine-tune-checkpoint-type detection \\
        --train-input datasets/train.record --eval-input datasets/val.record \\
        --label-map datasets/label_map.pbtxt --num-examples 3226 \\
        --set train_config.batch_size=8
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence

from odflow.config.loader import dumps, load
from odflow.config.patch import FINE_TUNE_CHECKPOINT_TYPES, patch_file
from odflow.config.summary import problems, summarize
from odflow.errors import OdflowError
from odflow.utils.cli import run_cli, setup_logging

log = logging.getLogger("odflow.config")

OVERRIDE_HELP = """\
--set PATH=VALUE (repeatable, applied in order after the named edits):
  model.ssd.num_classes=1                       nested fields, typed values
  model.ssd.post_processing.score_converter=SIGMOID        enums by name
  train_config.data_augmentation_options[1].ssd_random_crop={}   element by index
  train_config.data_augmentation_options[+]={ random_vertical_flip {} }  append
  train_config.optimizer.adam_optimizer.learning_rate.constant_learning_rate.learning_rate=0.001
                                                selects a oneof branch, clears its siblings
  model.ssd.anchor_generator.ssd_anchor_generator.aspect_ratios=[1.0, 2.0]  replace a list
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m odflow.config",
        description="Check, show or patch TF Object Detection API pipeline configs.")
    parser.add_argument("--log-file", help="also log to this file")
    commands = parser.add_subparsers(dest="command", required=True)

    patch = commands.add_parser(
        "patch", help="write a patched copy of a template config",
        description="Apply the tutorial's edits (and any --set) to TEMPLATE, write OUTPUT.",
        epilog=OVERRIDE_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    patch.add_argument("template", help="the template pipeline config (never modified)")
    patch.add_argument("-o", "--output", required=True, help="the patched config to write")
    classes = patch.add_mutually_exclusive_group()
    classes.add_argument("--num-classes", type=int, metavar="N", help="model.ssd.num_classes")
    classes.add_argument("--num-classes-from-label-map", action="store_true",
                         help="set num_classes to the label map's largest id")
    patch.add_argument("--fine-tune-checkpoint", metavar="PREFIX",
                       help="train_config.fine_tune_checkpoint, e.g. ckpt/model.ckpt")
    patch.add_argument("--fine-tune-checkpoint-type", choices=FINE_TUNE_CHECKPOINT_TYPES,
                       help="train_config.fine_tune_checkpoint_type (clears the deprecated "
                            "from_detection_checkpoint)")
    patch.add_argument("--train-input", nargs="+", metavar="PATH",
                       help="train input_path list (records, shards like "
                            "train.record-?????-of-00010, or globs)")
    patch.add_argument("--eval-input", nargs="+", metavar="PATH",
                       help="input_path list of the first eval_input_reader")
    patch.add_argument("--label-map", metavar="PBTXT",
                       help="label_map_path of the train and every eval reader; checked "
                            "against num_classes when the file exists")
    patch.add_argument("--num-examples", type=int, metavar="N",
                       help="eval_config.num_examples")
    patch.add_argument("--set", dest="overrides", action="append", default=[],
                       metavar="PATH=VALUE", help="a generic override (see below)")

    check = commands.add_parser("check", help="parse and validate a config, print a summary")
    check.add_argument("config")
    check.add_argument("--strict", action="store_true",
                       help="treat warnings (placeholders, missing inputs) as errors")

    show = commands.add_parser("show", help="print a config in canonical text format")
    show.add_argument("config")
    return parser


def _main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(args.log_file)
    if args.command == "patch":
        patch_file(args.template, args.output,
                   num_classes=args.num_classes,
                   num_classes_from_label_map=args.num_classes_from_label_map,
                   fine_tune_checkpoint=args.fine_tune_checkpoint,
                   fine_tune_checkpoint_type=args.fine_tune_checkpoint_type,
                   train_input_paths=args.train_input,
                   eval_input_paths=args.eval_input,
                   label_map_path=args.label_map,
                   num_examples=args.num_examples,
                   overrides=args.overrides)
        return 0
    config = load(args.config)
    if args.command == "show":
        print(dumps(config), end="")
        return 0
    for line in summarize(config):
        print(line)
    warnings = problems(config, args.config)
    for warning in warnings:
        log.warning("%s", warning)
    if warnings and args.strict:
        raise OdflowError(f"{args.config}: {len(warnings)} warning(s) with --strict")
    print(f"{args.config}: OK" + (f" ({len(warnings)} warning(s))" if warnings else ""))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run_cli(_main, argv)


if __name__ == "__main__":
    raise SystemExit(main())
