"""The learning-rate schedule and the run's length, kept consistent before training starts.

Training length has one home, the workflow's ``train.num_steps``: the pipeline-config stage
writes it into ``train_config.num_steps`` and, when the template ties a schedule to its own
length (a cosine decay whose ``total_steps`` equals the template's ``num_steps``, as the
starter config's 2500/2500), stretches that schedule with it (``fit_schedule``).  Without
this, raising ``num_steps`` past ``total_steps`` trains every further step at rate 0,
silently; ``check_learning_rate`` makes any such schedule an error naming the field.

Pure proto logic (no TensorFlow), so the config stage and the trainer can both call it; the
formulas are those of ``odflow.train.optimizers`` (the API's ``learning_schedules``).
"""

from __future__ import annotations

from odflow.errors import OdflowError

_STEP_FIELDS = ("total_steps", "warmup_steps", "hold_base_rate_steps")


def _learning_rate(config):
    """(dotted field path, LearningRate message) of ``train_config.optimizer``, or None."""
    optimizer = config.train_config.optimizer
    kind = optimizer.WhichOneof("optimizer")
    if kind is None:
        return None
    return f"train_config.optimizer.{kind}.learning_rate", getattr(optimizer, kind).learning_rate


def fit_schedule(config, num_steps: int) -> list[str]:
    """Stretch, in place, a cosine schedule tied to the template's length to ``num_steps``.

    Tied means ``total_steps`` equals ``train_config.num_steps`` of the template; then
    ``total_steps`` becomes ``num_steps`` and ``warmup_steps``/``hold_base_rate_steps`` scale
    by the same factor (rounded), so a 6-step test run keeps a 4 % warm-up of the 2500-step
    demo's shape.  An untied schedule (the zoo's exponential decay, a cosine with its own
    length) is left alone.  Returns one line per field changed, for the log.
    """
    found = _learning_rate(config)
    template_steps = config.train_config.num_steps
    if found is None or num_steps <= 0 or template_steps <= 0:
        return []
    where, rate = found
    if rate.WhichOneof("learning_rate") != "cosine_decay_learning_rate":
        return []
    cosine = rate.cosine_decay_learning_rate
    if cosine.total_steps != template_steps or num_steps == template_steps:
        return []
    changes = []
    for field in _STEP_FIELDS:
        old = getattr(cosine, field)
        new = num_steps if field == "total_steps" else round(old * num_steps / template_steps)
        if new != old:
            setattr(cosine, field, new)
            changes.append(f"{where}.cosine_decay_learning_rate.{field}: {old} -> {new}")
    return changes


def without_length(config):
    """A copy of ``config`` without the fields ``train.num_steps`` drives (``num_steps``, and a
    cosine schedule's ``total_steps``/``warmup_steps``/``hold_base_rate_steps``, which
    ``fit_schedule`` stretches with it): what a training fingerprint should digest, so that
    raising ``num_steps`` resumes the checkpoints instead of starting again."""
    stripped = type(config)()
    stripped.CopyFrom(config)
    stripped.train_config.ClearField("num_steps")
    found = _learning_rate(stripped)
    if found is not None and found[1].WhichOneof("learning_rate") == "cosine_decay_learning_rate":
        for field in _STEP_FIELDS:
            found[1].cosine_decay_learning_rate.ClearField(field)
    return stripped


def check_learning_rate(config, num_steps: int | None = None) -> None:
    """Raise ``OdflowError`` naming the field if the schedule leaves the learning rate at 0
    for a step that will run (0-based steps ``0 .. num_steps - 1``; ``num_steps`` defaults
    to ``train_config.num_steps``, 0 = until stopped, where only length-free faults count).

    Warm-ups that start from rate 0 at step 0 (TF1's cosine and manual-step warm-ups) are not
    faults: the rate rises on the next step.
    """
    found = _learning_rate(config)
    if found is None:
        return
    where, rate = found
    steps = config.train_config.num_steps if num_steps is None else num_steps
    kind = rate.WhichOneof("learning_rate")
    field = f"{where}.{kind}"
    if kind == "constant_learning_rate":
        if rate.constant_learning_rate.learning_rate <= 0:
            raise OdflowError(f"{field}.learning_rate is 0: training would not move; "
                              "set a positive rate")
    elif kind == "cosine_decay_learning_rate":
        _check_cosine(rate.cosine_decay_learning_rate, steps, field)
    elif kind == "exponential_decay_learning_rate":
        _check_exponential(rate.exponential_decay_learning_rate, steps, field)
    elif kind == "manual_step_learning_rate":
        _check_manual_step(rate.manual_step_learning_rate, steps, field)


def _check_cosine(cosine, steps: int, field: str) -> None:
    if cosine.learning_rate_base <= 0:
        raise OdflowError(f"{field}.learning_rate_base is 0: training would not move; "
                          "set a positive rate")
    if steps > 0 and cosine.total_steps < steps:
        raise OdflowError(
            f"{field}.total_steps is {cosine.total_steps} but training runs {steps} steps "
            f"(train_config.num_steps): the rate is 0 from step {cosine.total_steps} on. "
            f"Set total_steps to at least {steps} (pipeline.overrides), or use a template "
            "whose total_steps equals its num_steps so that it follows train.num_steps")


def _check_exponential(decay, steps: int, field: str) -> None:
    if decay.min_learning_rate > 0:
        return
    if decay.initial_learning_rate <= 0:
        raise OdflowError(f"{field}.initial_learning_rate is 0 (and min_learning_rate 0): "
                          "training would not move; set a positive rate")
    first_decayed = decay.burnin_steps + (decay.decay_steps if decay.staircase else 1)
    if decay.decay_factor <= 0 and (steps <= 0 or first_decayed < steps):
        raise OdflowError(f"{field}.decay_factor is 0: the rate is 0 from step {first_decayed} "
                          "on; set a factor in (0, 1] or a positive min_learning_rate")


def _check_manual_step(manual, steps: int, field: str) -> None:
    pieces = [(0, manual.initial_learning_rate, "initial_learning_rate")]
    pieces += [(entry.step, entry.learning_rate, f"schedule[{index}].learning_rate")
               for index, entry in enumerate(manual.schedule)]
    for index, (start, value, name) in enumerate(pieces):
        if value > 0 or (steps > 0 and start >= steps):
            continue
        if index == 0 and manual.warmup and len(pieces) > 1 and pieces[1][1] > 0:
            continue  # a warm-up from 0: only step 0 runs at rate 0
        raise OdflowError(f"{field}.{name} is 0: every step from {start} on would run at "
                          "rate 0; set a positive rate")
