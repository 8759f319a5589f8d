"""``python -m odflow.workflow``: see :mod:`odflow.workflow.cli` (also ``odflow zoo``)."""

import sys

from odflow.workflow.cli import main

sys.exit(main())
