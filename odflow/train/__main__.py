"""``python -m odflow.train``: the same command line as ``scripts/model_main.py``."""

import sys

from odflow.train.cli import main

sys.exit(main())
