"""``sync_batch_norm``: two replicas normalise with the statistics of the whole global batch.

The independent reference is one replica's fused batch norm over the concatenated batch;
without synchronisation each replica would use its own half's statistics (checked too, so the
test cannot pass by accident).  Runs in a fresh interpreter: logical devices must be set up
before TensorFlow initialises.
"""

from __future__ import annotations

import pytest
from google.protobuf import text_format

from odflow.model import hyperparams
from odflow.protos import pipeline_pb2
from tests.support.training import python_result

SCRIPT = r"""
import json
import numpy as np
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from odflow.model.hyperparams import BatchNormParams
from odflow.model.layers import BatchNorm

rng = np.random.default_rng(0)
halves = [rng.normal(0.0, 1.0, (2, 3, 3, 4)), rng.normal(3.0, 2.0, (2, 3, 3, 4))]
halves = [h.astype(np.float32) for h in halves]
whole = np.concatenate(halves)
out = {}
params = BatchNormParams(decay=0.5, scale=True, sync=True)
single = BatchNorm("single/BatchNorm", 4, params)
out["whole"] = single(tf.constant(whole), training=True).numpy().tolist()
out["single_moving_variance"] = single.moving_variance.numpy().tolist()
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
for name, sync in (("sync", True), ("local", False)):
    with strategy.scope():
        norm = BatchNorm(f"{name}/BatchNorm", 4, BatchNormParams(decay=0.5, scale=True, sync=sync))
    values = strategy.experimental_distribute_values_from_function(
        lambda context: tf.constant(halves[context.replica_id_in_sync_group]))
    result = strategy.run(lambda x: norm(x, training=True), args=(values,))
    out[name] = np.concatenate([t.numpy() for t in strategy.experimental_local_results(result)]).tolist()
    out[name + "_moving_variance"] = norm.moving_variance.numpy().tolist()
print("RESULT" + json.dumps(out))
"""


@pytest.mark.slow
def test_two_replicas_normalise_like_one_whole_batch():
    import numpy as np

    out = python_result(SCRIPT)
    np.testing.assert_allclose(out["sync"], out["whole"], atol=1e-5)
    assert not np.allclose(out["local"], out["whole"], atol=1e-2)
    np.testing.assert_allclose(out["sync_moving_variance"], out["single_moving_variance"],
                               rtol=1e-5)


def test_sync_batch_norm_config_is_batch_norm_with_sync():
    proto = pipeline_pb2.Hyperparams()
    text_format.Parse("""
        regularizer { l2_regularizer { weight: 0.0004 } }
        initializer { truncated_normal_initializer { stddev: 0.03 } }
        sync_batch_norm { scale: true decay: 0.997 epsilon: 0.001 }""", proto)
    params = hyperparams.from_proto(proto, "model.ssd.feature_extractor.conv_hyperparams")
    assert params.batch_norm == hyperparams.BatchNormParams(
        decay=pytest.approx(0.997), center=True, scale=True, epsilon=pytest.approx(0.001),
        train=True, sync=True)
