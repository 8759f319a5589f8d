"""``odflow zoo`` (``scripts/model_zoo.py``, ``python -m odflow.workflow``): the model stages of
the workflow as commands: download, starter, extract, copy-checkpoint."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence

from odflow.utils.cli import run_cli, setup_logging
from odflow.workflow.download import DEFAULT_TIMEOUT

log = logging.getLogger("odflow.workflow")


def _progress_logger(step_bytes: int = 8 << 20):
    """Log every ``step_bytes`` received, so a slow download visibly moves in the log."""
    next_report = [step_bytes]

    def report(done: int, total: int | None) -> None:
        if done >= next_report[0] or done == total:
            of = f" of {total / 1e6:.1f} MB" if total else ""
            log.info("downloaded %.1f MB%s", done / 1e6, of)
            next_report[0] = done + step_bytes

    return report


def _download(args: argparse.Namespace) -> None:
    from odflow.workflow.download import download

    download(args.url, args.output, args.sha256, timeout=args.timeout,
             progress=_progress_logger())


def _starter(args: argparse.Namespace) -> None:
    from odflow.workflow.starter import build_starter_tarball

    build_starter_tarball(args.output, name=args.name, depth_multiplier=args.depth_multiplier,
                          image_size=args.image_size, num_classes=args.num_classes,
                          seed=args.seed, architecture=args.architecture)


def _extract(args: argparse.Namespace) -> None:
    from odflow.workflow.layout import get_layout
    from odflow.workflow.tarball import extract_model

    extract_model(args.tarball, args.output_dir, layout=get_layout(args.layout))


def _copy_checkpoint(args: argparse.Namespace) -> None:
    from odflow.workflow.layout import get_layout
    from odflow.workflow.tarball import copy_checkpoint

    copy_checkpoint(args.model_dir, args.ckpt_dir, layout=get_layout(args.layout))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="model_zoo.py", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    download = commands.add_parser("download", help="fetch the model tarball, verifying sha256")
    download.add_argument("--url", required=True, help="http(s):// or file:// URL")
    download.add_argument("--sha256", default="", help="expected digest (hex); '' = none: a tar archive is then read "
                               "through to check that it is complete")
    download.add_argument("--output", required=True, help="e.g. downloads/<model>.tar.gz")
    download.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, metavar="SECONDS",
                          help="give up when the server sends nothing for this long "
                               f"(default {DEFAULT_TIMEOUT:g}; one try: Snakemake's retries: "
                               "retry the rule)")
    download.set_defaults(run=_download)

    starter = commands.add_parser(
        "starter", help="build a small, randomly initialised SSD tarball in the zoo's "
                        "layout (the offline demo's model)")
    starter.add_argument("--output", required=True, help="the .tar.gz to write")
    starter.add_argument("--name", required=True, help="top-level folder inside the tarball")
    starter.add_argument("--depth-multiplier", type=float, default=0.25)
    starter.add_argument("--image-size", type=int, default=256)
    starter.add_argument("--num-classes", type=int, default=1)
    starter.add_argument("--seed", type=int, default=7)
    starter.add_argument("--architecture", default="ssd_mobilenet_v1",
                         help="a feature_extractor.type odflow builds (or a starter variant)")
    starter.set_defaults(run=_starter)

    extract = commands.add_parser("extract", help="unpack pipeline.config and the checkpoint "
                                                  "(model.ckpt.*, or checkpoint/ckpt-0.* for tf2)")
    extract.add_argument("--tarball", required=True)
    extract.add_argument("--output-dir", required=True)
    extract.add_argument("--layout", choices=("tf1", "tf2"), default="tf1",
                         help="the zoo's layout: tf1 (model.ckpt.*) or tf2 "
                              "(checkpoint/ckpt-0.*); default tf1")
    extract.set_defaults(run=_extract)

    copy = commands.add_parser("copy-checkpoint",
                               help="copy model.ckpt.* (tf2: checkpoint/ckpt-0.* as ckpt-0.*; "
                                    "never the state file) into ckpt/")
    copy.add_argument("--model-dir", required=True, help="the extracted model folder")
    copy.add_argument("--ckpt-dir", required=True)
    copy.add_argument("--layout", choices=("tf1", "tf2"), default="tf1",
                      help="the zoo's layout (see extract); default tf1")
    copy.set_defaults(run=_copy_checkpoint)
    return parser


def run(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging()
    args.run(args)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run_cli(run, argv)
