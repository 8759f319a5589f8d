"""The training fingerprint: which config fields count, what a change is called, digest caching."""

from __future__ import annotations

import hashlib
import os

from odflow.train import fingerprint as fp
from tests.support.training import make_config


def _set_cosine(cfg, total_steps: int) -> None:
    rate = cfg.train_config.optimizer.rms_prop_optimizer.learning_rate
    rate.cosine_decay_learning_rate.learning_rate_base = 0.004
    rate.cosine_decay_learning_rate.total_steps = total_steps


def test_length_only_and_path_fields_are_left_out(tmp_path):
    cfg = make_config(tmp_path)
    fields = fp.learned_fields(cfg)
    assert fields["train_config.batch_size"] == "2"
    assert fields["model.ssd.num_classes"] == "1"
    assert fields["model.ssd.feature_extractor.depth_multiplier"] == "0.25"  # float32 as written
    assert not any(k.endswith(("num_steps", "label_map_path", "fine_tune_checkpoint"))
                   or ".input_path" in k for k in fields)
    _set_cosine(cfg, 100)
    longer = make_config(tmp_path, num_steps=5000)
    _set_cosine(longer, 5000)
    assert fp.learned_fields(cfg) == fp.learned_fields(longer)


def test_changes_name_the_config_field_and_the_inputs(tmp_path):
    cfg = make_config(tmp_path)
    before = fp.compute(cfg, seed=1)
    assert fp.changes(before, fp.compute(cfg, seed=1)) == []
    assert fp.changes(before, fp.compute(make_config(tmp_path, num_steps=99), seed=1)) == []

    changed = fp.changes(before, fp.compute(make_config(tmp_path, batch_size=4), seed=2))
    assert changed == ["pipeline config (train_config.batch_size: 2 -> 4)", "seed (1 -> 2)"]

    (tmp_path / "train.record").write_bytes((tmp_path / "train.record").read_bytes() + b"x")
    (tmp_path / "label_map.pbtxt").write_text("item { id: 1 name: 'other' }\n")
    assert fp.changes(before, fp.compute(cfg, seed=1)) == ["train records", "label map"]


def test_records_moved_elsewhere_are_the_same_inputs(tmp_path):
    cfg = make_config(tmp_path)
    before = fp.compute(cfg, seed=None)
    moved = tmp_path / "moved"
    moved.mkdir()
    os.replace(tmp_path / "train.record", moved / "train.record")
    paths = cfg.train_input_reader.tf_record_input_reader.input_path
    paths[0] = str(moved / "train.record")
    assert fp.changes(before, fp.compute(cfg, seed=None)) == []


def test_digest_is_sha256_and_cached_by_size_and_mtime(tmp_path):
    path = tmp_path / "big.record"
    content = os.urandom(3 * fp._CHUNK + 123)  # several chunks
    path.write_bytes(content)
    entry = fp.file_digest(path)
    assert entry["sha256"] == hashlib.sha256(content).hexdigest()
    cache = {(entry["path"], entry["size"], entry["mtime_ns"]): "cached"}
    assert fp.file_digest(path, cache)["sha256"] == "cached"  # not read again
    os.utime(path, ns=(entry["mtime_ns"] + 10**9, entry["mtime_ns"] + 10**9))
    assert fp.file_digest(path, cache)["sha256"] == entry["sha256"]  # touched: read again


def test_save_and_load_round_trip(tmp_path):
    cfg = make_config(tmp_path)
    current = fp.compute(cfg, seed=3)
    (tmp_path / "ckpt").mkdir()
    fp.save(tmp_path / "ckpt", current)
    assert fp.load(tmp_path / "ckpt") == current
    (tmp_path / "ckpt" / fp.FILE_NAME).write_text("{not json")
    assert fp.load(tmp_path / "ckpt") is None
    assert fp.load(tmp_path / "nowhere") is None


def test_the_cpu_replica_count_is_part_of_what_was_learned(tmp_path):
    """Each CPU replica normalises batch norm over its share of the batch (train.cpu_replicas),
    so checkpoints trained on another count never resume; fingerprints written before the
    setting existed were trained on one replica."""
    cfg = make_config(tmp_path)
    one = fp.compute(cfg, seed=1)
    two = fp.compute(cfg, seed=1, cpu_replicas=2)
    assert fp.changes(one, two) == ["train.cpu_replicas (1 -> 2)"]
    assert fp.changes(two, fp.compute(cfg, seed=1, cpu_replicas=2)) == []
    older = {key: value for key, value in one.items() if key != "cpu_replicas"}
    assert fp.changes(older, one) == []
    assert fp.changes(older, two) == ["train.cpu_replicas (1 -> 2)"]
