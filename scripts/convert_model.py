#!/usr/bin/env python
"""TFLite (float, int8) or ONNX from an export directory (odflow convert); see --help."""

import sys

import _bootstrap  # noqa: F401

from odflow.export.convert_cli import main

if __name__ == "__main__":
    sys.exit(main())
