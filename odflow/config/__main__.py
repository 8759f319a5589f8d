"""``python -m odflow.config``: see :mod:`odflow.config.cli` (also ``odflow config``)."""

import sys

from odflow.config.cli import main

sys.exit(main())
