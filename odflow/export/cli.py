"""``export_inference_graph.py``'s command line (the TF Object Detection API's flags).

    python scripts/export_inference_graph.py --input_type image_tensor \\
        --pipeline_config_path ckpt/ssd_mobilenet_v1_coco.config \\
        --trained_checkpoint_prefix ckpt/model.ckpt-41471 \\
        --output_directory exported_model --label_map_path datasets/label_map.pbtxt

writes exported_model/{frozen_inference_graph.pb, saved_model/, model.ckpt.*, checkpoint,
pipeline.config, label_map.pbtxt}; the directory is replaced only once the new export is complete.
(``python -m odflow.export`` is the same command.)
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from odflow.utils.cli import add_clip_before_nms_flag, run_cli, start_job


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_export_flags(parser, "--trained_checkpoint_prefix",
                     "checkpoint to export, e.g. ckpt/model.ckpt-41471 (a directory means its "
                     "latest checkpoint)")
    parser.add_argument("--label_map_path", default=None,
                        help="label map to copy beside the model as label_map.pbtxt")
    parser.add_argument("--use_moving_averages", default="auto",
                        choices=("auto", "true", "false"),
                        help="export the checkpoint's V/ExponentialMovingAverage values: auto = "
                             "when eval_config.use_moving_averages is true and the checkpoint "
                             "has them (as the API's exporter did)")
    add_clip_before_nms_flag(parser)
    parser.add_argument("--log_file", default=None, help="also write the log to this file")
    return parser.parse_args(argv)


def add_export_flags(parser: argparse.ArgumentParser, checkpoint_flag: str,
                     checkpoint_help: str) -> None:
    """The flags ``export_inference_graph.py`` shares with the TF2 API's ``exporter_main_v2.py``
    (``odflow.export.tf2_flags``), declared once so the two commands cannot drift apart; only
    the checkpoint's flag differs (``--trained_checkpoint_prefix`` / ``_dir``)."""
    parser.add_argument("--input_type", default="image_tensor",
                        help="image_tensor (uint8 [batch, height, width, 3], default) or "
                             "encoded_image_string_tensor (JPEG/PNG strings [batch])")
    parser.add_argument("--pipeline_config_path", required=True,
                        help="the pipeline config the checkpoint was trained with")
    parser.add_argument(checkpoint_flag, required=True, help=checkpoint_help)
    parser.add_argument("--output_directory", required=True,
                        help="directory to write (replaced if it holds a previous export)")


def run(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    start_job(args.log_file)
    from odflow.export.exporter import export_inference_graph  # TensorFlow: after --help

    export_inference_graph(
        input_type=args.input_type,
        pipeline_config_path=args.pipeline_config_path,
        trained_checkpoint_prefix=args.trained_checkpoint_prefix,
        output_directory=args.output_directory,
        label_map_path=args.label_map_path,
        use_moving_averages=args.use_moving_averages,
        clip_before_nms=args.clip_before_nms,
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run_cli(run, argv)
