"""``python -m odflow <command>``: the same as the ``odflow`` console script."""

import sys

from odflow.cli import main

sys.exit(main())
