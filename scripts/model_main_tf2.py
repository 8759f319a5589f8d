#!/usr/bin/env python
"""Train or evaluate an SSD detector, with the TF2 tutorial's ``model_main_tf2.py`` flags.

    python scripts/model_main_tf2.py --model_dir=ckpt --pipeline_config_path=ckpt/x.config
    python scripts/model_main_tf2.py --model_dir=ckpt --pipeline_config_path=... \
        --checkpoint_dir=ckpt

An alias of ``odflow train``; the flags are translated in ``odflow.train.tf2_flags``
(see ``--help``).
"""

import sys

import _bootstrap  # noqa: F401

from odflow.train.tf2_flags import main

if __name__ == "__main__":
    sys.exit(main())
