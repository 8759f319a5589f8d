"""``model_main.py``'s command line: train (and evaluate), or evaluate one checkpoint.

The flags are the tutorial's (``--model_dir``, ``--pipeline_config_path``, ``--num_train_steps``,
``--checkpoint_dir``, ``--run_once``) plus odflow's own.  TF1-era logging flags such as
``--alsologtostderr`` are accepted and ignored with a note, so the tutorial's command line runs
unchanged; any other unknown flag is an error (a typo must not be silently ignored).
"""

from __future__ import annotations

import argparse
import logging
import os
from collections.abc import Sequence
from typing import TextIO

from odflow.utils.cli import add_clip_before_nms_flag, run_cli, setup_logging

log = logging.getLogger("odflow.train")

# Flags of TF1's model_main.py / absl that have no effect here.
TF1_FLAGS_WITH_VALUE = ("sample_1_of_n_eval_examples", "sample_1_of_n_eval_on_train_examples",
                        "hparams_overrides", "eval_training_data", "max_eval_retries", "v",
                        "verbosity", "log_dir", "stderrthreshold", "eval_timeout",
                        "eval_on_train_data", "num_workers", "use_tpu", "tpu_name")
TF1_SWITCHES = ("alsologtostderr", "logtostderr", "noalsologtostderr", "nologtostderr",
                "showprefixforinfo", "noshowprefixforinfo")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="model_main.py",
        description="Train an SSD detector from a pipeline.config (resuming from the latest "
                    "checkpoint in --model_dir when it was trained on the same inputs, see "
                    "--resume/--restart), or evaluate a checkpoint with --run_once.")
    add_tutorial_flags(parser)
    parser.add_argument("--checkpoint_path", default=None,
                        help="evaluate this checkpoint prefix (e.g. ckpt/model.ckpt-41471)")
    parser.add_argument("--run_once", action="store_true",
                        help="evaluate once and exit (the only evaluation mode odflow has)")
    parser.add_argument("--eval_every", type=int, default=0,
                        help="evaluate every N training steps (0: only at the end; -1: never)")
    parser.add_argument("--seed", type=int, default=None, help="random seed")
    parser.add_argument("--deterministic", action="store_true",
                        help="deterministic TF kernels (with --seed: repeatable runs)")
    parser.add_argument("--log_every", type=int, default=100,
                        help="log a progress line and write summaries every N steps")
    parser.add_argument("--keep_checkpoint_max", type=int, default=5,
                        help="how many recent checkpoints to keep")
    parser.add_argument("--checkpoint_every_steps", type=int, default=1000,
                        help="save a checkpoint every N steps (0: off)")
    parser.add_argument("--checkpoint_every_minutes", type=float, default=10.0,
                        help="save a checkpoint every M minutes (0: off)")
    parser.add_argument("--metrics_json", default=None,
                        help="write the final evaluation metrics to this JSON file")
    parser.add_argument("--best_metrics_json", default=None,
                        help="at the end, write the metrics of the best evaluation (highest "
                             "mAP) to this JSON file and link its checkpoint, kept in "
                             "MODEL_DIR/best/, to MODEL_DIR/best/model.ckpt")
    parser.add_argument("--eval_backend", choices=("faster", "pycocotools"), default="faster",
                        help="COCO metric implementation (same numbers; faster is faster)")
    add_clip_before_nms_flag(parser)
    parser.add_argument("--log_file", default=None, help="also write the log to this file")
    parser.add_argument("--strategy", default="auto",
                        choices=("auto", "one_device", "mirrored", "multi_worker"),
                        help="how to distribute training: auto (several GPUs: mirrored; a "
                        "multi-task TF_CONFIG or SLURM step: multi_worker; else one device)")
    parser.add_argument("--cpu_replicas", type=int, default=1,
                        help="without GPUs: train N replicas in sync, each on 1/N of the CPU "
                             "cores (faster for small models; each replica normalises batch "
                             "norm over batch_size/N images, so N changes what is learned)")
    parser.add_argument("--progress_fd", type=int, default=None,
                        help="also write a short progress line (step, images/s, ETA, loss) "
                             "every few seconds to this open file descriptor; the workflow's "
                             "train rule passes 3, a copy of the console, while stdout and "
                             "stderr go to logs/train.log")
    resume = parser.add_mutually_exclusive_group()
    resume.add_argument("--resume", action="store_true",
                        help="continue from the latest checkpoint even if the records, label "
                             "map, fine-tune checkpoint, seed or config changed since it was "
                             "trained (default: such a change starts again)")
    resume.add_argument("--restart", action="store_true",
                        help="start again from the fine-tune checkpoint; the existing "
                             "checkpoints and events move to <model_dir>/superseded/<time>/")
    add_ignored_flags(parser, TF1_FLAGS_WITH_VALUE, TF1_SWITCHES)
    return parser


def add_tutorial_flags(parser: argparse.ArgumentParser, *, model_dir_required: bool = False
                       ) -> None:
    """The flags ``model_main.py`` shares with the TF2 API's ``model_main_tf2.py``
    (``odflow.train.tf2_flags``), declared once so the two commands cannot drift apart."""
    parser.add_argument("--model_dir", required=model_dir_required,
                        help="where checkpoints model.ckpt-<step>, the 'checkpoint' state file "
                             "and TensorBoard events go (with --checkpoint_dir: the evaluation "
                             "events)")
    parser.add_argument("--pipeline_config_path", required=True, help="the pipeline.config")
    parser.add_argument("--num_train_steps", type=int, default=None,
                        help="overrides train_config.num_steps (0: train until stopped)")
    parser.add_argument("--checkpoint_dir", default=None,
                        help="evaluate the latest checkpoint in this directory instead of "
                             "training, once (odflow does not wait for new checkpoints)")


_IGNORED = "ignored_"


def add_ignored_flags(parser: argparse.ArgumentParser, with_value: Sequence[str],
                      switches: Sequence[str]) -> None:
    """Accept (hidden from ``--help``) flags of the upstream commands that change nothing in
    odflow, so a tutorial's command line runs as written; ``ignored_flags`` lists those given."""
    for name in with_value:
        parser.add_argument(f"--{name}", dest=f"{_IGNORED}{name}", default=None,
                            help=argparse.SUPPRESS)
    for name in switches:
        parser.add_argument(f"--{name}", dest=f"{_IGNORED}{name}", nargs="?", const=True,
                            default=None, help=argparse.SUPPRESS)


def ignored_flags(args: argparse.Namespace) -> list[str]:
    """The ``add_ignored_flags`` flags given, as ``--name``, sorted."""
    return sorted(f"--{key[len(_IGNORED):]}" for key, value in vars(args).items()
                  if key.startswith(_IGNORED) and value is not None)


def run(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(args.log_file)
    ignored = ignored_flags(args)
    if ignored:
        log.info("ignoring TF1 flag(s) with no effect in odflow: %s", ", ".join(ignored))

    from odflow.errors import OdflowError

    evaluate_only = args.run_once or args.checkpoint_dir or args.checkpoint_path
    if evaluate_only:
        if args.checkpoint_dir and not args.run_once:
            log.info("--checkpoint_dir without --run_once: evaluating the latest checkpoint "
                     "once (odflow never waits for new checkpoints)")
        checkpoint_dir = args.checkpoint_dir or (None if args.checkpoint_path else args.model_dir)
        return _evaluate(args, checkpoint_dir)
    if not args.model_dir:
        raise OdflowError("--model_dir is required for training")

    from odflow.train.loop import TrainOptions, environment_note, train
    from odflow.train.signals import Interrupted

    environment_note()
    options = TrainOptions(
        model_dir=args.model_dir, pipeline_config_path=args.pipeline_config_path,
        num_train_steps=args.num_train_steps, eval_every=args.eval_every, seed=args.seed,
        deterministic=args.deterministic, log_every=args.log_every,
        keep_checkpoint_max=args.keep_checkpoint_max,
        checkpoint_every_steps=args.checkpoint_every_steps,
        checkpoint_every_minutes=args.checkpoint_every_minutes,
        metrics_json=args.metrics_json, best_metrics_json=args.best_metrics_json,
        eval_backend=args.eval_backend, resume=args.resume, restart=args.restart,
        strategy=args.strategy, cpu_replicas=args.cpu_replicas,
        clip_before_nms=args.clip_before_nms,
        console=_console(args.progress_fd))
    try:
        result = train(options)
    except Interrupted as stop:
        log.warning("%s", stop)
        return stop.exit_code
    log.info("done at step %d; latest checkpoint %s", result.step, result.checkpoint)
    return 0


def _console(fd: int | None) -> TextIO | None:
    """The stream behind ``--progress_fd`` (not closed at exit: the shell owns the descriptor)."""
    if fd is None:
        return None
    from odflow.errors import OdflowError

    try:
        return os.fdopen(fd, "w", buffering=1, closefd=False)
    except OSError as error:
        raise OdflowError(f"--progress_fd {fd}: {error.strerror}; open it in the shell "
                          f"(e.g. '{fd}>&2') or leave the flag out") from None


def _evaluate(args, checkpoint_dir: str | None) -> int:
    from odflow import config as config_lib
    from odflow.train import evaluate as evaluation

    config = config_lib.load(args.pipeline_config_path)
    evaluation.check_eval_config(config)
    evaluation.record_paths(evaluation.eval_reader(config), "eval_input_reader")
    prefix = evaluation.resolve_checkpoint(args.checkpoint_path, checkpoint_dir)
    if args.seed is not None:
        import tensorflow as tf
        tf.keras.utils.set_random_seed(args.seed)
    events_dir = args.model_dir or os.path.dirname(prefix) or "."
    evaluation.evaluate_checkpoint(config, prefix, model_dir=events_dir,
                                   metrics_json=args.metrics_json, backend=args.eval_backend,
                                   clip_before_nms=args.clip_before_nms)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run_cli(run, argv)


def build_eval_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="odflow eval",
        description="COCO metrics of a training checkpoint on the config's eval records (the "
                    "same as model_main.py --run_once).")
    parser.add_argument("--pipeline_config_path", required=True, help="the pipeline.config")
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--checkpoint_dir", help="evaluate the latest checkpoint in this directory")
    where.add_argument("--checkpoint_path",
                       help="evaluate this checkpoint prefix (e.g. ckpt/model.ckpt-41471)")
    parser.add_argument("--model_dir", default=None, help="where the eval_0/ TensorBoard events "
                        "go (default: the checkpoint's directory)")
    parser.add_argument("--metrics_json", default=None,
                        help="write the metrics to this JSON file")
    parser.add_argument("--eval_backend", choices=("faster", "pycocotools"), default="faster",
                        help="COCO metric implementation (same numbers; faster is faster)")
    parser.add_argument("--seed", type=int, default=None, help="random seed")
    add_clip_before_nms_flag(parser)
    parser.add_argument("--log_file", default=None, help="also write the log to this file")
    return parser


def run_eval(argv: Sequence[str] | None = None) -> int:
    args = build_eval_parser().parse_args(argv)
    setup_logging(args.log_file)
    return _evaluate(args, args.checkpoint_dir)
