"""``saved_model/``: the ``serve`` tag with a ``serving_default`` signature.

The seed's client calls ``tf.saved_model.load(path).signatures['serving_default'](inputs=...)``
and reads outputs by the frozen graph's tensor names, so the signature takes one input keyed
``inputs`` and returns the same named outputs.  The weights stay variables (``variables/``),
as in the zoo's SavedModel.

The TF2 tutorials' client calls the loaded object itself, ``detect_fn =
tf.saved_model.load(path); detections = detect_fn(input_tensor)``, as the TF2 API's exporter
makes it callable.  The same function is therefore also saved as the root's ``__call__``:
``tf.saved_model.load`` revives a ``__call__`` attribute as the object's call, so both clients
run the one traced function and get the same outputs.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

import tensorflow as tf

from odflow.export.signature import SAVED_MODEL_INPUT_KEY, detection_function


def write_saved_model(model, variables: Iterable[tf.Variable], input_type: str,
                      directory: str | os.PathLike) -> None:
    """Save ``model``'s detection function; ``variables`` must be every variable it reads.

    The SavedModel answers both clients: the TF1 signature (``serving_default``, input key
    ``inputs``) and the TF2 call of the loaded object (``loaded(images)``).

    Only the variables and the function are tracked (not the model object), so saving does not
    depend on how the model's layers are built; a variable the function reads but the list lacks
    makes ``tf.saved_model.save`` fail rather than export a model without it.
    """
    root = tf.Module()
    root.model_variables = list(variables)
    root.detect = detection_function(model, input_type, SAVED_MODEL_INPUT_KEY)
    # The TF2 client's `detect_fn(images)`: without it the loaded object is a `_UserObject`
    # that is "not callable".
    root.__call__ = root.detect
    signature = root.detect.get_concrete_function()
    tf.saved_model.save(root, os.fspath(directory), signatures={"serving_default": signature})
