#!/usr/bin/env python
"""Render metrics JSON files as an HTML table for Snakemake's report; see --help."""

import sys

import _bootstrap  # noqa: F401

from odflow.report import main

if __name__ == "__main__":
    sys.exit(main())
