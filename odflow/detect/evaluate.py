"""``odflow evaluate-model``: COCO box metrics of an exported file on the eval records.

The same ``CocoEvaluator`` as training-time evaluation, fed the way
``odflow.train.evaluate`` feeds it (images decoded by TensorFlow's decoder, groundtruth and
detections in pixels of the original image, every detection the model returns), but the
detections come from the deployed file through its runner, one image at a time: what a user
of that file would get.  (JPEG decoders differ by a few grey levels per pixel; using the
training evaluator's keeps ``metrics_frozen_graph.json`` comparable with ``metrics.json``.)

    odflow evaluate-model --model exported_model/model.tflite --records datasets/val.record \\
        --label_map datasets/label_map.pbtxt --output eval/metrics_tflite.json
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence

import numpy as np

from odflow.utils.cli import run_cli, start_job

log = logging.getLogger(__name__)


def evaluate(detector, record_paths: list[str], categories: list[dict], *,
             backend: str = "faster"):
    """The filled ``CocoEvaluator`` for ``detector`` on every image of the records."""
    import tensorflow as tf
    from tqdm import tqdm

    from odflow.data.records import count_examples, iter_examples
    from odflow.errors import OdflowError
    from odflow.evaluation.coco import CocoEvaluator

    evaluator = CocoEvaluator(categories, backend=backend)
    total = count_examples(record_paths)
    for index, example in enumerate(tqdm(iter_examples(record_paths), total=total, unit="img",
                                         desc=f"evaluate {detector.format}")):
        image = tf.io.decode_image(example.encoded, channels=3, expand_animations=False).numpy()
        height, width = image.shape[:2]
        key = example.source_id or f"image-{index}"
        scale = np.array([height, width, height, width], np.float64)
        evaluator.add_groundtruth(key, example.boxes * scale, example.classes,
                                  is_crowd=example.is_crowd)
        detections = detector.detect(image)
        evaluator.add_detections(key, detections.boxes * scale, detections.scores,
                                 detections.classes)
    if evaluator.num_images == 0:
        raise OdflowError(f"the records {record_paths} hold no example; nothing to evaluate")
    return evaluator


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="odflow evaluate-model", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True,
                        help="export directory, frozen graph .pb, saved_model/, .tflite or .onnx")
    parser.add_argument("--records", required=True, nargs="+", help="eval record file(s)")
    parser.add_argument("--label_map", required=True, help="the label map (COCO categories)")
    parser.add_argument("--output", required=True, help="metrics JSON to write")
    parser.add_argument("--log_file", default=None, help="also write the log to this file")
    return parser.parse_args(argv)


def run(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    start_job(args.log_file)
    from odflow import label_map as label_map_lib
    from odflow.data.records import expand_record_paths
    from odflow.detect.runners import load_detector

    labels = label_map_lib.load(args.label_map)
    categories = [{"id": item.id, "name": item.name} for item in labels.items]
    records = expand_record_paths(args.records)
    detector = load_detector(args.model)
    evaluator = evaluate(detector, records, categories)
    evaluator.evaluate()
    log.info("%s (%s) on %s:\n%s", detector.path, detector.format, ", ".join(records),
             evaluator.summary_text())
    evaluator.write_json(args.output, extra={"model": str(detector.path),
                                             "format": detector.format, "records": records})
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run_cli(run, argv)
