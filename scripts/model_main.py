#!/usr/bin/env python
"""Train or evaluate an SSD detector, with the tutorial's ``model_main.py`` flags.

    python scripts/model_main.py --model_dir=ckpt/ --pipeline_config_path=ckpt/pipeline.config
    python scripts/model_main.py --pipeline_config_path=... --checkpoint_dir=ckpt/ --run_once \
        --metrics_json=eval/metrics.json

All logic lives in ``odflow.train`` (see ``--help``).
"""

import sys

import _bootstrap  # noqa: F401

from odflow.train.cli import main

if __name__ == "__main__":
    sys.exit(main())
