"""``train.cpu_replicas``: a GPU-less machine's cores split among replicas trained in sync.

``make_strategy`` must set the split up before TensorFlow starts, so each case runs in a fresh
interpreter.  That N replicas train like one replica on each replica's share of the batch is
``tests/test_train_distributed.py``'s claim; here: the devices, the threads per op, and the
settings that contradict the split.
"""

from __future__ import annotations

import pytest
import tensorflow as tf

from odflow.errors import OdflowError
from odflow.train import strategy as strategy_lib
from tests.support.training import python_result

PROBE = r"""
import json, os
import tensorflow as tf
from odflow.train.strategy import make_strategy
placement = make_strategy({kind!r}, {replicas})
print("RESULT" + json.dumps({{
    "kind": placement.kind,
    "replicas": placement.strategy.num_replicas_in_sync,
    "devices": [d.name for d in tf.config.list_logical_devices("CPU")],
    "intra": tf.config.threading.get_intra_op_parallelism_threads(),
    "inter": tf.config.threading.get_inter_op_parallelism_threads(),
    "cores": len(os.sched_getaffinity(0)),
}}))
"""


def _probe(kind: str, replicas: int) -> dict:
    return python_result(PROBE.format(kind=kind, replicas=replicas), timeout=120)


@pytest.mark.parametrize("kind", ["auto", "mirrored"])
def test_two_replicas_share_the_cores(kind):
    out = _probe(kind, 2)
    assert out["kind"] == "mirrored"
    assert out["replicas"] == 2
    assert out["devices"] == ["/device:CPU:0", "/device:CPU:1"]
    assert out["intra"] == max(1, out["cores"] // 2)  # each op on its replica's share
    assert out["inter"] == 2  # the two replicas' ops side by side


def test_one_replica_leaves_tensorflow_as_it_is():
    out = _probe("auto", 1)
    assert out["kind"] == "one_device"
    assert out["replicas"] == 1
    assert out["devices"] == ["/device:CPU:0"]
    assert (out["intra"], out["inter"]) == (0, 0)  # TF's own choice


def test_one_device_contradicts_several_replicas():
    with pytest.raises(OdflowError, match="one_device contradicts train.cpu_replicas 2"):
        strategy_lib.make_strategy("one_device", 2)


def test_a_replica_count_below_one_is_refused():
    with pytest.raises(OdflowError, match="cpu_replicas must be at least 1, not 0"):
        strategy_lib.make_strategy("auto", 0)


def test_splitting_after_tensorflow_started_says_what_to_do():
    tf.constant(1.0) + 1.0  # this interpreter's runtime is running (pytest imported TF)
    with pytest.raises(OdflowError, match="train.cpu_replicas: the CPU must be split before"):
        strategy_lib.split_cpu(2)
