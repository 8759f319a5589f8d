"""``python -m odflow.data``: see :mod:`odflow.data.cli` (also ``odflow data``)."""

import sys

from odflow.data.cli import main

sys.exit(main())
