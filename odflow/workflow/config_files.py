"""Config files that are not YAML: name the file, the line and the column.

Snakemake reads a config file it cannot parse with one message for every case ("Config file
is not valid JSON or YAML"), naming neither the file nor the place. The Snakefile calls
``check_config_file`` on ``config.yaml`` before its ``configfile:`` directive, so a typo there
is reported where it is. (A ``--configfile`` file is read by Snakemake's command line before
any Snakefile code runs, so its syntax errors keep Snakemake's message; ``python -m
odflow.workflow.config_files FILE...`` reports them the same way.)
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

import yaml

from odflow.errors import OdflowError
from odflow.utils.cli import run_cli

ADVICE = ("fix the YAML there: indent with spaces (not tabs), close every bracket and "
          "quote, and quote a value that holds ': ' or starts with '#'")


def check_config_file(path: str | os.PathLike) -> None:
    """Raise ``OdflowError`` naming ``path``, line and column (1-based) if it is not a
    readable YAML (or JSON) document; missing files are left to Snakemake's own message."""
    try:
        with open(path, "rb") as handle:
            raw = handle.read()
    except FileNotFoundError:
        return
    except OSError as error:
        raise OdflowError(f"{path}: cannot read the config file: {error.strerror}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        line = raw[:error.start].count(b"\n") + 1
        raise OdflowError(f"{path}, line {line}: not UTF-8 text (byte {error.start}); "
                          "save the file as UTF-8") from None
    try:
        yaml.safe_load(text)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = f", line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        what = "; ".join(str(part) for part in (error.context, error.problem) if part)
        raise OdflowError(f"{path}{where}: not valid YAML ({what}); {ADVICE}") from None
    except yaml.YAMLError as error:
        raise OdflowError(f"{path}: not valid YAML ({error}); {ADVICE}") from None


def run(argv: Sequence[str] | None = None) -> int:
    """Check each file named on the command line; a user error for the first bad one."""
    paths = list(sys.argv[1:] if argv is None else argv)
    if not paths or any(path in ("-h", "--help") for path in paths):
        print("usage: python -m odflow.workflow.config_files CONFIG.yaml...\n"
              "Names the file, line and column of a YAML syntax error.")
        return 0 if paths else 2
    for path in paths:
        if not os.path.exists(path):
            raise OdflowError(f"{path}: no such config file")
        check_config_file(path)
        print(f"{path}: valid YAML")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run_cli(run, argv)


if __name__ == "__main__":
    sys.exit(main())
