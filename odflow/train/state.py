"""Everything a checkpoint holds, built once inside the distribution strategy's scope.

The model's variables under the zoo's names, ``global_step`` (int64, as TF1), the optimiser's
slots and the moving averages; ``named_tensors`` is exactly what goes into ``model.ckpt-<step>``
and ``restore`` reads it back, so a resumed run continues with the optimiser state it stopped
with.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from odflow import checkpoints
from odflow.errors import OdflowError
from odflow.train.ema import MovingAverage
from odflow.train.optimizers import Optimizer, build_optimizer

log = logging.getLogger(__name__)

GLOBAL_STEP = "global_step"


def select_trainable(variables: dict[str, tf.Variable], update_patterns: Sequence[str],
                     freeze_patterns: Sequence[str]) -> dict[str, tf.Variable]:
    """The variables to train: trainable ones, narrowed as upstream did.

    ``update_trainable_variables`` keeps only names matching one of its regexes (matched at the
    start of the name, ``re.match``), then ``freeze_variables`` removes the matching ones.
    """
    selected = {name: v for name, v in variables.items() if v.trainable}
    for field, patterns in (("update_trainable_variables", update_patterns),
                            ("freeze_variables", freeze_patterns)):
        try:
            compiled = [re.compile(p) for p in patterns]
        except re.error as error:
            raise OdflowError(f"train_config.{field}: bad regular expression: {error}") from None
        if not compiled:
            continue
        keep = field == "update_trainable_variables"
        selected = {name: v for name, v in selected.items()
                    if any(c.match(name) for c in compiled) == keep}
    if not selected:
        raise OdflowError("no variable is left to train after train_config."
                          "update_trainable_variables / freeze_variables; loosen them")
    return selected


class TrainingState:
    """Model + optimiser + EMA + global step; create it inside ``strategy.scope()``."""

    def __init__(self, model, optimizer_config, train_config):
        self.model = model
        self.variables: dict[str, tf.Variable] = dict(model.named_variables())
        if GLOBAL_STEP in self.variables:
            raise OdflowError("the model has a variable named global_step; that name is reserved")
        self.trainable = select_trainable(self.variables,
                                          list(train_config.update_trainable_variables),
                                          list(train_config.freeze_variables))
        self.global_step = tf.Variable(0, dtype=tf.int64, trainable=False, name=GLOBAL_STEP,
                                       aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)
        self.optimizer: Optimizer = build_optimizer(optimizer_config)
        self.optimizer.build(self.trainable)
        self.ema: MovingAverage | None = None
        if optimizer_config.use_moving_average:
            self.ema = MovingAverage(self.trainable, optimizer_config.moving_average_decay)

    @property
    def step(self) -> int:
        return int(self.global_step.numpy())

    def named_tensors(self) -> dict[str, tf.Tensor]:
        """What a checkpoint holds, read in cross-replica context."""
        named: dict[str, tf.Variable] = dict(self.variables)
        named.update(self.optimizer.named_slots())
        if self.ema is not None:
            named.update(self.ema.named_variables())
        tensors = {name: v.read_value() for name, v in named.items()}
        tensors[GLOBAL_STEP] = self.global_step.read_value()
        return tensors

    def restore(self, prefix: str) -> None:
        """Continue from one of our checkpoints: model, step, and optimiser state.

        A missing model variable or a shape change is an error (another model); missing slots
        or averages (the optimiser or ``use_moving_average`` changed) start fresh with a warning.
        """
        checkpoints.assign_from(prefix, self.variables, required=True)
        reader = tf.train.load_checkpoint(prefix)
        if not reader.has_tensor(GLOBAL_STEP):
            raise OdflowError(f"checkpoint {prefix} has no global_step; it is not a training "
                              "checkpoint")
        self.global_step.assign(int(np.asarray(reader.get_tensor(GLOBAL_STEP))))
        extra: dict[str, tf.Variable] = dict(self.optimizer.named_slots())
        if self.ema is not None:
            extra.update(self.ema.named_variables())
        missing = checkpoints.assign_from(prefix, extra, required=False)
        if self.ema is not None and any(n.endswith("/ExponentialMovingAverage") for n in missing):
            self.ema.reset()
        if missing:
            log.warning("checkpoint %s lacks %d optimiser/average variable(s) (first: %s); they "
                        "start fresh", prefix, len(missing), missing[0])
