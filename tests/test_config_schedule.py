"""Training length and the learning-rate schedule (odflow.config.schedule, and through
patch_config's num_steps): a tied cosine follows num_steps, and a schedule that leaves the
rate at 0 for a step that will run is an error naming the field. Expected values are worked
by hand from the formulas in the API's learning_schedules documentation."""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

import pytest

from odflow import config
from odflow.config.schedule import check_learning_rate, fit_schedule
from odflow.errors import OdflowError

SAMPLE = (Path(__file__).parent / "fixtures/reference/sample_configs/"
          "ssd_mobilenet_v1_coco.config")
COSINE = "train_config.optimizer.adam_optimizer.learning_rate.cosine_decay_learning_rate"


def starter_like(num_steps: int = 2500, total_steps: int = 2500, warmup: int = 100):
    """The starter template's optimizer block (odflow/workflow/starter_pipeline.config)."""
    cfg = config.TrainEvalPipelineConfig()
    cfg.model.ssd.num_classes = 1
    cfg.train_config.num_steps = num_steps
    cosine = cfg.train_config.optimizer.adam_optimizer.learning_rate.cosine_decay_learning_rate
    cosine.learning_rate_base = 0.004
    cosine.total_steps = total_steps
    cosine.warmup_learning_rate = 0.0005
    cosine.warmup_steps = warmup
    return cfg


def cosine_of(cfg):
    return cfg.train_config.optimizer.adam_optimizer.learning_rate.cosine_decay_learning_rate


def test_the_starter_template_ties_its_schedule_to_its_length() -> None:
    text = resources.files("odflow.workflow").joinpath("starter_pipeline.config").read_text()
    assert "total_steps: 2500" in text and "num_steps: 2500" in text


def test_a_tied_cosine_follows_num_steps_with_its_warmup_scaled() -> None:
    cfg = starter_like()
    changes = fit_schedule(cfg, 3000)
    assert cosine_of(cfg).total_steps == 3000
    assert cosine_of(cfg).warmup_steps == 120  # 100 * 3000 / 2500
    assert len(changes) == 2 and f"{COSINE}.total_steps: 2500 -> 3000" in changes


def test_a_tiny_run_gets_a_tiny_warmup() -> None:
    cfg = starter_like()
    fit_schedule(cfg, 6)
    assert (cosine_of(cfg).total_steps, cosine_of(cfg).warmup_steps) == (6, 0)  # 0.24 -> 0


@pytest.mark.parametrize("cfg", [starter_like(total_steps=4000),
                                 starter_like(num_steps=0)], ids=["own-length", "no-length"])
def test_an_untied_cosine_is_left_alone(cfg) -> None:
    assert fit_schedule(cfg, 3000) == []
    assert cosine_of(cfg).total_steps in (4000, 2500)


def test_the_zoo_config_exponential_decay_is_left_alone() -> None:
    cfg = config.load(SAMPLE)
    before = cfg.train_config.optimizer.SerializeToString()
    assert fit_schedule(cfg, 300000) == []
    assert cfg.train_config.optimizer.SerializeToString() == before
    check_learning_rate(cfg, 300000)  # decays, never reaches 0


def test_cosine_shorter_than_the_run_is_an_error_naming_the_field() -> None:
    cfg = starter_like(total_steps=2500)
    check_learning_rate(cfg, 2500)  # the last step that runs, 2499, still has a rate > 0
    with pytest.raises(OdflowError) as error:
        check_learning_rate(cfg, 2501)
    message = str(error.value)
    assert f"{COSINE}.total_steps is 2500" in message and "at least 2501" in message


@pytest.mark.parametrize(("edit", "field"), [
    (lambda lr: setattr(lr.constant_learning_rate, "learning_rate", 0.0),
     "constant_learning_rate.learning_rate"),
    (lambda lr: setattr(lr.exponential_decay_learning_rate, "initial_learning_rate", 0.0),
     "exponential_decay_learning_rate.initial_learning_rate"),
    (lambda lr: setattr(lr.exponential_decay_learning_rate, "decay_factor", 0.0),
     "exponential_decay_learning_rate.decay_factor"),
    (lambda lr: lr.manual_step_learning_rate.schedule.add(step=50, learning_rate=0.0),
     "manual_step_learning_rate.schedule[0].learning_rate"),
], ids=["constant", "exponential-initial", "exponential-factor", "manual-step"])
def test_other_schedules_that_stop_learning_name_the_field(edit, field: str) -> None:
    cfg = config.TrainEvalPipelineConfig()
    cfg.train_config.num_steps = 100
    lr = cfg.train_config.optimizer.momentum_optimizer.learning_rate
    edit(lr)
    if lr.WhichOneof("learning_rate") == "exponential_decay_learning_rate":
        lr.exponential_decay_learning_rate.decay_steps = 10
    with pytest.raises(OdflowError, match=re.escape(f"momentum_optimizer.learning_rate.{field}")):
        check_learning_rate(cfg)


def test_zero_rates_after_the_run_or_a_warmup_from_zero_are_fine() -> None:
    cfg = config.TrainEvalPipelineConfig()
    manual = cfg.train_config.optimizer.momentum_optimizer.learning_rate.manual_step_learning_rate
    manual.initial_learning_rate = 0.0
    manual.warmup = True
    manual.schedule.add(step=10, learning_rate=0.01)
    manual.schedule.add(step=500, learning_rate=0.0)
    check_learning_rate(cfg, 500)  # steps 0..499: the 0 from step 500 never runs
    with pytest.raises(OdflowError, match=r"schedule\[1\]\.learning_rate is 0"):
        check_learning_rate(cfg, 501)


def test_patch_config_writes_num_steps_and_follows_the_schedule() -> None:
    patched = config.patch_config(starter_like(), num_steps=3000)
    assert patched.train_config.num_steps == 3000
    assert cosine_of(patched).total_steps == 3000


def test_an_override_may_reshape_the_schedule_but_must_not_leave_it_short() -> None:
    patched = config.patch_config(starter_like(), num_steps=3000,
                                  overrides=[f"{COSINE}.total_steps=5000"])
    assert cosine_of(patched).total_steps == 5000
    with pytest.raises(OdflowError, match=r"total_steps is 2000"):
        config.patch_config(starter_like(), num_steps=3000,
                            overrides=[f"{COSINE}.total_steps=2000"])


def test_num_steps_has_one_home() -> None:
    with pytest.raises(OdflowError, match=r"train_config.num_steps to 10.*train.num_steps"):
        config.patch_config(starter_like(), num_steps=3000,
                            overrides=["train_config.num_steps=10"])


@pytest.mark.slow  # imports TensorFlow
def test_raising_num_steps_resumes_with_a_live_rate() -> None:
    """Resuming the 2500-step demo at step 2500 with num_steps 3000: the stretched schedule
    (total 3000, warm-up 120) gives 0.5 * 0.004 * (1 + cos(pi * 2380 / 2880)) = 2.902e-4 at
    step 2500; the template's own schedule would give 0 from step 2500 on."""
    tf = pytest.importorskip("tensorflow")
    from odflow.train.optimizers import build_learning_rate

    def rate(cfg, step: int) -> float:
        lr = cfg.train_config.optimizer.adam_optimizer.learning_rate
        return float(build_learning_rate(lr, "train_config.optimizer")(tf.constant(step)))

    patched = config.patch_config(starter_like(), num_steps=3000)
    assert rate(patched, 2500) == pytest.approx(2.9018e-4, rel=1e-3)
    assert rate(patched, 2999) > 0
    assert rate(starter_like(), 2500) == 0.0


def test_without_length_is_the_same_for_any_num_steps_only() -> None:
    """What a training fingerprint digests: equal for 2500 and 3000 steps, not for a
    different rate."""
    from odflow.config.schedule import without_length

    short = config.patch_config(starter_like(), num_steps=2500)
    long = config.patch_config(starter_like(), num_steps=3000)
    assert short.SerializeToString() != long.SerializeToString()
    assert (without_length(short).SerializeToString()
            == without_length(long).SerializeToString())
    other = config.patch_config(starter_like(), num_steps=3000,
                                overrides=[f"{COSINE}.learning_rate_base=0.01"])
    assert (without_length(other).SerializeToString()
            != without_length(long).SerializeToString())
    assert long.train_config.num_steps == 3000  # the argument is left alone
