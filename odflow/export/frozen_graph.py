"""``frozen_inference_graph.pb``: one GraphDef with the weights inlined as constants.

TF 2 has no ``freeze_graph`` tool, but a traced ``tf.function`` is a graph: converting its
variable reads to constants gives the self-contained GraphDef that TF1 clients import with
``tf.import_graph_def(graph_def, name='')`` and run in a ``tf.compat.v1.Session``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

import tensorflow as tf
from tensorflow.python.framework.convert_to_constants import (
    convert_variables_to_constants_v2,
)

from odflow.export.signature import OUTPUT_NAMES, detection_function


def freeze(model, input_type: str) -> tf.compat.v1.GraphDef:
    """Trace the detection function of ``model`` and inline its variables' current values."""
    concrete = detection_function(model, input_type).get_concrete_function()
    frozen = convert_variables_to_constants_v2(concrete)
    # Keep only what the outputs need: lowering the NMS loop to TF1 control flow (which TF1
    # tools and older runtimes understand) leaves dangling ``unused_control_flow_input``
    # placeholders that would look like extra inputs.
    graph_def = prune(frozen.graph.as_graph_def(), OUTPUT_NAMES)
    check_interface(graph_def, input_type)
    return graph_def


def prune(graph_def: tf.compat.v1.GraphDef, outputs: Iterable[str]) -> tf.compat.v1.GraphDef:
    """The nodes ``outputs`` depend on (data and control inputs), in their original order."""
    nodes = {node.name: node for node in graph_def.node}
    keep: set[str] = set()
    pending = list(outputs)
    while pending:
        name = pending.pop()
        if name in keep:
            continue
        keep.add(name)
        pending.extend(_node_name(source) for source in nodes[name].input)
    pruned = tf.compat.v1.GraphDef()
    pruned.versions.CopyFrom(graph_def.versions)
    pruned.library.CopyFrom(graph_def.library)
    pruned.node.extend(node for node in graph_def.node if node.name in keep)
    return pruned


def _node_name(tensor_or_control_input: str) -> str:
    """``^name`` or ``name:1`` -> ``name``."""
    return tensor_or_control_input.lstrip("^").split(":")[0]


def check_interface(graph_def: tf.compat.v1.GraphDef, input_type: str) -> None:
    """Fail loudly if tracing renamed a tensor (e.g. ``detection_boxes_1`` after a name clash)."""
    nodes = {node.name: node for node in graph_def.node}
    placeholders = sorted(name for name, node in nodes.items() if node.op == "Placeholder")
    if placeholders != [input_type]:
        raise RuntimeError(f"frozen graph inputs are {placeholders}, expected [{input_type!r}]")
    missing = [name for name in OUTPUT_NAMES if name not in nodes]
    if missing:
        raise RuntimeError(f"frozen graph lacks the output nodes {missing}")


def write_frozen_graph(graph_def: tf.compat.v1.GraphDef, path: str | os.PathLike) -> None:
    with open(path, "wb") as handle:
        handle.write(graph_def.SerializeToString())


def load_frozen_graph(path: str | os.PathLike) -> tf.Graph:
    """Import a frozen graph as TF1 clients do (tensors keep their bare names, no prefix)."""
    graph_def = tf.compat.v1.GraphDef()
    with open(path, "rb") as handle:
        graph_def.ParseFromString(handle.read())
    graph = tf.Graph()
    with graph.as_default():
        tf.import_graph_def(graph_def, name="")
    return graph
