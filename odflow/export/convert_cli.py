"""``odflow convert``: a deployable file from an export directory.

    odflow convert --format tflite      --export_dir exported_model --output exported_model/model.tflite
    odflow convert --format tflite_int8 --export_dir exported_model --output exported_model/model_int8.tflite \\
        --calibration_records datasets/train.record --calibration_images 100
    odflow convert --format onnx        --export_dir exported_model --output exported_model/model.onnx

Each writes the file and ``<file>.json`` (input size, mean/std, label map, checkpoint sha256).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from odflow.utils.cli import run_cli, start_job
from odflow.utils.cli import true_or_false as _bool

#: odflow.export.formats.FORMATS, repeated so that --help does not import TensorFlow
FORMATS = ("tflite", "tflite_int8", "onnx")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="odflow convert", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--format", required=True, choices=FORMATS)
    parser.add_argument("--export_dir", required=True,
                        help="what export_inference_graph.py wrote (pipeline.config, model.ckpt, "
                             "saved_model/, label_map.pbtxt)")
    parser.add_argument("--output", required=True, help="file to write")
    parser.add_argument("--calibration_records", nargs="+", default=None,
                        help="tflite_int8: records whose images calibrate the quantisation")
    parser.add_argument("--calibration_images", type=int, default=100,
                        help="tflite_int8: how many of their images (default 100)")
    parser.add_argument("--use_regular_nms", type=_bool, default=True,
                        help="tflite: per-class NMS as the frozen graph (true, default) or "
                             "TFLite's fast class-agnostic variant (false)")
    parser.add_argument("--per_channel", type=_bool, default=False,
                        help="tflite_int8: one quantisation scale per output channel (true) or "
                             "per weight tensor (false, default: a third smaller on thin "
                             "networks; on the demo as accurate)")
    parser.add_argument("--opset", type=int, default=17, help="onnx: the ONNX opset")
    parser.add_argument("--log_file", default=None, help="also write the log to this file")
    return parser.parse_args(argv)


def run(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    start_job(args.log_file)
    from odflow.export import formats

    if args.format == "onnx":
        formats.export_onnx(args.export_dir, args.output, opset=args.opset)
    else:
        formats.export_tflite(args.export_dir, args.output, int8=args.format == "tflite_int8",
                              calibration_records=args.calibration_records,
                              calibration_images=args.calibration_images,
                              use_regular_nms=args.use_regular_nms,
                              per_channel=args.per_channel)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run_cli(run, argv)
