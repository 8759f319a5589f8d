#!/usr/bin/env python
"""Compare the experiments' runs: runs/summary.csv, .md, .html and plots/runs_mAP.png."""

import sys

import _bootstrap  # noqa: F401

from odflow.runs_summary import main

if __name__ == "__main__":
    sys.exit(main())
