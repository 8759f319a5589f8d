"""``odflow anchors fit``: the anchor generator's own fields, searched for a higher coverage.

Only fields of the generator the config already uses are searched, so the result is a few
``pipeline.overrides`` lines a user can read, paste and keep:

- ``ssd_anchor_generator``: ``min_scale``, ``max_scale`` (an explicit ``scales`` list is
  cleared for them), ``aspect_ratios`` and ``reduce_boxes_in_lowest_layer`` (whose lowest
  layer otherwise has a fixed 0.1-scale anchor: the smallest boxes' only chance);
- ``multiscale_anchor_generator``: ``anchor_scale``, ``scales_per_octave``, ``aspect_ratios``.

The search is coordinate descent over bounded grids (each field's candidates tried with the
others fixed, best kept, repeated until a round changes nothing), starting from the config's
values.  A candidate must beat the current one strictly (more boxes covered, then a higher mean
best IoU), so ties keep the config's values and the result is deterministic.  Aspect-ratio
candidates come from the data: quantiles of the boxes' width/height in pixels at the input
size.  Every candidate is scored by building its generator from the overridden config, so the
printed lines are exactly what was measured.

Changing the number of anchors per location (a different count of aspect ratios, scales per
octave, or the lowest layer's reduction) changes the box predictor's output shapes: the
fine-tune checkpoint's predictor weights no longer fit and are not restored (the feature
extractor's still are).  ``FitResult.head_shapes_change`` says so.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from odflow.anchors.coverage import Coverage, compute_coverage
from odflow.anchors.groundtruth import subsample
from odflow.anchors.model import (
    anchors_for,
    boxes_at_input,
    feature_map_shapes,
    input_size,
    matched_threshold,
)
from odflow.config.overrides import apply_overrides
from odflow.errors import OdflowError
from odflow.protos import pipeline_pb2

log = logging.getLogger(__name__)

GENERATOR = "model.ssd.anchor_generator"
#: Boxes the search scores each candidate on (evenly sampled from all of them).
DEFAULT_MAX_BOXES = 5000
MAX_ROUNDS = 4

_MIN_SCALES = (0.02, 0.03, 0.05, 0.07, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4)
_MAX_SCALES = (0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1.0)
_ANCHOR_SCALES = (1.0, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0)
_SCALES_PER_OCTAVE = (1, 2, 3, 4)


@dataclass(frozen=True)
class FitResult:
    """Coverage before and after, the override lines that give ``after``, and anchors per
    location before and after (they differ when the head's shapes change)."""

    before: Coverage
    after: Coverage
    overrides: list[str]
    anchors_per_location_before: list[int]
    anchors_per_location_after: list[int]

    @property
    def head_shapes_change(self) -> bool:
        return self.anchors_per_location_before != self.anchors_per_location_after

    def report_lines(self) -> list[str]:
        """What ``odflow anchors fit`` prints: coverage before/after and the lines to use."""
        lines = [f"before: {self.before.line()}", f"after:  {self.after.line()}"]
        if not self.overrides:
            lines.append("the config's anchors are already the best the search found; "
                         "nothing to change")
            return lines
        lines.append("to use them, add to config.yaml (or set anchors.fit: true):")
        lines.append("pipeline:")
        lines.append("  overrides:")
        lines += [f'    - "{line}"' for line in self.overrides]
        if self.head_shapes_change:
            lines.append(head_shapes_warning(self))
        return lines


def head_shapes_warning(result: FitResult) -> str:
    return (f"the anchors per location change from {result.anchors_per_location_before} to "
            f"{result.anchors_per_location_after}: the box predictor's shapes change, so its "
            "weights in the fine-tune checkpoint are dropped (the feature extractor's are still "
            "restored) and the head trains from scratch")


def _number(value: float) -> str:
    return f"{value:.4g}"


def _ratio_list(values) -> str:
    return "[" + ", ".join(_number(v) for v in values) + "]"


def ratio_candidates(boxes: np.ndarray, image_size: tuple[int, int], current: list[float]
                     ) -> list[tuple[float, ...]]:
    """Aspect-ratio sets to try: the config's, and quantiles of the boxes' pixel width/height
    (as many as the config has, and three, and one), rounded to two significant digits."""
    height, width = image_size
    w = (boxes[:, 3] - boxes[:, 1]) * width
    h = (boxes[:, 2] - boxes[:, 0]) * height
    ok = (w > 0) & (h > 0)
    candidates = [tuple(float(v) for v in current)]
    if not ok.any():
        return candidates
    log_ratio = np.log(w[ok] / h[ok])
    for count in dict.fromkeys((len(current) or 1, 3, 1)):
        levels = (np.arange(count) + 0.5) / count
        ratios = np.exp(np.quantile(log_ratio, levels))
        rounded = tuple(sorted(dict.fromkeys(float(f"{r:.2g}") for r in ratios)))
        if rounded not in candidates:
            candidates.append(rounded)
    return candidates


def _grid(current: float, values: tuple[float, ...]) -> list[float]:
    return sorted(set(values) | {float(_number(current))})


def _search_space(config: pipeline_pb2.TrainEvalPipelineConfig, boxes: np.ndarray,
                  image_size: tuple[int, int]) -> tuple[dict[str, list], dict[str, object],
                                                      Callable[[dict], list[str]]]:
    """(field -> candidates, starting values, values -> override lines) for the generator."""
    generator = config.model.ssd.anchor_generator
    which = generator.WhichOneof("anchor_generator_oneof")
    if which == "ssd_anchor_generator":
        ssd = generator.ssd_anchor_generator
        prefix = f"{GENERATOR}.ssd_anchor_generator"
        start = {"min_scale": float(_number(ssd.min_scale)),
                 "max_scale": float(_number(ssd.max_scale)),
                 "aspect_ratios": tuple(float(r) for r in ssd.aspect_ratios),
                 "reduce_boxes_in_lowest_layer": bool(ssd.reduce_boxes_in_lowest_layer)}
        space = {"min_scale": _grid(start["min_scale"], _MIN_SCALES),
                 "max_scale": _grid(start["max_scale"], _MAX_SCALES),
                 "aspect_ratios": ratio_candidates(boxes, image_size, list(ssd.aspect_ratios)),
                 "reduce_boxes_in_lowest_layer": [start["reduce_boxes_in_lowest_layer"],
                                                  not start["reduce_boxes_in_lowest_layer"]]}
        explicit_scales = bool(ssd.scales)

        def lines(values: dict) -> list[str]:
            out = [f"{prefix}.scales=[]"] if explicit_scales else []
            out += [f"{prefix}.min_scale={_number(values['min_scale'])}",
                    f"{prefix}.max_scale={_number(values['max_scale'])}",
                    f"{prefix}.aspect_ratios={_ratio_list(values['aspect_ratios'])}",
                    (f"{prefix}.reduce_boxes_in_lowest_layer="
                     f"{str(values['reduce_boxes_in_lowest_layer']).lower()}")]
            return out
        return space, start, lines
    if which == "multiscale_anchor_generator":
        multi = generator.multiscale_anchor_generator
        prefix = f"{GENERATOR}.multiscale_anchor_generator"
        start = {"anchor_scale": float(_number(multi.anchor_scale)),
                 "scales_per_octave": int(multi.scales_per_octave),
                 "aspect_ratios": tuple(float(r) for r in multi.aspect_ratios)}
        space = {"anchor_scale": _grid(start["anchor_scale"], _ANCHOR_SCALES),
                 "scales_per_octave": sorted(set(_SCALES_PER_OCTAVE)
                                             | {start["scales_per_octave"]}),
                 "aspect_ratios": ratio_candidates(boxes, image_size, list(multi.aspect_ratios))}

        def lines(values: dict) -> list[str]:
            return [f"{prefix}.anchor_scale={_number(values['anchor_scale'])}",
                    f"{prefix}.scales_per_octave={values['scales_per_octave']}",
                    f"{prefix}.aspect_ratios={_ratio_list(values['aspect_ratios'])}"]
        return space, start, lines
    raise OdflowError(f"{GENERATOR}: anchors fit searches ssd_anchor_generator and "
                      f"multiscale_anchor_generator fields; this config uses {which or 'none'} "
                      "(its anchor sizes are explicit: edit them instead)")


def fit_anchors(config: pipeline_pb2.TrainEvalPipelineConfig, boxes: np.ndarray,
                max_boxes: int = DEFAULT_MAX_BOXES) -> FitResult:
    """Search the generator's fields for the highest coverage of ``boxes`` (normalised, in
    the model input's frame: ``odflow.anchors.model.boxes_at_input``).

    Scores on at most ``max_boxes`` boxes (evenly sampled); ``before`` and ``after`` are then
    measured on all of them.
    """
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    if not len(boxes):
        raise OdflowError("anchors fit: the training records hold no boxes of the model's "
                          "classes; there is nothing to fit the anchors to")
    image_size = input_size(config)
    shapes = feature_map_shapes(config)
    threshold = matched_threshold(config)
    space, start, lines = _search_space(config, boxes, image_size)
    sample = subsample(boxes, max_boxes)

    def anchors(values: dict | None):
        generator = config.model.ssd.anchor_generator
        if values is not None:
            generator = apply_overrides(config, lines(values)).model.ssd.anchor_generator
        return anchors_for(generator, shapes, image_size, threshold)

    scores: dict[tuple, tuple[int, float]] = {}

    def score(values: dict) -> tuple[int, float]:
        key = tuple(values.items())
        if key not in scores:
            if values.get("min_scale", 0.0) > values.get("max_scale", 1.0):
                scores[key] = (-1, 0.0)
            else:
                coverage = compute_coverage(sample, anchors(values).anchors, threshold,
                                            image_size)
                scores[key] = (coverage.overall.covered, round(coverage.mean_best_iou, 6))
        return scores[key]

    best = dict(start)
    for _ in range(MAX_ROUNDS):
        changed = False
        for name, candidates in space.items():
            for candidate in candidates:
                trial = {**best, name: candidate}
                if score(trial) > score(best):
                    best, changed = trial, True
        if not changed:
            break
    log.info("anchors fit: %d candidates scored on %d of %d boxes", len(scores), len(sample),
             len(boxes))
    before_anchors = anchors(None)
    after_anchors = anchors(best) if best != start else before_anchors
    before = compute_coverage(boxes, before_anchors.anchors, threshold, image_size)
    after = compute_coverage(boxes, after_anchors.anchors, threshold, image_size)
    if best == start or after.overall.covered <= before.overall.covered:
        return FitResult(before, before, [], before_anchors.anchors_per_location,
                         before_anchors.anchors_per_location)
    return FitResult(before, after, lines(best), before_anchors.anchors_per_location,
                     after_anchors.anchors_per_location)


def apply_fitted_anchors(config: pipeline_pb2.TrainEvalPipelineConfig,
                         max_boxes: int = DEFAULT_MAX_BOXES
                         ) -> pipeline_pb2.TrainEvalPipelineConfig:
    """``config`` with its anchors fitted to its own training records (``anchors.fit: true``
    in the workflow); logs the coverage before and after, the lines applied and, when the
    head's shapes change, that its restored weights are dropped."""
    from odflow.anchors.groundtruth import read_boxes, require_boxes
    from odflow.anchors.measure import train_record_paths

    groundtruth = read_boxes(train_record_paths(config), config.model.ssd.num_classes)
    require_boxes(groundtruth, config.model.ssd.num_classes)
    boxes = boxes_at_input(config, groundtruth.boxes, groundtruth.image_sizes)
    result = fit_anchors(config, boxes, max_boxes=max_boxes)
    log.info("anchors fit: before, %s", result.before.line())
    log.info("anchors fit: after, %s", result.after.line())
    if not result.overrides:
        log.info("anchors fit: the config's anchors stay (no candidate covers more boxes)")
        return config
    for line in result.overrides:
        log.info("anchors fit: %s", line)
    if result.head_shapes_change:
        log.warning("anchors fit: %s", head_shapes_warning(result))
    return apply_overrides(config, result.overrides)
