"""Where the TF2 zoo's SSD MobileNet / ResNet checkpoints keep each of odflow's variables.

The keys are the attribute paths of the TF2 API's Keras objects (see
``../shared/reference/tf2_zoo/README.md``):

- backbone: ``model/_feature_extractor/classification_backbone/layer_with_weights-N/...``,
  N counting the Keras model's layers that own weights, in layer order (a conv, then its
  batch norm: two numbers per odflow ``ConvUnit``);
- SSD extra maps (``ssd_mobilenet_v2_keras``): ``feature_map_generator/convolutions/<map>/<j>``
  with conv, batch norm, activation at j = 3k, 3k+1, 3k+2 for the k-th conv of the map;
- FPN (``_fpn_features_generator``): ``top_layers/0`` the coarsest level's projection,
  ``residual_blocks/i/0`` and ``conv_layers/i/{0,1}`` the other projections and smoothing
  convs from coarse to fine; ``_coarse_feature_layers/i/{0,1}`` the stride-2 convs above;
- convolutional box predictor: ``_prediction_heads/{box_encodings,
  class_predictions_with_background}/<level>/_{box_encoder,class_predictor}_layers/0``;
- weight-shared box predictor: tower convs once under ``_head_scope_conv_layers/<Tower>/i``,
  their batch norms per level under ``_base_tower_layers_for_heads/<head>/<level>/<3i+1>``,
  heads under ``_box_prediction_head/_box_encoder_layers/0`` and ``_prediction_heads/
  class_predictions_with_background/_class_predictor_layers/0``.

Registered for the feature extractor types below (``odflow.model.tf2_checkpoint``).
"""

from __future__ import annotations

from odflow.errors import OdflowError
from odflow.model.box_predictor import ConvolutionalBoxPredictor
from odflow.model.fpn import FpnFeatureExtractor
from odflow.model.inverted_residual import ExpandedConv
from odflow.model.layers import ConvUnit, SeparableConvUnit
from odflow.model.mobilenet_ssd import MobilenetSsdFeatureExtractor
from odflow.model.mobilenet_v1 import SSDMobileNetV1FeatureExtractor
from odflow.model.resnet_v1_keras import KerasResnetV1
from odflow.model.tf2_checkpoint import KeyMapping, LayerNumbers, register_family
from odflow.model.weight_shared_box_predictor import WeightSharedConvolutionalBoxPredictor

FEATURE_EXTRACTOR = "model/_feature_extractor"
BOX_PREDICTOR = "model/_box_predictor"
TYPES = ("ssd_mobilenet_v2_keras", "ssd_mobilenet_v1_fpn_keras", "ssd_mobilenet_v2_fpn_keras",
         "ssd_resnet50_v1_fpn_keras", "ssd_resnet101_v1_fpn_keras",
         "ssd_resnet152_v1_fpn_keras")


def _add_layer(mapping: KeyMapping, prefix: str, layer, group: str) -> None:
    """A conv (plain or separable) at ``prefix/0`` and its batch norm at ``prefix/1``: one
    Keras conv block (conv, batch norm, activation)."""
    if isinstance(layer, SeparableConvUnit):
        mapping.add_separable(f"{prefix}/0", layer.depthwise, layer.pointwise, group)
    else:
        mapping.add_conv(f"{prefix}/0", layer, group)
    if layer.batch_norm is not None:
        mapping.add_batch_norm(f"{prefix}/1", layer.batch_norm, group)


def _head(mapping: KeyMapping, prefix: str, layer, group: str) -> None:
    if isinstance(layer, SeparableConvUnit):
        mapping.add_separable(prefix, layer.depthwise, layer.pointwise, group)
    else:
        mapping.add_conv(prefix, layer, group)


def _backbone_order(backbone) -> list[tuple[str, ConvUnit]]:
    """(``conv``/``bn``, unit) in the Keras backbone's layer order."""
    if isinstance(backbone, KerasResnetV1):
        return backbone.keras_layer_order()
    if isinstance(backbone, SSDMobileNetV1FeatureExtractor):
        units = [unit for _, unit in backbone.base]
    elif isinstance(backbone, MobilenetSsdFeatureExtractor):
        units = []
        for layer in backbone.layers:
            units += layer.units() if isinstance(layer, ExpandedConv) else [layer]
    else:
        raise OdflowError(f"{type(backbone).__name__} has no TF2 checkpoint layout")
    order = []
    for unit in units:
        order.append(("conv", unit))
        if unit.batch_norm is not None:
            order.append(("bn", unit))
    return order


def _backbone(mapping: KeyMapping, backbone) -> None:
    numbers = LayerNumbers(f"{FEATURE_EXTRACTOR}/classification_backbone")
    for kind, unit in _backbone_order(backbone):
        if kind == "conv":
            mapping.add_conv(numbers.next(), unit, "backbone")
        else:
            mapping.add_batch_norm(numbers.next(), unit.batch_norm, "backbone")


def _extra_maps(mapping: KeyMapping, extractor: MobilenetSsdFeatureExtractor) -> None:
    prefix = f"{FEATURE_EXTRACTOR}/feature_map_generator/convolutions"
    for offset, units in enumerate(extractor.extras.layers):
        index = extractor.num_base_maps + offset
        for k, unit in enumerate(units):
            mapping.add_conv(f"{prefix}/{index}/{3 * k}", unit, "feature_extractor")
            if unit.batch_norm is not None:
                mapping.add_batch_norm(f"{prefix}/{index}/{3 * k + 1}", unit.batch_norm,
                                       "feature_extractor")


def _fpn(mapping: KeyMapping, extractor: FpnFeatureExtractor) -> None:
    prefix = f"{FEATURE_EXTRACTOR}/_fpn_features_generator"
    top_down = extractor.top_down
    n = len(top_down.projections)
    mapping.add_conv(f"{prefix}/top_layers/0", top_down.projections[-1], "feature_extractor")
    for i in range(n - 1):
        k = n - 2 - i  # from the second coarsest level down to the finest
        mapping.add_conv(f"{prefix}/residual_blocks/{i}/0", top_down.projections[k],
                         "feature_extractor")
        _add_layer(mapping, f"{prefix}/conv_layers/{i}", top_down.smoothings[k],
                   "feature_extractor")
    for i, layer in enumerate(extractor.bottom_up):
        _add_layer(mapping, f"{FEATURE_EXTRACTOR}/_coarse_feature_layers/{i}", layer,
                   "feature_extractor")


def _convolutional_predictor(mapping: KeyMapping, predictor: ConvolutionalBoxPredictor) -> None:
    if any(predictor.towers) or any(len(head.units) != 1 for head in predictor.box_heads):
        raise OdflowError(
            "convolutional_box_predictor with num_layers_before_predictor > 0 or use_depthwise "
            "has no TF2 checkpoint layout in odflow; remove them or use a TF1 checkpoint")
    heads = f"{BOX_PREDICTOR}/_prediction_heads"
    for level, (box, cls) in enumerate(zip(predictor.box_heads, predictor.class_heads)):
        mapping.add_conv(f"{heads}/box_encodings/{level}/_box_encoder_layers/0", box.units[0],
                         "box_predictor")
        mapping.add_conv(f"{heads}/class_predictions_with_background/{level}/"
                         "_class_predictor_layers/0", cls.units[0], "box_predictor")


def _weight_shared_predictor(mapping: KeyMapping,
                             predictor: WeightSharedConvolutionalBoxPredictor) -> None:
    shared = predictor.class_tower is predictor.box_tower
    towers = ([("PredictionTower", "box_encodings", predictor.box_tower)] if shared else
              [("BoxPredictionTower", "box_encodings", predictor.box_tower),
               ("ClassPredictionTower", "class_predictions_with_background",
                predictor.class_tower)])
    for tower_name, head, tower in towers:
        for i, (conv, norms) in enumerate(zip(tower.convs, tower.norms)):
            _head(mapping, f"{BOX_PREDICTOR}/_head_scope_conv_layers/{tower_name}/{i}", conv,
                  "box_predictor")
            for level, norm in enumerate(norms):
                mapping.add_batch_norm(f"{BOX_PREDICTOR}/_base_tower_layers_for_heads/{head}/"
                                       f"{level}/{3 * i + 1}", norm, "box_predictor")
    _head(mapping, f"{BOX_PREDICTOR}/_box_prediction_head/_box_encoder_layers/0",
          predictor.box_head, "box_predictor")
    _head(mapping, f"{BOX_PREDICTOR}/_prediction_heads/class_predictions_with_background/"
          "_class_predictor_layers/0", predictor.class_head, "box_predictor")


def ssd_key_mapping(model) -> KeyMapping:
    """The TF2 keys of an SSD MobileNet v2, MobileNet v1/v2 FPN or ResNet FPN model."""
    mapping = KeyMapping()
    extractor = model.feature_extractor
    if isinstance(extractor, FpnFeatureExtractor):
        _backbone(mapping, extractor.backbone)
        _fpn(mapping, extractor)
    else:
        _backbone(mapping, extractor)
        _extra_maps(mapping, extractor)
    predictor = model.box_predictor
    if isinstance(predictor, WeightSharedConvolutionalBoxPredictor):
        _weight_shared_predictor(mapping, predictor)
    else:
        _convolutional_predictor(mapping, predictor)
    return mapping


register_family(TYPES, ssd_key_mapping)
