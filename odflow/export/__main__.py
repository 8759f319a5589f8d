"""``python -m odflow.export``: see :mod:`odflow.export.cli`."""

import sys

from odflow.export.cli import main
from odflow.utils.cli import run_cli

if __name__ == "__main__":
    sys.exit(run_cli(main))
