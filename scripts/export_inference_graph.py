#!/usr/bin/env python
"""Export a trained checkpoint for inference, with the TF Object Detection API's flags; see --help.

All logic lives in ``odflow.export`` (``odflow.export.cli`` for the flags).
"""

import sys

import _bootstrap  # noqa: F401

from odflow.export.cli import main

if __name__ == "__main__":
    sys.exit(main())
