"""The workflow's pipeline-config stage: config.yaml values → ``ckpt/<name>.config``.

The tutorial's seven hand edits become arguments; the one value that needs data, eval
``num_examples``, is counted from the val records unless config.yaml sets it, so the
WIDER FACE run gets 3,226 without anyone typing it.  ``train.num_steps`` is written here
(``--num-steps``), the one place the run's length lives, with the learning-rate schedule
tied to it.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence

from odflow.utils.cli import setup_logging

log = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="patch_pipeline_config.py", description=__doc__)
    parser.add_argument("--template", required=True, help="the pipeline.config to start from")
    parser.add_argument("--output", required=True, help="the patched config to write")
    parser.add_argument("--label-map", required=True,
                        help="label_map.pbtxt; num_classes is taken from its largest id")
    parser.add_argument("--train-input", nargs="+", required=True, help="train record paths")
    parser.add_argument("--eval-input", nargs="+", required=True, help="val record paths")
    parser.add_argument("--fine-tune-checkpoint", required=True, help="e.g. ckpt/model.ckpt")
    parser.add_argument("--fine-tune-checkpoint-type", default="detection",
                        choices=["detection", "classification", "full"])
    parser.add_argument("--num-examples", type=int, default=0,
                        help="eval num_examples; 0 = count the eval records")
    parser.add_argument("--num-steps", type=int, default=None,
                        help="train_config.num_steps; a cosine schedule whose total_steps "
                             "equals the template's num_steps follows it, and a schedule that "
                             "leaves the rate at 0 before the last step is an error")
    parser.add_argument("--set", nargs="*", default=[], metavar="PATH=VALUE",
                        help="further overrides, e.g. train_config.batch_size=8")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from odflow.config import patch_file
    from odflow.data.records import count_examples

    args = build_parser().parse_args(argv)
    setup_logging()
    num_examples = args.num_examples or count_examples(args.eval_input)
    log.info("eval num_examples: %d%s", num_examples,
             "" if args.num_examples else " (counted from the eval records)")
    patch_file(
        args.template,
        args.output,
        num_classes_from_label_map=True,
        fine_tune_checkpoint=args.fine_tune_checkpoint,
        fine_tune_checkpoint_type=args.fine_tune_checkpoint_type,
        train_input_paths=args.train_input,
        eval_input_paths=args.eval_input,
        label_map_path=args.label_map,
        num_examples=num_examples,
        num_steps=args.num_steps,
        overrides=args.set,
    )
    log.info("wrote %s", args.output)
    return 0
