"""The TF2 API's Keras backbones of the families without reference outputs (SSD ResNet v1 FPN,
SSD MobileNet V1 FPN, EfficientDet D1-D7's EfficientNet) against Keras applications, with the
API's layer overrides applied by hand.

Upstream (``models/keras_models/resnet_v1.py`` and ``mobilenet_v1.py``) builds
``keras.applications.ResNet50`` / ``MobileNet`` with a ``layers=`` object that replaces:
every ``ZeroPadding2D`` by a no-op; every conv by one without bias and with 'same' padding,
except (ResNet) a strided conv with a kernel over 1, which gets a size-independent fixed
padding and 'valid' (for ``conv1``: 3 rows/columns each side, what the application's own
``conv1_pad`` does, so that layer is kept); ``MaxPooling2D`` by 'same' padding; batch norm by
the config's (epsilon 1e-3 here); activations by the config's (ReLU6).  Keras 3 has no
``layers=`` argument, so the same replacements are made by cloning the application.  The
application, not odflow, then fixes which layers exist, their order, strides and end points;
odflow's backbone with the same weights must give the same end points.  Odd sizes (5 -> 3
at stride 32) exercise 'same' padding.
"""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from odflow.model import efficientnet
from odflow.model.feature_maps import ExtractorOptions
from odflow.model.hyperparams import BatchNormParams, ConvHyperparams, InitializerParams
from odflow.model.mobilenet_v1 import SSDMobileNetV1FeatureExtractor
from odflow.model.resnet_v1_keras import KerasResnetV1

keras = pytest.importorskip("keras")
pytestmark = pytest.mark.slow  # a Keras application built and cloned: 5-10 s each

# The zoo configs' conv_hyperparams (override_base_feature_extractor_hyperparams: true).
HYPERPARAMS = ConvHyperparams(
    initializer=InitializerParams("random_normal", stddev=0.01), activation="relu6",
    regularizer_weight=4e-4,
    batch_norm=BatchNormParams(decay=0.997, scale=True, epsilon=1e-3))


def _override(layer):
    """The API's ``_LayersOverride`` rules, on a cloned application layer."""
    config = layer.get_config()
    if isinstance(layer, keras.layers.ZeroPadding2D) and layer.name != "conv1_pad":
        return keras.layers.Identity(name=layer.name)
    if isinstance(layer, (keras.layers.Conv2D, keras.layers.DepthwiseConv2D)):
        config.update(use_bias=False, padding="valid" if layer.name == "conv1_conv" else "same")
    elif isinstance(layer, keras.layers.MaxPooling2D):
        config.update(padding="same")
    elif isinstance(layer, keras.layers.BatchNormalization):
        config.update(epsilon=1e-3)
    elif isinstance(layer, (keras.layers.Activation, keras.layers.ReLU)):
        return keras.layers.Activation(tf.nn.relu6, name=layer.name)
    return layer.__class__.from_config(config)


def _share_weights(pairs, reference, rng: np.random.Generator) -> None:
    """The same random kernel and batch norm values in odflow's unit and the named Keras
    layers (``(unit, conv layer name, batch norm layer name)``)."""
    for unit, conv_name, bn_name in pairs:
        shape = unit.weights.shape
        fan_in = np.prod(shape[:2]) if unit.depthwise else np.prod(shape[:-1])
        kernel = rng.normal(0, 1 / np.sqrt(fan_in), shape).astype(np.float32)
        unit.weights.assign(kernel)
        reference.get_layer(conv_name).kernel.assign(kernel)
        bn, keras_bn = unit.batch_norm, reference.get_layer(bn_name)
        depth = bn.depth
        for ours, theirs, value in (
                (bn.gamma, keras_bn.gamma, rng.uniform(0.5, 1.5, depth)),
                (bn.beta, keras_bn.beta, rng.normal(0, 0.1, depth)),
                (bn.moving_mean, keras_bn.moving_mean, rng.normal(0, 0.1, depth)),
                (bn.moving_variance, keras_bn.moving_variance, rng.uniform(0.5, 1.5, depth))):
            ours.assign(value.astype(np.float32))
            theirs.assign(value.astype(np.float32))


def _compare(ours: dict, reference, endpoints: dict[str, str]) -> None:
    images = tf.random.uniform([1, 96, 80, 3], -1, 1, seed=1)
    model = keras.Model(reference.inputs,
                        [reference.get_layer(name).output for name in endpoints.values()])
    theirs = model(images, training=False)
    mine = ours(images)
    for (key, keras_name), expected in zip(endpoints.items(), theirs):
        got = mine[key].numpy()
        assert got.shape == tuple(expected.shape), key
        assert float(np.mean(got < 6.0)) > 0.1, key  # not all saturated by ReLU6
        np.testing.assert_allclose(got, expected.numpy(), atol=1e-4, rtol=1e-4,
                                   err_msg=f"{key} vs {keras_name}")
    assert mine[list(endpoints)[-1]].shape[1:3] == (3, 3)  # 96x80 / 32, rounded up


def test_resnet50_v1_is_the_keras_application_with_the_api_overrides() -> None:
    ours = KerasResnetV1(50, HYPERPARAMS)
    application = keras.applications.ResNet50(include_top=False, weights=None,
                                              input_shape=(None, None, 3))
    reference = keras.models.clone_model(application, clone_function=_override)
    pairs = []
    for unit in ours.units():
        name = unit.scope.rsplit("/", 1)[1]  # conv1_conv, conv2_block1_0_conv, ...
        pairs.append((unit, name, name.removesuffix("_conv") + "_bn"))
    assert len(pairs) == sum(isinstance(layer, keras.layers.Conv2D)
                             for layer in reference.layers) == 53
    _share_weights(pairs, reference, np.random.default_rng(0))
    # _RESNET_MODEL_OUTPUT_LAYERS of the API's ResNet50 FPN: each stage's last unit.
    _compare(lambda x: ours.base_endpoints(x), reference,
             {"conv2": "conv2_block3_out", "conv3": "conv3_block4_out",
              "conv4": "conv4_block6_out", "conv5": "conv5_block3_out"})


def test_mobilenet_v1_is_the_keras_application_with_the_api_overrides() -> None:
    ours = SSDMobileNetV1FeatureExtractor(
        ExtractorOptions(depth_multiplier=1.0, min_depth=16, num_layers=2), HYPERPARAMS,
        HYPERPARAMS)
    application = keras.applications.MobileNet(include_top=False, weights=None,
                                               input_shape=(None, None, 3))
    reference = keras.models.clone_model(application, clone_function=_override)

    def keras_name(name: str) -> str:  # Conv2d_0 / Conv2d_<k>_{depthwise,pointwise}
        if name == "Conv2d_0":
            return "conv1"
        kind = "dw" if name.endswith("depthwise") else "pw"
        return f"conv_{kind}_{name.split('_')[1]}"

    pairs = [(unit, keras_name(name), keras_name(name) + "_bn") for name, unit in ours.base]
    assert len(pairs) == 27
    _share_weights(pairs, reference, np.random.default_rng(0))
    # The API's SSD MobileNet V1 FPN taps conv_pw_{3,5,11,13}_relu.
    _compare(lambda x: ours.base_endpoints(x), reference,
             {f"Conv2d_{k}_pointwise": f"conv_pw_{k}_relu" for k in (3, 5, 11, 13)})


def test_efficientnet_b3_is_the_keras_application() -> None:
    """EfficientDet-D3's backbone.  The TF2 API takes tf-models' EfficientNet; the Keras
    application is another implementation of the same network (width 1.2 / depth 1.4:
    ``round_filters``, ``ceil`` repeats, SE on the block's input filters, swish, batch norm
    epsilon 1e-3), whose input rescaling and normalisation layers are made no-ops (the API
    passes ``rescale_input: False`` and normalises in ``preprocess``).  It pads its stride-2
    convs by hand ((0, 1) / (1, 2) for 3x3 / 5x5), which equals tf-models' 'same' on even
    sizes, so the input is 128x96 (every stride-2 step sees an even size).  The level
    endpoints of ``_EFFICIENTNET_LEVEL_ENDPOINTS`` in the application's names:
    stack_2/block_1/add = block3b_add (stack 2 has 3 blocks in b3: not its last),
    stack_4/block_2/add = block5c_add, stack_6/block_0/project_bn = block7a_project_bn."""
    ours = efficientnet.EfficientNet("efficientnet-b3", 3, 5)
    application = keras.applications.EfficientNetB3(include_top=False, weights=None,
                                                    input_shape=(None, None, 3))

    def no_input_scaling(layer):
        if isinstance(layer, (keras.layers.Rescaling, keras.layers.Normalization)):
            return keras.layers.Identity(name=layer.name)
        return layer.__class__.from_config(layer.get_config())

    reference = keras.models.clone_model(application, clone_function=no_input_scaling)
    suffixes = {"expand_conv2d": "expand_conv", "expand_bn": "expand_bn",
                "depthwise_conv2d": "dwconv", "depthwise_bn": "bn",
                "se_reduce_conv2d": "se_reduce", "se_expand_conv2d": "se_expand",
                "project_conv2d": "project_conv", "project_bn": "project_bn"}

    def keras_name(name: str) -> str:  # stack_<i>/block_<j>/<layer> -> block<i+1><a+j>_...
        if name in ("stem_conv2d", "stem_bn"):
            return {"stem_conv2d": "stem_conv", "stem_bn": "stem_bn"}[name]
        stack, block, layer = name.split("/")
        i, j = int(stack.split("_")[1]), int(block.split("_")[1])
        return f"block{i + 1}{chr(ord('a') + j)}_{suffixes[layer]}"

    rng = np.random.default_rng(0)
    assigned = 0
    for layer in ours.layers:
        theirs = reference.get_layer(keras_name(layer.layer_name))
        for attribute, variable in layer.weights().items():
            target = theirs.kernel if attribute.endswith("kernel") else getattr(theirs, attribute)
            assert tuple(target.shape) == tuple(variable.shape), (layer.layer_name, attribute)
            shape = variable.shape
            if attribute.endswith("kernel"):
                fan_in = np.prod(shape[:2]) if attribute == "depthwise_kernel" else \
                    np.prod(shape[:-1])
                value = rng.normal(0, 1 / np.sqrt(fan_in), shape)
            elif attribute in ("gamma", "moving_variance"):
                value = rng.uniform(0.5, 1.5, shape)
            else:
                value = rng.normal(0, 0.1, shape)
            variable.assign(value.astype(np.float32))
            target.assign(value.astype(np.float32))
            assigned += 1
    # b3 up to block7a: everything but block7b (19 weights) and the top (5).
    assert assigned == len(reference.weights) - 24 == 470
    endpoints = {3: "block3b_add", 4: "block5c_add", 5: "block7a_project_bn"}
    model = keras.Model(reference.inputs,
                        [reference.get_layer(name).output for name in endpoints.values()])
    images = tf.random.uniform([1, 128, 96, 3], -2, 2, seed=1)
    mine = ours(images)
    for (level, name), expected in zip(endpoints.items(), model(images, training=False)):
        assert mine[level].shape == tuple(expected.shape), name
        np.testing.assert_allclose(mine[level].numpy(), expected.numpy(), atol=1e-5,
                                   err_msg=name)
