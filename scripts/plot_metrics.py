#!/usr/bin/env python
"""Plot mAP, AR and loss curves from the event files of a model_dir; see --help."""

import sys

import _bootstrap  # noqa: F401

from odflow.plots import main

if __name__ == "__main__":
    sys.exit(main())
