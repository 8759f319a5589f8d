"""``saved_model/``: the ``serve`` tag with a ``serving_default`` signature.

The seed's client calls ``tf.saved_model.load(path).signatures['serving_default'](inputs=...)``
and reads outputs by the frozen graph's tensor names, so the signature takes one input keyed
``inputs`` and returns the same named outputs.  The weights stay variables (``variables/``),
as in the zoo's SavedModel.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

import tensorflow as tf

from odflow.export.signature import SAVED_MODEL_INPUT_KEY, detection_function


def write_saved_model(model, variables: Iterable[tf.Variable], input_type: str,
                      directory: str | os.PathLike) -> None:
    """Save ``model``'s detection function; ``variables`` must be every variable it reads.

    Only the variables and the function are tracked (not the model object), so saving does not
    depend on how the model's layers are built; a variable the function reads but the list lacks
    makes ``tf.saved_model.save`` fail rather than export a model without it.
    """
    root = tf.Module()
    root.model_variables = list(variables)
    root.detect = detection_function(model, input_type, SAVED_MODEL_INPUT_KEY)
    signature = root.detect.get_concrete_function()
    tf.saved_model.save(root, os.fspath(directory), signatures={"serving_default": signature})
