#!/usr/bin/env python
"""COCO metrics of an exported file on eval records (odflow evaluate-model); see --help."""

import sys

import _bootstrap  # noqa: F401

from odflow.detect.evaluate import main

if __name__ == "__main__":
    sys.exit(main())
