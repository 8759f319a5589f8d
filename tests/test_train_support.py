"""The training tests' helpers (tests/support/training.py) make what they promise."""

from __future__ import annotations

from tests.support.training import make_config


def test_support_makes_readable_records(tmp_path):
    from odflow.data.records import count_examples

    make_config(tmp_path, num_train=3, num_eval=2)
    assert count_examples(tmp_path / "train.record") == 3
    assert count_examples(tmp_path / "val.record") == 2
