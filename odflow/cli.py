"""``odflow <command>``: one entry point whose subcommands are the package's tools.

Each subcommand lives in its own module with a ``main(argv)``; this dispatcher only picks the
module (imported lazily, so ``odflow --help`` does not load TensorFlow) and runs it through
``run_cli`` (user errors: one line, exit 2).  Add a command by adding a line to ``COMMANDS``.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence

from odflow.utils.cli import run_cli

#: command -> (module with ``main(argv)``, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "detect": ("odflow.detect.cli", "run an exported model on images (boxes drawn, JSON, CSV)"),
    "convert": ("odflow.export.convert_cli", "TFLite (float, int8) or ONNX from an export"),
    "evaluate-model": ("odflow.detect.evaluate",
                       "COCO metrics of an exported file on eval records"),
}


def usage() -> str:
    width = max(len(name) for name in COMMANDS)
    lines = ["usage: odflow <command> [options]   (odflow <command> --help for its options)",
             "", "commands:"]
    lines += [f"  {name:<{width}}  {text}" for name, (_, text) in COMMANDS.items()]
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
    module = importlib.import_module(COMMANDS[command][0])
    return run_cli(module.main, rest)
