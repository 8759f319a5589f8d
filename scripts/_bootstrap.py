"""Make ``import odflow`` find this checkout when a script runs, installed or not.

The workflow's rules run these scripts in whatever environment Snakemake gives them
(the user's, a conda env from envs/, a SLURM node's); the package beside the scripts is
the one that goes with the workflow, so it comes first on the path.
"""

import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from odflow.utils.tf_startup import quiet_tensorflow_startup

quiet_tensorflow_startup()
