"""``model_main_tf2.py``'s command line (the TF2 Object Detection API's flags) as ``odflow train``.

The TF2 tutorials train and evaluate with

    python model_main_tf2.py --model_dir=models/my_ssd \
        --pipeline_config_path=models/my_ssd/pipeline.config
    python model_main_tf2.py --model_dir=models/my_ssd --pipeline_config_path=... \
        --checkpoint_dir=models/my_ssd

so ``scripts/model_main_tf2.py`` takes those flags and runs ``odflow train`` (``odflow.train.cli``)
with the same meaning; this module is only the translation, so both commands stay one program:

- ``--checkpoint_dir`` set: evaluate instead of training, as the TF2 API does, once, on the latest
  checkpoint in it (the TF2 API then waits for newer checkpoints; odflow never waits), with the
  evaluation events under ``--model_dir``;
- ``--checkpoint_every_n N``: save every N steps (``--checkpoint_every_steps``);
- ``--num_train_steps``, ``--sample_1_of_n_eval_examples``: as ``odflow train`` takes them;
- the TF2 API's TPU/cluster and logging flags (``--use_tpu``, ``--tpu_name``, ``--num_workers``,
  ``--eval_timeout``, ``--record_summaries``, ``--alsologtostderr``, ...) are accepted and noted
  in the log: odflow picks its strategy itself (``--strategy`` of ``odflow train``).
"""

from __future__ import annotations

import argparse
import logging
import os
from collections.abc import Sequence

from odflow.errors import OdflowError
from odflow.train.cli import add_ignored_flags, add_tutorial_flags, ignored_flags
from odflow.utils.cli import run_cli, setup_logging

log = logging.getLogger("odflow.train")

#: TF2 flags that change nothing here (TPU and cluster set-up, the eval wait, summaries).
IGNORED_WITH_VALUE = ("use_tpu", "tpu_name", "num_workers", "eval_timeout", "record_summaries",
                      "eval_on_train_data", "sample_1_of_n_eval_on_train_examples")
#: absl's logging switches, which the tutorials' command lines often carry.
IGNORED_SWITCHES = ("alsologtostderr", "logtostderr")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="model_main_tf2.py",
        description="Train an SSD detector from a pipeline.config with the TF2 Object Detection "
                    "API's flags, or evaluate the latest checkpoint of --checkpoint_dir; the "
                    "same as 'odflow train' (see 'odflow train --help' for what it does).")
    add_tutorial_flags(parser, model_dir_required=True)
    parser.add_argument("--sample_1_of_n_eval_examples", type=int, default=None,
                        help="accepted as 'odflow train' accepts it (odflow evaluates every "
                             "example; set eval_input_reader.sample_1_of_n_examples to sample)")
    parser.add_argument("--checkpoint_every_n", type=int, default=1000,
                        help="save a checkpoint every N steps (default 1000)")
    add_ignored_flags(parser, IGNORED_WITH_VALUE, IGNORED_SWITCHES)
    return parser


def train_args(argv: Sequence[str] | None = None) -> list[str]:
    """The ``odflow train`` command line that ``model_main_tf2.py``'s flags mean."""
    args = build_parser().parse_args(argv)
    command = ["--model_dir", args.model_dir, "--pipeline_config_path", args.pipeline_config_path]
    if args.checkpoint_dir is not None:
        return command + ["--checkpoint_dir", args.checkpoint_dir, "--run_once"]
    if args.num_train_steps is not None:
        command += ["--num_train_steps", str(args.num_train_steps)]
    if args.sample_1_of_n_eval_examples is not None:
        command += ["--sample_1_of_n_eval_examples", str(args.sample_1_of_n_eval_examples)]
    return command + ["--checkpoint_every_steps", str(args.checkpoint_every_n)]


def run(argv: Sequence[str] | None = None) -> int:
    from odflow.train.cli import run as train

    command = train_args(argv)
    args = build_parser().parse_args(argv)
    if args.checkpoint_dir is not None and not os.path.isdir(args.checkpoint_dir):
        # Checked before the config: evaluation of a directory that is not there is the
        # mistake to name, whatever else the config lacks.
        raise OdflowError(f"--checkpoint_dir {args.checkpoint_dir}: no such directory; give the "
                          "training's --model_dir (the folder holding its ckpt-N files), or "
                          "leave --checkpoint_dir out to train")
    ignored = ignored_flags(args)
    if ignored:  # after train's own logging set-up would be too late for a failing run
        setup_logging()
        log.info("ignoring TF2 flag(s) with no effect in odflow: %s", ", ".join(ignored))
    return train(command)


def main(argv: Sequence[str] | None = None) -> int:
    return run_cli(run, argv)
