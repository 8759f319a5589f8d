#!/usr/bin/env python
"""Write datasets/label_map.pbtxt from class names (ids 1..N in order); see --help."""

import sys

import _bootstrap  # noqa: F401

from odflow.label_map import main

if __name__ == "__main__":
    sys.exit(main())
