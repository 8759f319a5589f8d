#!/usr/bin/env python
"""Run an exported model on images (odflow detect); see --help."""

import sys

import _bootstrap  # noqa: F401

from odflow.detect.cli import main

if __name__ == "__main__":
    sys.exit(main())
