"""``copy_variables``, the one restore loop of name-based (TF1) and object-based (TF2)
checkpoints, on a hand-made reader: which variables are copied, skipped or refused, in what
order, under which name, and what the warnings say.  Expected values are written out by hand
from the loop's contract (the TF1 and TF2 restore tests cover it on real checkpoints)."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import tensorflow as tf

from odflow.errors import OdflowError
from odflow.model.restore import RestoreReport, copy_variables

SUFFIX = "/.ATTRIBUTES/VARIABLE_VALUE"


class DictReader:
    """A checkpoint reader over a dict; a key in ``broken`` fails as a truncated file does."""

    def __init__(self, tensors: dict[str, np.ndarray], broken: tuple[str, ...] = ()) -> None:
        self.tensors = tensors
        self.broken = broken
        self.read: list[str] = []

    def get_tensor(self, key: str) -> np.ndarray:
        self.read.append(key)
        if key in self.broken:
            raise tf.errors.DataLossError(None, None, "truncated record")
        return self.tensors[key]


def _shapes_dtypes(tensors: dict[str, np.ndarray]):
    return ({k: list(v.shape) for k, v in tensors.items()},
            {k: tf.as_dtype(v.dtype) for k, v in tensors.items()})


def test_copies_matching_and_skips_missing_and_other_shapes_in_the_given_order(caplog) -> None:
    tensors = {"a": np.full([2], 7.0, np.float32), "b": np.zeros([3], np.float32),
               "c": np.zeros([2], np.float64)}
    shapes, dtypes = _shapes_dtypes(tensors)
    x, y, z, w = (tf.Variable(np.zeros([2], np.float32)) for _ in range(4))
    report = RestoreReport("ckpt/model.ckpt", "full")
    caplog.set_level(logging.WARNING, logger="odflow.model.restore")
    copy_variables(DictReader(tensors), "ckpt/model.ckpt", shapes, dtypes,
                   [("m/z", "missing", z), ("m/y", "b", y), ("m/x", "a", x), ("m/w", "c", w)],
                   report)
    assert report.restored == ["m/x"]
    assert report.skipped_missing == ["m/z"]
    assert report.skipped_shape == ["m/y", "m/w"]  # a shape, then a dtype mismatch
    np.testing.assert_array_equal(x.numpy(), [7.0, 7.0])
    np.testing.assert_array_equal(y.numpy(), [0.0, 0.0])
    assert [r.getMessage() for r in caplog.records] == [
        "not restored: m/z (no missing in ckpt/model.ckpt)",
        "not restored: m/y (checkpoint has [3] float32, model needs [2] float32)",
        "not restored: m/w (checkpoint has [2] float64, model needs [2] float32)"]


def test_reads_the_stored_key_but_names_the_shown_one() -> None:
    """TF2: shapes are by the key without its suffix, the tensor is read under the stored key."""
    stored = {"model/k": "model/k" + SUFFIX}
    reader = DictReader({"model/k" + SUFFIX: np.ones([1], np.float32)})
    variable = tf.Variable(np.zeros([1], np.float32))
    report = RestoreReport("ckpt-0", "detection")
    copy_variables(reader, "ckpt-0", {"model/k": [1]}, {"model/k": tf.float32},
                   [("model/k", "model/k", variable)], report, stored=stored)
    assert reader.read == ["model/k" + SUFFIX]
    assert report.restored == ["model/k"] and variable.numpy().tolist() == [1.0]

    broken = DictReader(reader.tensors, broken=("model/k" + SUFFIX,))
    with pytest.raises(OdflowError, match=r"^cannot read model/k from checkpoint ckpt-0 \(is its "
                                          r"\.data-\* file missing or truncated\?\)"):
        copy_variables(broken, "ckpt-0", {"model/k": [1]}, {"model/k": tf.float32},
                       [("model/k", "model/k", variable)], RestoreReport("ckpt-0", "full"),
                       stored=stored)
