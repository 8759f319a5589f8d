#!/usr/bin/env python
"""Write eval/metrics.json for the exported checkpoint (last or best); see --help."""

import sys

import _bootstrap  # noqa: F401

from odflow.train.best import main

if __name__ == "__main__":
    sys.exit(main())
