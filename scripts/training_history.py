#!/usr/bin/env python
"""Write the scalars of a training run's event files to ckpt/history.json; see --help."""

import sys

import _bootstrap  # noqa: F401

from odflow.history import main

if __name__ == "__main__":
    sys.exit(main())
