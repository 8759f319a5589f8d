"""COCO box metrics of a model on the eval records: one pass, then done.

Upstream's evaluator waited for new checkpoints and could hang forever; here an evaluation
reads every eval record once and returns.  Detections and groundtruth are scaled to the
*original* image size in pixels before they reach the COCO evaluator, because COCO's
small/medium/large areas are in pixels of the image as annotated, not of the 300x300 input.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import tensorflow as tf

from odflow import checkpoints
from odflow import label_map as label_map_lib
from odflow.errors import OdflowError
from odflow.evaluation.coco import EVAL_SUBDIR, CocoEvaluator
from odflow.train.ema import SUFFIX as EMA_SUFFIX
from odflow.train.summaries import SummaryWriter

log = logging.getLogger(__name__)

SUPPORTED_METRICS = ("coco_detection_metrics",)


class EvaluationAborted(Exception):
    """An evaluation stopped early because training was asked to stop."""


def eval_reader(config):
    """The first ``eval_input_reader`` (upstream's ``eval_0``); an error when there is none."""
    if not config.eval_input_reader:
        raise OdflowError("the config has no eval_input_reader; add one "
                          "(tf_record_input_reader { input_path: \"val.record\" } and "
                          "label_map_path) to evaluate")
    reader = config.eval_input_reader[0]
    if reader.WhichOneof("input_reader") != "tf_record_input_reader" or \
            not reader.tf_record_input_reader.input_path:
        raise OdflowError("eval_input_reader.tf_record_input_reader.input_path is not set; name "
                          "the eval record file(s)")
    if not reader.label_map_path:
        raise OdflowError("eval_input_reader.label_map_path is not set; the COCO metrics need "
                          "the label map's categories")
    return reader


def record_paths(reader, field: str) -> list[str]:
    """The reader's record files; a pattern matching nothing is an error naming the field."""
    from odflow.data.records import expand_record_paths

    try:
        return expand_record_paths(list(reader.tf_record_input_reader.input_path))
    except OdflowError as error:
        raise OdflowError(f"{field}.tf_record_input_reader.input_path: {error}") from None


def check_eval_config(config) -> None:
    """Reject eval_config settings odflow does not implement, naming the field."""
    eval_config = config.eval_config
    for metric in eval_config.metrics_set:
        if metric not in SUPPORTED_METRICS:
            raise OdflowError(f"eval_config.metrics_set: {metric!r} is not supported; odflow "
                              f"computes {', '.join(SUPPORTED_METRICS)}")
    if eval_config.use_moving_averages and not config.train_config.optimizer.use_moving_average:
        raise OdflowError("eval_config.use_moving_averages is true but "
                          "train_config.optimizer.use_moving_average is false, so checkpoints "
                          "hold no averages; set one of them accordingly")
    for field in ("ignore_groundtruth", "eval_instance_masks", "force_no_resize"):
        if getattr(eval_config, field):
            raise OdflowError(f"eval_config.{field}: true is not supported by odflow; remove it")


def categories(reader) -> list[dict]:
    labels = label_map_lib.load(reader.label_map_path)
    return [{"id": item.id, "name": item.name} for item in labels.items]


def _image_key(source_id: bytes, index: int) -> str:
    text = source_id.decode("utf-8", "replace") if source_id else ""
    return text or f"image-{index}"


def groundtruth_in_true_image_frame(boxes: np.ndarray, true_shapes: np.ndarray,
                                    padded_size: tuple[int, int]) -> np.ndarray:
    """Normalised ground-truth boxes of the padded model input -> relative to the true
    (unpadded) image, the frame of the detections.

    With ``keep_aspect_ratio_resizer { pad_to_max_dimension: true }`` (EfficientDet) the input
    pipeline moves the boxes into the padded square, as the TF2 API's inputs do, while
    ``postprocess`` gives detections relative to the true image (``change_coordinate_frame``
    to the clip window).  The TF2 API's evaluation brings the ground truth back the same way
    before scaling both to the original image (``eval_util.result_dict_for_batched_example``:
    ``_scale_box_to_normalized_true_image``, the window ``[0, 0, h / H, w / W]``); without it
    the ground truth would shrink by ``h / H`` against the detections, and IoUs and COCO's
    area ranges would be wrong.  Unpadded inputs (``true == padded``) are unchanged.
    """
    height, width = padded_size
    scale = true_shapes[:, :2].astype(np.float64) / np.array([height, width], np.float64)
    return (boxes / np.tile(scale, 2)[:, np.newaxis, :]).astype(boxes.dtype)


class Evaluator:
    """Evaluates ``model`` (its current variables) on the config's first eval reader."""

    def __init__(self, model, config, *, backend: str = "faster", seed: int | None = None):
        check_eval_config(config)
        self.model = model
        self.config = config
        self.reader = eval_reader(config)
        self.categories = categories(self.reader)
        self.backend = backend
        self.seed = seed

        @tf.function(reduce_retracing=True)
        def detect(images: tf.Tensor) -> dict:
            preprocessed, true_shapes = model.preprocess(images)
            predictions = model.predict(preprocessed, training=False)
            detections = model.postprocess(predictions, true_shapes)
            return {key: detections[key] for key in
                    ("detection_boxes", "detection_scores", "detection_classes",
                     "num_detections")}
        self._detect = detect

    def dataset(self) -> tf.data.Dataset:
        from odflow.inputs import build_dataset
        return build_dataset(self.reader, model_config=self.config.model,
                             batch_size=max(1, self.config.eval_config.batch_size),
                             is_training=False, seed=self.seed, field="eval_input_reader")

    def run(self, should_stop: Callable[[], bool] | None = None) -> CocoEvaluator:
        """Detect on every eval image; return the filled ``CocoEvaluator`` (``report`` it).

        ``should_stop`` is polled between batches: Ctrl+C during a periodic evaluation of a
        large eval set must not wait for the whole pass (the checkpoint is already saved).
        """
        evaluator = CocoEvaluator(
            self.categories, backend=self.backend,
            include_per_category=self.config.eval_config.include_metrics_per_category)
        index = 0
        batches = iter(self.dataset())
        while True:
            try:
                batch = next(batches)
            except StopIteration:
                break
            except tf.errors.OpError as error:  # a corrupt image or record: name it
                from odflow.train.batches import data_error
                raise data_error(record_paths(self.reader, "eval_input_reader"), error,
                                 "eval_input_reader") from None
            if should_stop is not None and should_stop():
                raise EvaluationAborted()
            detections = {k: v.numpy() for k, v in self._detect(batch["image"]).items()}
            shapes = batch["original_image_shape"].numpy()
            gt_boxes = groundtruth_in_true_image_frame(
                batch["groundtruth_boxes"].numpy(), batch["true_image_shape"].numpy(),
                tuple(batch["image"].shape[1:3]))
            gt_classes = batch["groundtruth_classes"].numpy()
            gt_counts = batch["num_groundtruth_boxes"].numpy()
            gt_crowd = batch["groundtruth_is_crowd"].numpy()
            source_ids = batch["source_id"].numpy()
            for i in range(len(shapes)):
                key = _image_key(source_ids[i], index)
                index += 1
                scale = np.array([shapes[i][0], shapes[i][1]] * 2, np.float64)
                n = int(gt_counts[i])
                evaluator.add_groundtruth(key, gt_boxes[i, :n] * scale, gt_classes[i, :n],
                                          is_crowd=gt_crowd[i, :n])
                m = int(detections["num_detections"][i])
                evaluator.add_detections(
                    key, np.clip(detections["detection_boxes"][i, :m], 0.0, 1.0) * scale,
                    detections["detection_scores"][i, :m],
                    np.round(detections["detection_classes"][i, :m]).astype(np.int64))
        if index == 0:
            paths = list(self.reader.tf_record_input_reader.input_path)
            raise OdflowError(f"the eval records {paths} hold no example; nothing to evaluate")
        return evaluator


def report(evaluator: CocoEvaluator, *, step: int, model_dir: str | os.PathLike | None,
           metrics_json: str | os.PathLike | None, checkpoint: str | None = None
           ) -> dict[str, float]:
    """Print the twelve lines, write ``eval_0`` events and the JSON; return the metrics."""
    metrics = evaluator.evaluate()
    log.info("evaluation at step %d on %d images:\n%s", step, evaluator.num_images,
             evaluator.summary_text())
    if model_dir is not None:
        writer = SummaryWriter(Path(model_dir) / EVAL_SUBDIR)
        writer.scalars(metrics, step)
        writer.close()
    if metrics_json is not None:
        write_metrics_json(evaluator, metrics_json, step=step, checkpoint=checkpoint)
    return metrics


def write_metrics_json(evaluator: CocoEvaluator, path: str | os.PathLike, *, step: int,
                       checkpoint: str | None) -> None:
    """The evaluator's metrics JSON, plus which checkpoint and step it measures."""
    evaluator.write_json(path, extra={"global_step": int(step), "checkpoint": checkpoint})
    log.info("wrote %s", path)


def resolve_checkpoint(checkpoint_path: str | None, checkpoint_dir: str | None) -> str:
    """The prefix to evaluate: ``checkpoint_path`` itself, or the latest in ``checkpoint_dir``."""
    if checkpoint_path:
        return checkpoints.find_checkpoint(checkpoint_path, what="--checkpoint_path")
    if not checkpoint_dir:
        raise OdflowError("nothing to evaluate: give --checkpoint_dir or --checkpoint_path")
    if not Path(checkpoint_dir).is_dir():
        raise OdflowError(f"--checkpoint_dir {checkpoint_dir} is not a directory")
    return checkpoints.find_checkpoint(checkpoint_dir, what="--checkpoint_dir")


def load_for_eval(model, prefix: str, use_moving_averages: bool) -> int:
    """Put the checkpoint's weights (its averages if asked, as upstream) into ``model``.

    Returns the checkpoint's global step (0 for a checkpoint without one, like the zoo's).
    """
    variables = dict(model.named_variables())
    checkpoints.assign_from(prefix, variables, required=True)
    reader = tf.train.load_checkpoint(prefix)
    if use_moving_averages:
        averages = {name: v for name, v in variables.items()
                    if reader.has_tensor(f"{name}/{EMA_SUFFIX}")}
        if not averages:
            raise OdflowError(f"eval_config.use_moving_averages is true but {prefix} holds no "
                              f"*/{EMA_SUFFIX} variables; set it to false or train with "
                              "train_config.optimizer.use_moving_average")
        for name, variable in averages.items():
            variable.assign(reader.get_tensor(f"{name}/{EMA_SUFFIX}"))
        log.info("evaluating the moving averages of %d variables", len(averages))
    if reader.has_tensor("global_step"):
        return int(np.asarray(reader.get_tensor("global_step")))
    return checkpoints.step_of(prefix) or 0


def evaluate_checkpoint(config, prefix: str, *, model_dir: str | os.PathLike | None,
                        metrics_json: str | os.PathLike | None, backend: str = "faster",
                        clip_before_nms: bool = False) -> dict[str, float]:
    """Standalone evaluation (``--run_once``): build, load, evaluate once, report.

    ``clip_before_nms``: the NMS clips boxes first, as the zoo's 2018 graphs did
    (``odflow.model.postprocess``); the metrics of the two orders differ slightly."""
    from odflow.model import builder

    check_eval_config(config)
    eval_reader(config)  # fail on a missing eval reader before building anything
    model = builder.build_pipeline(config, is_training=False, clip_before_nms=clip_before_nms)
    step = load_for_eval(model, prefix, config.eval_config.use_moving_averages)
    log.info("evaluating %s (step %d)", prefix, step)
    evaluator = Evaluator(model, config, backend=backend).run()
    return report(evaluator, step=step, model_dir=model_dir, metrics_json=metrics_json,
                  checkpoint=prefix)
