"""``python -m odflow.export``: see :mod:`odflow.export.cli` (also ``odflow export``)."""

import sys

from odflow.export.cli import main

sys.exit(main())
