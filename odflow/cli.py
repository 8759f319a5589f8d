"""``odflow <command>``: one entry point whose subcommands are the package's tools.

Each subcommand lives in its package's ``cli`` module as ``run(argv)``, which raises
``OdflowError`` for user errors; this dispatcher only picks the module (imported lazily, so
``odflow --help`` does not load TensorFlow) and runs it through ``run_cli`` (user errors: one
line, exit 2), as each module's ``main`` does for ``python -m`` and the scripts in scripts/ (the
tutorial-named aliases).  Add a command by adding a line to ``COMMANDS``.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence

from odflow.utils.cli import run_cli

#: command -> (module, its function taking argv, one-line help), in the workflow's order
COMMANDS: dict[str, tuple[str, str, str]] = {
    "zoo": ("odflow.workflow.cli", "run",
            "download, build (starter), extract a model tarball; copy its checkpoint"),
    "label-map": ("odflow.label_map", "run", "write or check a label_map.pbtxt"),
    "data": ("odflow.data.cli", "run",
             "TFRecords from WIDER FACE, CSV, VOC, COCO JSON, YOLO or synthetic faces; inspect, "
             "preview records"),
    "anchors": ("odflow.anchors.cli", "run",
                "anchor coverage of the training boxes; anchors fitted to them"),
    "config": ("odflow.config.cli", "run", "patch, check or show a pipeline.config"),
    "train": ("odflow.train.cli", "run",
              "train (resuming when the inputs are unchanged); the flags of model_main.py"),
    "eval": ("odflow.train.cli", "run_eval", "COCO metrics of a training checkpoint"),
    "export": ("odflow.export.cli", "run",
               "frozen graph, SavedModel and checkpoint; export_inference_graph.py's flags"),
    "convert": ("odflow.export.convert_cli", "run", "TFLite (float, int8) or ONNX from an export"),
    "detect": ("odflow.detect.cli", "run",
               "run an exported model on images (boxes drawn, JSON, CSV)"),
    "evaluate-model": ("odflow.detect.evaluate", "run",
                       "COCO metrics of an exported file on eval records"),
    "plots": ("odflow.plots", "run", "mAP, AR and loss curves (PNG) from a model_dir's events"),
    "history": ("odflow.history", "run", "a training run's event scalars as one JSON file"),
    "runs-summary": ("odflow.runs_summary", "run",
                     "compare experiment runs: summary CSV, Markdown, HTML, mAP chart"),
    "report": ("odflow.report", "run", "metrics JSON files as an HTML table"),
}


def usage() -> str:
    width = max(len(name) for name in COMMANDS)
    lines = ["usage: odflow <command> [options]   (odflow <command> --help for its options)",
             "", "commands:"]
    lines += [f"  {name:<{width}}  {text}" for name, (_, _, text) in COMMANDS.items()]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command not in COMMANDS:
        print(f"error: unknown command {command!r}\n\n{usage()}", file=sys.stderr)
        return 2
    module_name, function, _ = COMMANDS[command]
    run = getattr(importlib.import_module(module_name), function)
    return run_cli(run, rest)
