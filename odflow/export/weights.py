"""Which checkpoint to export, and which of its values go into the model.

A training checkpoint ``model.ckpt-N`` holds each trainable variable ``V`` twice: the raw value
and ``V/ExponentialMovingAverage`` (plus optimiser slots).  Like the API's exporter, we export the
moving averages when the config evaluates with them (so the export is what evaluation measured);
the exported files then hold only the chosen values under the plain names.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from odflow import checkpoints
from odflow.errors import OdflowError

log = logging.getLogger(__name__)

EMA_SUFFIX = "/ExponentialMovingAverage"
GLOBAL_STEP = "global_step"
MOVING_AVERAGE_MODES = ("auto", "true", "false")


@dataclass(frozen=True)
class LoadedWeights:
    """What went into the model: ``values`` by the zoo's names, and how they were chosen."""

    values: dict[str, np.ndarray]
    global_step: int
    num_moving_averages: int
    num_trainable: int


def wants_moving_averages(pipeline_config) -> bool:
    """Whether evaluation used the moving averages: the API's exporter followed the same field.

    (``train_config.optimizer.use_moving_average``, true by default, only says that training
    kept them; with ``eval_config.use_moving_averages`` false, as in the zoo's and the seed's
    configs, upstream evaluated and exported the raw weights.)
    """
    return bool(pipeline_config.eval_config.use_moving_averages)


def load_weights(variables: dict[str, tf.Variable], prefix: str, mode: str,
                 config_wants_ema: bool) -> LoadedWeights:
    """Assign every model variable from checkpoint ``prefix``; return the values assigned.

    ``mode``: ``auto`` uses the moving averages when ``config_wants_ema`` and the checkpoint has
    them; ``true`` requires them; ``false`` uses the raw values.
    """
    if mode not in MOVING_AVERAGE_MODES:
        raise OdflowError(f"--use_moving_averages must be one of {', '.join(MOVING_AVERAGE_MODES)}"
                          f", not {mode!r}")
    reader = tf.train.load_checkpoint(prefix)
    shapes = reader.get_variable_to_shape_map()
    missing = [name for name in variables if name not in shapes]
    if missing:
        raise OdflowError(
            f"checkpoint {prefix} lacks {len(missing)} of the model's {len(variables)} variables "
            f"(e.g. {', '.join(missing[:3])}); was it written for this pipeline config?")
    trainable = [name for name, var in variables.items() if var.trainable]
    averaged = [name for name in trainable if name + EMA_SUFFIX in shapes]
    use_ema = {"auto": config_wants_ema, "true": True, "false": False}[mode]
    if mode == "true" and not averaged:
        raise OdflowError(f"--use_moving_averages true, but checkpoint {prefix} has no "
                          f"'*{EMA_SUFFIX}' variables; export with --use_moving_averages false")
    if not use_ema:
        averaged = []
    if averaged:
        log.info("using the moving averages of %d of %d trainable variables",
                 len(averaged), len(trainable))
    elif use_ema:
        log.info("the config uses moving averages, but %s has none: exporting the raw weights",
                 prefix)
    ema_names = set(averaged)
    values: dict[str, np.ndarray] = {}
    for name, variable in variables.items():
        source = name + EMA_SUFFIX if name in ema_names else name
        value = reader.get_tensor(source)
        expected = [int(dim) for dim in variable.shape]
        if list(value.shape) != expected:
            raise OdflowError(
                f"checkpoint {prefix}: variable {source} has shape {list(value.shape)} but the "
                f"model built from the pipeline config needs {expected} (a "
                f"different num_classes or depth_multiplier?)")
        variable.assign(value.astype(tf.as_dtype(variable.dtype).as_numpy_dtype))
        values[name] = np.asarray(variable.numpy())
    step = (int(reader.get_tensor(GLOBAL_STEP)) if GLOBAL_STEP in shapes
            else checkpoints.step_of(prefix) or 0)
    return LoadedWeights(values=values, global_step=step, num_moving_averages=len(averaged),
                         num_trainable=len(trainable))
