#!/usr/bin/env python
"""Export the latest checkpoint of a training directory, with the TF2 tutorial's
``exporter_main_v2.py`` flags; see --help.

An alias of ``odflow export``; the flags are translated in ``odflow.export.tf2_flags``.
"""

import sys

import _bootstrap  # noqa: F401

from odflow.export.tf2_flags import main

if __name__ == "__main__":
    sys.exit(main())
