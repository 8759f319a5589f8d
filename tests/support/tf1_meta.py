"""Run a TF1 zoo MetaGraph (``model.ckpt.meta``) with seeded synthetic weights, so a test can
check that odflow computes what the TF1 API's graph computed with the same weights."""

from __future__ import annotations

import zlib
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import tensorflow as tf

OUTPUTS = ("detection_boxes", "detection_scores", "detection_classes", "num_detections")


def synthetic_value(name: str, shape: list[int], seed: int = 0) -> np.ndarray:
    """A value for a variable, seeded by its name: He-scaled conv weights, batch-norm
    statistics near the identity (so ReLU6 activations stay in range through ~70 layers),
    small biases, larger class-predictor biases (so scores spread over (0, 1))."""
    rng = np.random.default_rng(zlib.crc32(name.encode()) + seed)
    leaf = name.rsplit("/", 1)[-1]
    if leaf in ("weights", "depthwise_weights"):
        fan_in = int(np.prod(shape[:2])) * (1 if leaf == "depthwise_weights" else shape[2])
        return rng.normal(0.0, np.sqrt(2.0 / fan_in), shape).astype(np.float32)
    if leaf == "gamma":
        return rng.uniform(0.5, 1.5, shape).astype(np.float32)
    if leaf in ("beta", "moving_mean"):
        return rng.uniform(-0.2, 0.2, shape).astype(np.float32)
    if leaf == "moving_variance":
        return rng.uniform(0.5, 2.0, shape).astype(np.float32)
    if leaf == "biases":
        scale = 1.0 if "ClassPredictor" in name else 0.1
        return rng.uniform(-scale, scale, shape).astype(np.float32)
    if name == "global_step":
        return np.zeros(shape, np.int64)
    raise ValueError(f"no synthetic value rule for {name}")


def run_meta_graph(meta_path: Path, images: np.ndarray,
                   seed: int = 0) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """(detections of the TF1 graph for uint8 ``images``, the variable values it used)."""
    graph = tf.Graph()
    values: dict[str, np.ndarray] = {}
    with graph.as_default():
        tf.compat.v1.train.import_meta_graph(str(meta_path), clear_devices=True)
        # Every VariableV2 op (the graph's collections miss some batch-norm statistics).
        feeds, assigns = {}, []
        for op in [o for o in graph.get_operations() if o.type == "VariableV2"]:
            ref = op.outputs[0]
            values[op.name] = synthetic_value(op.name, ref.shape.as_list(), seed)
            holder = tf.compat.v1.placeholder(ref.dtype.base_dtype, ref.shape)
            assigns.append(tf.compat.v1.assign(ref, holder))
            feeds[holder] = values[op.name]
        with tf.compat.v1.Session(graph=graph) as session:
            session.run(assigns, feed_dict=feeds)
            fetched = session.run([f"{o}:0" for o in OUTPUTS],
                                  feed_dict={"image_tensor:0": images})
    return dict(zip(OUTPUTS, fetched)), values


def assign(named: Mapping[str, tf.Variable], values: Mapping[str, np.ndarray]) -> None:
    """Give odflow's variables (TF1 names) the graph's values."""
    for name, variable in named.items():
        variable.assign(values[name])


def write_checkpoint(prefix: Path, values: Mapping[str, np.ndarray]) -> str:
    """A name-based checkpoint of ``values`` as TF1's Saver wrote it (SaveV2)."""
    names = sorted(values)
    tf.raw_ops.SaveV2(prefix=str(prefix), tensor_names=names, shape_and_slices=[""] * len(names),
                      tensors=[tf.constant(values[n]) for n in names])
    return str(prefix)


def run_frozen_graph(path: Path, images: np.ndarray) -> dict[str, np.ndarray]:
    """The detections of an exported ``frozen_inference_graph.pb`` for uint8 ``images``."""
    graph_def = tf.compat.v1.GraphDef()
    graph_def.ParseFromString(Path(path).read_bytes())
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.import_graph_def(graph_def, name="")
        with tf.compat.v1.Session(graph=graph) as session:
            fetched = session.run([f"{o}:0" for o in OUTPUTS],
                                  feed_dict={"image_tensor:0": images})
    return dict(zip(OUTPUTS, fetched))
