"""The offline demo's synthetic faces: deterministic, well-formed, with distractors."""

from __future__ import annotations

import json

import numpy as np

from odflow import label_map as label_map_lib
from odflow.data.cli import main as data_main
from odflow.data.records import count_examples, iter_examples
from odflow.data.synthetic import (
    SyntheticConfig,
    generate_example,
    generate_records,
    split_rng,
)


def test_generate_example_is_deterministic_for_a_seed():
    a = generate_example(split_rng(7, "train", 3))
    b = generate_example(split_rng(7, "train", 3))
    np.testing.assert_array_equal(a.image, b.image)
    np.testing.assert_array_equal(a.boxes, b.boxes)
    c = generate_example(split_rng(8, "train", 3))
    d = generate_example(split_rng(7, "val", 3))
    assert not np.array_equal(a.image, c.image)
    assert not np.array_equal(a.image, d.image)


def test_examples_are_well_formed_and_varied():
    config = SyntheticConfig()
    heights, counts = [], []
    for index in range(60):
        sample = generate_example(split_rng(1, "train", index), config)
        assert sample.image.shape == (256, 256, 3) and sample.image.dtype == np.uint8
        boxes = sample.boxes
        assert boxes.dtype == np.float32 and boxes.shape[1] == 4
        assert np.all((boxes >= 0) & (boxes <= 1))
        assert np.all(boxes[:, 2] > boxes[:, 0]) and np.all(boxes[:, 3] > boxes[:, 1])
        np.testing.assert_allclose(sample.boxes_abs / 256, boxes, rtol=1e-6)
        heights.extend((sample.boxes_abs[:, 2] - sample.boxes_abs[:, 0]).tolist())
        counts.append(len(boxes))
    assert min(heights) >= config.min_face
    assert max(heights) <= 128
    assert min(heights) < 24 and max(heights) > 90   # small and large faces both occur
    assert max(counts) >= 3 and 0 in counts          # several per image, some negatives
    assert np.mean(counts) > 1.5


def test_generate_records_deterministic_bytes_and_label_from_label_map(tmp_path):
    label_map = tmp_path / "label_map.pbtxt"
    label_map_lib.write(label_map, ["background_thing", "face"])
    first, second = tmp_path / "a.record", tmp_path / "b.record"
    for output in (first, second):
        generate_records(output, split="val", num_images=12, seed=3, label_map_path=label_map)
    assert first.read_bytes() == second.read_bytes()
    records = list(iter_examples(str(first)))
    assert len(records) == 12
    assert {c for r in records for c in r.classes.tolist()} == {2}
    assert records[0].source_id == "synthetic-val-000000"
    assert (records[0].height, records[0].width) == (256, 256)
    assert records[0].decode_image().shape == (256, 256, 3)
    # Image i does not depend on how many images are made.
    generate_records(tmp_path / "c.record", split="val", num_images=3, seed=3,
                     label_map_path=label_map)
    assert [r.encoded for r in iter_examples(str(tmp_path / "c.record"))] == [
        r.encoded for r in records[:3]]
    summary = json.loads((tmp_path / "a.record.summary.json").read_text())
    assert summary["options"]["seed"] == 3 and summary["images"] == 12


def test_synthetic_cli_with_shards(tmp_path):
    output = tmp_path / "train.record"
    assert data_main(["synthetic", "--split", "train", "--num-images", "5", "--seed", "1",
                      "--height", "128", "--width", "160", "-o", str(output),
                      "--num-shards", "2"]) == 0
    assert count_examples(str(output) + "-*") == 5
    records = list(iter_examples(str(output) + "-*"))
    assert {(r.height, r.width) for r in records} == {(128, 160)}
    assert {c for r in records for c in r.classes.tolist()} <= {1}


def test_log_file_option(tmp_path):
    log_file = tmp_path / "logs" / "synthetic.log"
    log_file.parent.mkdir()
    assert data_main(["synthetic", "--num-images", "2", "-o", str(tmp_path / "s.record"),
                      "--log-file", str(log_file)]) == 0
    assert "s.record: 2 images" in log_file.read_text()


def test_zero_images_is_an_error(tmp_path, capsys):
    output = tmp_path / "val.record"
    assert data_main(["synthetic", "--split", "val", "--num-images", "0", "-o", str(output)]) == 2
    assert "val.record: --num-images is 0; an empty val set" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []
