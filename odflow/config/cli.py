"""``odflow config {patch,check,show}`` (also ``python -m odflow.config``): pipeline configs.

    odflow config patch samples/ssd_mobilenet_v1_coco.config \\
        -o ckpt/ssd_mobilenet_v1_coco.config --num-classes-from-label-map \\
        --fine-tune-checkpoint ckpt/model.ckpt --fine-tune-checkpoint-type detection \\
        --train-input datasets/train.record --eval-input datasets/val.record \\
        --label-map datasets/label_map.pbtxt --num-examples 3226 \\
        --set train_config.batch_size=8

``scripts/patch_pipeline_config.py`` (the workflow's pipeline_config rule) is ``config patch``
with the workflow's flags: ``patch_pipeline_config_args`` translates them.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence

from odflow.config.loader import dumps, load
from odflow.config.patch import (
    FINE_TUNE_CHECKPOINT_TYPES,
    FINE_TUNE_CHECKPOINT_VERSIONS,
    patch_file,
)
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
        prog="odflow config",
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
    patch.add_argument("--fine-tune-checkpoint-version", choices=FINE_TUNE_CHECKPOINT_VERSIONS,
                       help="train_config.fine_tune_checkpoint_version: V1 (name-based, the TF1 "
                            "zoo's model.ckpt) or V2 (object-based, the TF2 zoo's ckpt-0)")
    patch.add_argument("--train-input", nargs="+", metavar="PATH",
                       help="train input_path list (records, shards like "
                            "train.record-?????-of-00010, or globs)")
    patch.add_argument("--eval-input", nargs="+", metavar="PATH",
                       help="input_path list of the first eval_input_reader")
    patch.add_argument("--label-map", metavar="PBTXT",
                       help="label_map_path of the train and every eval reader; checked "
                            "against num_classes when the file exists")
    examples = patch.add_mutually_exclusive_group()
    examples.add_argument("--num-examples", type=int, metavar="N",
                          help="eval_config.num_examples")
    examples.add_argument("--count-examples", action="store_true",
                          help="set eval_config.num_examples to the number of records in the "
                               "--eval-input files")
    patch.add_argument("--num-steps", type=int, metavar="N",
                       help="train_config.num_steps; a cosine schedule whose total_steps "
                            "equals the template's num_steps follows it, and a schedule that "
                            "leaves the rate at 0 before the last step is an error")
    patch.add_argument("--set", dest="overrides", action="append", default=[],
                       metavar="PATH=VALUE", help="a generic override (see below)")
    patch.add_argument("--fit-anchors", action="store_true",
                       help="after the edits, fit the anchor generator's fields to the "
                            "--train-input records (as `odflow anchors fit` does)")

    check = commands.add_parser("check", help="parse and validate a config, print a summary")
    check.add_argument("config")
    check.add_argument("--strict", action="store_true",
                       help="treat warnings (placeholders, missing inputs) as errors")

    show = commands.add_parser("show", help="print a config in canonical text format")
    show.add_argument("config")
    return parser


def run(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(args.log_file)
    if args.command == "patch":
        num_examples = args.num_examples
        if args.count_examples:
            if not args.eval_input:
                raise OdflowError("--count-examples counts the --eval-input records; give "
                                  "--eval-input")
            from odflow.data.records import count_examples

            num_examples = count_examples(args.eval_input)
            log.info("eval num_examples: %d (counted from the eval records)", num_examples)
        patch_file(args.template, args.output,
                   num_classes=args.num_classes,
                   num_classes_from_label_map=args.num_classes_from_label_map,
                   fine_tune_checkpoint=args.fine_tune_checkpoint,
                   fine_tune_checkpoint_type=args.fine_tune_checkpoint_type,
                   fine_tune_checkpoint_version=args.fine_tune_checkpoint_version,
                   train_input_paths=args.train_input,
                   eval_input_paths=args.eval_input,
                   label_map_path=args.label_map,
                   num_examples=num_examples,
                   num_steps=args.num_steps,
                   overrides=args.overrides,
                   fit_anchors=args.fit_anchors)
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
    return run_cli(run, argv)


# -- scripts/patch_pipeline_config.py: ``config patch`` with the workflow's flags ---------------


def build_workflow_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="patch_pipeline_config.py",
        description="The workflow's pipeline-config stage: config.yaml values -> "
                    "ckpt/<name>.config.  The tutorial's seven hand edits become arguments; eval "
                    "num_examples is counted from the val records unless given, so the WIDER "
                    "FACE run gets 3,226 without anyone typing it; train.num_steps is written "
                    "here, with the learning-rate schedule tied to it.  The same as "
                    "'odflow config patch' with --num-classes-from-label-map.")
    parser.add_argument("--template", required=True, help="the pipeline.config to start from")
    parser.add_argument("--output", required=True, help="the patched config to write")
    parser.add_argument("--label-map", required=True,
                        help="label_map.pbtxt; num_classes is taken from its largest id")
    parser.add_argument("--train-input", nargs="+", required=True, help="train record paths")
    parser.add_argument("--eval-input", nargs="+", required=True, help="val record paths")
    parser.add_argument("--fine-tune-checkpoint", required=True,
                        help="e.g. ckpt/model.ckpt (TF1 zoo) or ckpt/ckpt-0 (TF2 zoo)")
    parser.add_argument("--fine-tune-checkpoint-type", default="detection",
                        choices=FINE_TUNE_CHECKPOINT_TYPES)
    parser.add_argument("--fine-tune-checkpoint-version", choices=FINE_TUNE_CHECKPOINT_VERSIONS,
                        help="V1 (name-based) or V2 (object-based, the TF2 zoo's); default: "
                             "the template's")
    parser.add_argument("--num-examples", type=int, default=0,
                        help="eval num_examples; 0 = count the eval records")
    parser.add_argument("--num-steps", type=int, default=None,
                        help="train_config.num_steps (see 'odflow config patch --help')")
    parser.add_argument("--set", nargs="*", default=[], metavar="PATH=VALUE",
                        help="further overrides, e.g. train_config.batch_size=8")
    parser.add_argument("--fit-anchors", choices=("true", "false"), default="false",
                        help="true: fit the anchor generator to the train records "
                             "(anchors.fit; see 'odflow config patch --help')")
    return parser


def patch_pipeline_config_args(argv: Sequence[str] | None = None) -> list[str]:
    """The ``odflow config patch`` command line that the workflow's flags mean."""
    args = build_workflow_parser().parse_args(argv)
    patch = ["patch", args.template, "--output", args.output, "--num-classes-from-label-map",
             "--label-map", args.label_map, "--train-input", *args.train_input,
             "--eval-input", *args.eval_input, "--fine-tune-checkpoint", args.fine_tune_checkpoint,
             "--fine-tune-checkpoint-type", args.fine_tune_checkpoint_type]
    if args.fine_tune_checkpoint_version:
        patch += ["--fine-tune-checkpoint-version", args.fine_tune_checkpoint_version]
    if args.num_examples:
        patch += ["--num-examples", str(args.num_examples)]
    else:
        patch.append("--count-examples")
    if args.num_steps is not None:
        patch += ["--num-steps", str(args.num_steps)]
    for override in args.set:
        patch += ["--set", override]
    if args.fit_anchors == "true":
        patch.append("--fit-anchors")
    return patch


def run_patch_pipeline_config(argv: Sequence[str] | None = None) -> int:
    return run(patch_pipeline_config_args(argv))


def patch_pipeline_config_main(argv: Sequence[str] | None = None) -> int:
    return run_cli(run_patch_pipeline_config, argv)
