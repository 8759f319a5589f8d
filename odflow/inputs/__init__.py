"""The ``tf.data`` input pipeline: records -> decode -> augment -> resize -> pad -> batch.

``build_dataset`` is the entry point (see ``odflow.inputs.pipeline``); the augmentations are in
``odflow.inputs.augment`` and ``odflow.inputs.ssd_random_crop``, the resizer in
``odflow.inputs.resize``.
"""

from odflow.inputs.augment import SUPPORTED as SUPPORTED_AUGMENTATIONS
from odflow.inputs.augment import build_augmenter
from odflow.inputs.pipeline import BATCH_KEYS, EVAL_BATCH_KEYS, build_dataset, check_input_reader
from odflow.inputs.resize import FixedShapeResizer, build_resizer
from odflow.inputs.sample import Sample

__all__ = [
           "BATCH_KEYS",
           "EVAL_BATCH_KEYS",
           "SUPPORTED_AUGMENTATIONS",
           "FixedShapeResizer",
           "Sample",
           "build_augmenter",
           "build_dataset",
           "build_resizer",
           "check_input_reader",
]
