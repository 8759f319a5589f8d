"""Write ``tests/fixtures/slim_inception_v2/reference.npz``: TF-slim's own InceptionV2 base
(``tf_slim.nets.inception_v2.inception_v2_base``, tf-slim 1.1.0) run once on the weights and
images of ``tests/support/slim_reference.py``, so a test can hold odflow's network to it.

Not part of the package or its dependencies; to regenerate (TF 2.21):

    pip install --target /tmp/slim tf-slim==1.1.0 tf-keras==2.21.0
    PYTHONPATH=/tmp/slim python tools/slim_inception_v2_reference.py

The network is built as the TF1 API's SSDInceptionV2FeatureExtractor built it: under the
config's arg scope (batch norm with scale and center, epsilon 0.001, ReLU6, in inference mode)
inside the ``FeatureExtractor/InceptionV2`` scope.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.support.slim_reference import (
    DEPTH_MULTIPLIER,
    EPSILON,
    IMAGE_SHAPE,
    MIN_DEPTH,
    image,
    weight_value,
)

OUTPUT = REPO / "tests/fixtures/slim_inception_v2/reference.npz"


def _alias_legacy_layers() -> None:
    """TF 2.21's tf.compat.v1.layers looks for tf_keras.legacy_tf_layers, which tf-keras
    2.21 keeps under tf_keras.src."""
    for sub in ("", ".base", ".core", ".convolutional", ".pooling", ".normalization"):
        module = importlib.import_module(f"tf_keras.src.legacy_tf_layers{sub}")
        sys.modules[f"tf_keras.legacy_tf_layers{sub}"] = module


def main() -> int:
    import tensorflow as tf

    _alias_legacy_layers()
    import tf_slim as slim
    from tf_slim.nets import inception_v2

    graph = tf.Graph()
    with graph.as_default():
        inputs = tf.compat.v1.placeholder(tf.float32, IMAGE_SHAPE)
        with slim.arg_scope([slim.conv2d, slim.separable_conv2d], normalizer_fn=slim.batch_norm,
                            activation_fn=tf.nn.relu6), \
                slim.arg_scope([slim.batch_norm], is_training=False, scale=True, center=True,
                               epsilon=EPSILON), \
                tf.compat.v1.variable_scope("FeatureExtractor/InceptionV2") as scope:
            _, end_points = inception_v2.inception_v2_base(
                inputs, final_endpoint="Mixed_5c", min_depth=MIN_DEPTH,
                depth_multiplier=DEPTH_MULTIPLIER, scope=scope)
        variables = {v.op.name: v for v in tf.compat.v1.global_variables()}
        assigns = [v.assign(weight_value(name, v.shape.as_list()))
                   for name, v in variables.items()]
        with tf.compat.v1.Session() as session:
            session.run(assigns)
            mixed_4c, mixed_5c = session.run([end_points["Mixed_4c"], end_points["Mixed_5c"]],
                                             {inputs: image()})
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(OUTPUT, Mixed_4c=mixed_4c, Mixed_5c=mixed_5c,
                        variable_names=np.array(sorted(variables)))
    print(f"wrote {OUTPUT}: Mixed_4c {mixed_4c.shape}, Mixed_5c {mixed_5c.shape}, "
          f"{len(variables)} variables")
    return 0


if __name__ == "__main__":
    sys.exit(main())
