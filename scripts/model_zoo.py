#!/usr/bin/env python
"""Fetch, build, extract and copy the model: `model_zoo.py {download,starter,extract,copy-checkpoint} --help`."""

import sys

import _bootstrap  # noqa: F401

from odflow.workflow.cli import main

if __name__ == "__main__":
    sys.exit(main())
