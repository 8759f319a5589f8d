"""``odflow data preview``: a look at the data as training reads it, before training.

Everything comes from the records and the pipeline config, never from the source files, so
the pictures show exactly what the model will get:

- ``train_augmented.png``: the first training images through the training input pipeline
  (``odflow.inputs.build_dataset``: decode, the config's ``data_augmentation_options``,
  resize to the model's input size), with their boxes and class names;
- ``train.png``: the same images without augmentation; ``val.png``: the first val images;
- ``box_stats.png``: boxes per image, box width x height in pixels at the input size (a 2-D
  histogram), aspect ratios, boxes per class;
- ``anchor_coverage.png`` and ``.json``: the share of training boxes whose best anchor IoU
  reaches the matcher's ``matched_threshold``, overall and by COCO size, and each box's best
  IoU against its size (``odflow.anchors``).

The grids read the train records in file order (the reader's shuffle switched off) so the
augmented and plain grids show the same images; the augmentations' randomness comes from
``seed``.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import numpy as np

from odflow.anchors.coverage import SIZE_NAMES, Coverage, percent
from odflow.anchors.groundtruth import GroundTruth
from odflow.anchors.measure import measure_coverage
from odflow.errors import OdflowError
from odflow.protos import pipeline_pb2
from odflow.utils.atomic import atomic_output, atomic_write_text

log = logging.getLogger(__name__)

#: The files ``write_preview`` makes in its output folder (the workflow's declared outputs).
FILES = ("train_augmented.png", "train.png", "val.png", "box_stats.png",
         "anchor_coverage.png", "anchor_coverage.json")
DEFAULT_NUM_IMAGES = 16
DEFAULT_SEED = 1

_BOX_COLOURS = ("#e41a1c", "#377eb8", "#4daf4a", "#984ea3", "#ff7f00", "#a65628")


def add_parser(commands) -> None:
    """The ``preview`` subcommand of ``odflow data``."""
    preview = commands.add_parser(
        "preview", help="pictures of the records as training reads them, box statistics, "
                        "anchor coverage",
        description="Write " + ", ".join(FILES) + " to --output_dir from the records a "
                    "pipeline config trains and evaluates on.")
    preview.add_argument("--pipeline_config", "--pipeline-config", required=True,
                         dest="pipeline_config",
                         help="the pipeline config (its model, augmentations and records)")
    preview.add_argument("--output_dir", "--output-dir", required=True, dest="output_dir",
                         help="where to write the files (e.g. plots/data)")
    preview.add_argument("--num-images", type=int, default=DEFAULT_NUM_IMAGES, metavar="N",
                         help=f"images per grid (default {DEFAULT_NUM_IMAGES})")
    preview.add_argument("--seed", type=int, default=DEFAULT_SEED,
                         help="seed of the augmentations shown (default 1)")


def run_preview(args: argparse.Namespace) -> int:
    from odflow import config as config_lib

    write_preview(config_lib.load(args.pipeline_config), args.output_dir,
                  num_images=args.num_images, seed=args.seed)
    return 0


def write_preview(config: pipeline_pb2.TrainEvalPipelineConfig, output_dir: str | Path,
                  num_images: int = DEFAULT_NUM_IMAGES, seed: int = DEFAULT_SEED) -> list[Path]:
    """Write ``FILES`` to ``output_dir``; returns their paths."""
    if num_images < 1:
        raise OdflowError(f"--num-images must be at least 1, got {num_images}")
    output = Path(output_dir)
    names = class_names(config)
    augmentations = list(config.train_config.data_augmentation_options)
    measured = measure_coverage(config)
    # Every input is read before the first file is written: a missing val record file must
    # not leave half a preview behind (nothing half-written, as for every odflow output).
    augmented = first_batch(config, "train", num_images, augmentations, seed)
    plain = first_batch(config, "train", num_images, (), seed)
    val = first_batch(config, "val", num_images, (), seed)
    written = [
        draw_grid(output / "train_augmented.png", augmented, names,
                  f"Training images after the pipeline's {len(augmentations)} augmentation(s)"
                  if augmentations else "Training images (the config has no augmentations)"),
        draw_grid(output / "train.png", plain, names, "Training images without augmentation"),
        draw_grid(output / "val.png", val, names, "Validation images"),
        draw_box_stats(output / "box_stats.png", measured.groundtruth, measured.boxes,
                       measured.anchors.image_size, names),
        draw_coverage(output / "anchor_coverage.png", measured.coverage, measured.boxes,
                      measured.anchors.image_size),
    ]
    summary = {**measured.coverage.to_dict(),
               "image_size": list(measured.anchors.image_size),
               "num_anchors": len(measured.anchors.anchors),
               "anchors_per_location": measured.anchors.anchors_per_location,
               "feature_map_shapes": [list(s) for s in measured.anchors.feature_map_shapes],
               "records": measured.groundtruth.files,
               "images": measured.groundtruth.num_images}
    json_path = output / "anchor_coverage.json"
    atomic_write_text(json_path, json.dumps(summary, indent=2) + "\n")
    written.append(json_path)
    log.info("%s", measured.coverage.line())
    for path in written:
        log.info("wrote %s", path)
    return written


def class_names(config: pipeline_pb2.TrainEvalPipelineConfig) -> dict[int, str]:
    """Label-map id -> name (ids alone when the config names no readable label map)."""
    from odflow import label_map

    path = config.train_input_reader.label_map_path
    if not path:
        return {}
    try:
        return label_map.load(path).id_to_name
    except OdflowError as error:
        log.warning("class names: %s; showing class ids", error)
        return {}


def first_batch(config: pipeline_pb2.TrainEvalPipelineConfig, split: str, count: int,
                augmentations, seed: int) -> dict[str, np.ndarray]:
    """The first ``count`` images of a split as the input pipeline gives them (a batch of
    numpy arrays; fewer when the records hold fewer)."""
    from odflow.inputs import build_dataset

    if split == "train":
        reader = pipeline_pb2.InputReader()
        reader.CopyFrom(config.train_input_reader)
        reader.shuffle = False   # file order: the plain and augmented grids match
        reader.num_epochs = 1
        field = "train_input_reader"
    else:
        if not config.eval_input_reader:
            raise OdflowError("eval_input_reader: not set; the preview shows its records")
        reader = config.eval_input_reader[0]
        field = "eval_input_reader[0]"
    dataset = build_dataset(reader, model_config=config.model, augmentations=augmentations,
                            batch_size=count, is_training=split == "train",
                            seed=seed, drop_remainder=False, field=field)
    for batch in dataset.take(1):
        return {key: value.numpy() for key, value in batch.items()}
    raise OdflowError(f"{field}: the records hold no examples")


def draw_grid(path: Path, batch: dict[str, np.ndarray], names: dict[int, str],
              title: str) -> Path:
    """Images of a batch in a grid, each box drawn with its class name."""
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

    images = batch["image"]
    count = len(images)
    columns = int(np.ceil(np.sqrt(count)))
    rows = int(np.ceil(count / columns))
    # Fixed margins instead of a layout engine: the grid is regular, and constrained layout
    # would cost more than the drawing itself.
    figure = Figure(figsize=(2.6 * columns, 2.6 * rows + 0.6), dpi=100)
    figure.suptitle(title, fontsize=13)
    grid = figure.subplots(rows, columns, squeeze=False,
                           gridspec_kw={"left": 0.01, "right": 0.99, "bottom": 0.01,
                                        "top": 1 - 0.6 / (2.6 * rows + 0.6),
                                        "wspace": 0.04, "hspace": 0.12}).ravel()
    for axes in grid:
        axes.set_axis_off()
    for index in range(count):
        axes = grid[index]
        image = np.clip(images[index], 0, 255).astype(np.uint8)
        height, width = image.shape[:2]
        axes.imshow(image)
        number = int(batch["num_groundtruth_boxes"][index])
        for box, label in zip(batch["groundtruth_boxes"][index][:number],
                              batch["groundtruth_classes"][index][:number], strict=True):
            ymin, xmin, ymax, xmax = box * [height, width, height, width]
            colour = _BOX_COLOURS[(int(label) - 1) % len(_BOX_COLOURS)]
            axes.add_patch(Rectangle((xmin, ymin), xmax - xmin, ymax - ymin, fill=False,
                                     edgecolor=colour, linewidth=1.2))
            axes.text(xmin, ymin, names.get(int(label), str(int(label))), color="white",
                      fontsize=6, va="bottom", bbox={"facecolor": colour, "pad": 0.5,
                                                     "linewidth": 0})
        source = batch["source_id"][index].decode("utf-8", "replace")
        axes.set_title(f"{source} ({number} boxes)", fontsize=7)
    return _save(figure, path)


def draw_box_stats(path: Path, groundtruth: GroundTruth, boxes: np.ndarray,
                   image_size: tuple[int, int], names: dict[int, str]) -> Path:
    """Boxes per image, width x height (pixels at the input size, from ``boxes`` in the input's
    frame), aspect ratios, classes."""
    from matplotlib.figure import Figure

    height, width = image_size
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    widths = (boxes[:, 3] - boxes[:, 1]) * width
    heights = (boxes[:, 2] - boxes[:, 0]) * height
    figure = Figure(figsize=(13, 9), dpi=100, layout="constrained")
    figure.suptitle(f"Training boxes: {len(boxes):,} in {groundtruth.num_images:,} images "
                    f"(sizes in pixels at the model's {height}x{width} input)", fontsize=13)
    per_image, sizes, ratios, classes = figure.subplots(2, 2).ravel()
    per_image.hist(groundtruth.boxes_per_image,
                   bins=np.arange(groundtruth.boxes_per_image.max(initial=0) + 2) - 0.5,
                   color="#4393c3")
    per_image.set(title="boxes per image", xlabel="boxes", ylabel="images")
    ok = (widths > 0) & (heights > 0)
    if ok.any():
        edges = np.linspace(0, max(width, height), 41)
        _, _, _, mesh = sizes.hist2d(widths[ok], heights[ok], bins=[edges, edges],
                                          cmin=1, cmap="viridis")
        figure.colorbar(mesh, ax=sizes, label="boxes")
        ratio = widths[ok] / heights[ok]
        ratios.hist(np.log2(ratio), bins=40, color="#4393c3")
        ratios.set_xticks(ratios.get_xticks(), [f"{2 ** t:.3g}" for t in ratios.get_xticks()])
    for axes, text in ((sizes, "width x height (pixels)"), (ratios, "aspect ratio")):
        if not ok.any():
            axes.text(0.5, 0.5, "no boxes", ha="center", va="center", transform=axes.transAxes)
        axes.set_title(text)
    sizes.set(xlabel="width (pixels)", ylabel="height (pixels)")
    ratios.set(xlabel="width / height (log scale)", ylabel="boxes")
    ids, counts_per_class = np.unique(groundtruth.classes, return_counts=True)
    labels = [names.get(int(i), str(int(i))) for i in ids]
    classes.barh(labels, counts_per_class, color="#4393c3")
    classes.set(title="boxes per class", xlabel="boxes")
    return _save(figure, path)


def draw_coverage(path: Path, coverage: Coverage, boxes: np.ndarray,
                  image_size: tuple[int, int]) -> Path:
    """Best anchor IoU against box size, and the covered share by COCO size."""
    from matplotlib.figure import Figure

    height, width = image_size
    boxes = np.asarray(boxes, np.float64)
    side = np.sqrt(np.clip((boxes[:, 3] - boxes[:, 1]) * width, 0, None)
                   * np.clip((boxes[:, 2] - boxes[:, 0]) * height, 0, None))
    figure = Figure(figsize=(13, 5.5), dpi=100, layout="constrained")
    figure.suptitle(f"{coverage.line()} at IoU >= {coverage.threshold:g} "
                    f"(the matcher's matched_threshold)", fontsize=13)
    scatter, bars = figure.subplots(1, 2, width_ratios=[2, 1])
    covered = coverage.best_ious >= coverage.threshold
    scatter.scatter(side[covered], coverage.best_ious[covered], s=4, alpha=0.5,
                    color="#4393c3", label="covered")
    scatter.scatter(side[~covered], coverage.best_ious[~covered], s=4, alpha=0.5,
                    color="#d6604d", label="below the threshold")
    scatter.axhline(coverage.threshold, color="0.3", linestyle="--", linewidth=1)
    for limit in (32, 96):
        scatter.axvline(limit, color="0.7", linewidth=1)
    scatter.set(xlabel="box size: sqrt(width x height), pixels at the input size",
                ylabel="best anchor IoU", ylim=(0, 1), title="best anchor IoU per box")
    if len(side) and side.max() > 0:
        from matplotlib.ticker import ScalarFormatter

        scatter.set_xscale("log")
        scatter.xaxis.set_major_formatter(ScalarFormatter())
    scatter.legend(loc="lower right", fontsize=8)
    fractions = [coverage.by_size[name].fraction or 0.0 for name in SIZE_NAMES]
    drawn = bars.bar(SIZE_NAMES, fractions, color="#4393c3")
    for bar, name in zip(drawn, SIZE_NAMES, strict=True):
        counts = coverage.by_size[name]
        bars.annotate(f"{percent(counts.fraction)}\nof {counts.boxes:,}",
                      (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                      ha="center", va="bottom", fontsize=9)
    bars.set(ylim=(0, 1.15), ylabel="covered share", title="by COCO size (< 32², < 96², larger)")
    return _save(figure, path)


def _save(figure, path: Path) -> Path:
    with atomic_output(path) as tmp:
        figure.savefig(tmp, format="png")
    return path
