#!/usr/bin/env python
"""Train or evaluate an SSD detector, with the tutorial's ``model_main.py`` flags.

    python scripts/model_main.py --model_dir=ckpt/ --pipeline_config_path=ckpt/pipeline.config
    python scripts/model_main.py --pipeline_config_path=... --checkpoint_dir=ckpt/ --run_once \
        --metrics_json=eval/metrics.json

All logic lives in ``odflow.train`` (see ``--help``).
"""

import sys
from pathlib import Path

try:
    import odflow  # noqa: F401
except ImportError:  # run from a checkout without ``pip install -e .``
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from odflow.train.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
