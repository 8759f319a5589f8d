#!/usr/bin/env python
"""The tutorial's seven config edits (and overrides) as one command; see --help."""

import sys

import _bootstrap  # noqa: F401

from odflow.utils.cli import run_cli
from odflow.workflow.pipeline_config import main

if __name__ == "__main__":
    sys.exit(run_cli(main))
