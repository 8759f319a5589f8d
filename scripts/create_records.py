#!/usr/bin/env python
"""Make TFRecords from WIDER FACE, CSV, Pascal VOC, COCO JSON, YOLO or synthetic faces, and inspect them; see --help."""

import sys

import _bootstrap  # noqa: F401

from odflow.data.cli import main

if __name__ == "__main__":
    sys.exit(main())
