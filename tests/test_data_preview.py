"""`odflow data preview`: the grids come from the training input pipeline (augmented and
not), the box statistics and the coverage JSON count what the records hold."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from odflow.data.preview import FILES, first_batch
from tests.support.training import make_config, write_config

README_COMMAND = ("odflow data preview --pipeline_config {config} --output_dir {output}")


@pytest.mark.slow
def test_preview_writes_every_file_from_the_records(tmp_path: Path) -> None:
    from odflow.cli import main

    config = write_config(tmp_path)  # 6 training images with 1, 2, 1, 2, 1, 2 boxes; 96x96
    output = tmp_path / "plots" / "data"
    assert main(shlex.split(README_COMMAND.format(config=config, output=output))[1:]) == 0
    assert sorted(p.name for p in output.iterdir()) == sorted(FILES)
    for name in FILES:
        if name.endswith(".png"):
            with Image.open(output / name) as image:
                assert image.format == "PNG" and min(image.size) > 300, name
    numbers = json.loads((output / "anchor_coverage.json").read_text())
    assert numbers["boxes"] == 9 and numbers["images"] == 6
    assert numbers["image_size"] == [96, 96] and numbers["matched_threshold"] == 0.5
    # make_records' boxes are 30 % to 60 % of 120x100 images: 29 to 58 px at 96x96, so
    # none is small (< 32^2 px) and none large (>= 96^2).
    assert numbers["by_size"]["large"]["boxes"] == 0
    assert sum(size["boxes"] for size in numbers["by_size"].values()) == 9
    assert 0 <= numbers["covered"] <= 9


def test_grids_read_the_training_pipeline(tmp_path: Path) -> None:
    """The augmented grid is the training pipeline's output: with a horizontal flip that
    always fires, each image is the plain one mirrored and its boxes mirrored."""
    config = make_config(tmp_path, augment=False)
    flip = config.train_config.data_augmentation_options.add()
    flip.random_horizontal_flip.probability = 1.0
    plain = first_batch(config, "train", 4, (), seed=1)
    flipped = first_batch(config, "train", 4, list(config.train_config.data_augmentation_options),
                          seed=1)
    assert plain["image"].shape == (4, 96, 96, 3)
    assert list(plain["source_id"]) == [b"img0", b"img1", b"img2", b"img3"]  # file order
    assert list(flipped["source_id"]) == list(plain["source_id"])
    # Mirrored before the resize (100 -> 96 columns) rather than after: equal up to the
    # bilinear filter's half-pixel shift; the unmirrored image is far off (noise images).
    assert np.abs(flipped["image"] - plain["image"][:, :, ::-1]).mean() < 2.0
    assert np.abs(flipped["image"] - plain["image"]).mean() > 10.0
    boxes, mirrored = plain["groundtruth_boxes"], flipped["groundtruth_boxes"]
    for index in range(4):
        count = plain["num_groundtruth_boxes"][index]
        ymin, xmin, ymax, xmax = boxes[index, :count].T
        np.testing.assert_allclose(mirrored[index, :count],
                                   np.stack([ymin, 1 - xmax, ymax, 1 - xmin], 1), atol=1e-6)


def test_a_config_without_val_records_is_named(tmp_path: Path) -> None:
    from odflow.errors import OdflowError

    config = make_config(tmp_path, with_eval=False)
    with pytest.raises(OdflowError, match="eval_input_reader"):
        first_batch(config, "val", 2, (), seed=1)
