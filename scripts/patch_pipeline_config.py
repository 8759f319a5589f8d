#!/usr/bin/env python
"""The tutorial's seven config edits (and overrides) as one command: ``odflow config patch``
with the workflow's flags; see --help."""

import sys

import _bootstrap  # noqa: F401

from odflow.config.cli import patch_pipeline_config_main

if __name__ == "__main__":
    sys.exit(patch_pipeline_config_main())
