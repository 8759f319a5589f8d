"""``exporter_main_v2.py``'s command line (the TF2 Object Detection API's flags) as
``odflow export``.

The TF2 tutorials export with

    python exporter_main_v2.py --input_type image_tensor \\
        --pipeline_config_path models/my_ssd/pipeline.config \\
        --trained_checkpoint_dir models/my_ssd --output_directory exported-models/my_model

``--trained_checkpoint_dir`` is a directory: its latest checkpoint is exported (what
``odflow export`` does with a directory for ``--trained_checkpoint_prefix``).  The output is
odflow's export (``odflow.export.exporter``): the frozen graph, ``saved_model/`` (the TF1
``serving_default`` signature and, as the TF2 tutorials' client expects, callable:
``tf.saved_model.load(path)(images)``), the checkpoint and ``pipeline.config``.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from odflow.export.cli import add_export_flags
from odflow.utils.cli import run_cli


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="exporter_main_v2.py",
        description="Export the latest checkpoint of --trained_checkpoint_dir with the TF2 "
                    "Object Detection API's flags; the same as 'odflow export' (see its --help).")
    add_export_flags(parser, "--trained_checkpoint_dir",
                     "the training directory; its latest checkpoint is exported")
    return parser


def export_args(argv: Sequence[str] | None = None) -> list[str]:
    """The ``odflow export`` command line that ``exporter_main_v2.py``'s flags mean."""
    args = build_parser().parse_args(argv)
    return ["--input_type", args.input_type, "--pipeline_config_path", args.pipeline_config_path,
            "--trained_checkpoint_prefix", args.trained_checkpoint_dir,
            "--output_directory", args.output_directory]


def run(argv: Sequence[str] | None = None) -> int:
    from odflow.export.cli import run as export

    return export(export_args(argv))


def main(argv: Sequence[str] | None = None) -> int:
    return run_cli(run, argv)
