"""Learning-rate schedules, TF1-exact optimiser updates and the moving average."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from odflow.errors import OdflowError
from odflow.protos import pipeline_pb2
from odflow.train import optimizers as opt
from odflow.train.ema import MovingAverage, swapped_in
from odflow.train.state import select_trainable


def rates(schedule, steps):
    return [float(schedule(tf.constant(s, tf.int64))) for s in steps]


def test_constant():
    assert rates(opt.constant(0.25), [0, 10**6]) == [0.25, 0.25]


def test_exponential_decay_staircase_burnin_and_floor():
    schedule = opt.exponential_decay(0.004, 10, 0.5, staircase=True, burnin_rate=0.001,
                                     burnin_steps=5, min_rate=0.0006)
    # burn-in below step 5; then the decay counts from step 5; never below the floor
    assert rates(schedule, [0, 4, 5, 14, 15, 25, 100]) == pytest.approx(
        [0.001, 0.001, 0.004, 0.004, 0.002, 0.001, 0.0006])


def test_exponential_decay_smooth_and_seed_config():
    smooth = opt.exponential_decay(1.0, 10, 0.5, staircase=False)
    assert rates(smooth, [5]) == pytest.approx([0.5 ** 0.5])
    # The tutorial's schedule: decay_steps 800720, so the rate stays 0.004 through 200k steps.
    seed = opt.exponential_decay(0.004, 800720, 0.95)
    assert rates(seed, [0, 41471, 199999]) == pytest.approx([0.004] * 3)


def test_manual_step_with_and_without_warmup():
    plain = opt.manual_step([10, 20], [0.1, 0.2, 0.3])
    assert rates(plain, [0, 9, 10, 19, 20, 50]) == pytest.approx(
        [0.1, 0.1, 0.2, 0.2, 0.3, 0.3])
    warm = opt.manual_step([10, 20], [0.1, 0.2, 0.3], warmup=True)
    assert rates(warm, [0, 5, 9, 10, 20]) == pytest.approx([0.1, 0.15, 0.19, 0.2, 0.3])


def test_manual_step_rejects_unsorted_steps():
    with pytest.raises(OdflowError, match="strictly increasing"):
        opt.manual_step([20, 10], [0.1, 0.2, 0.3])


def test_cosine_decay_warmup_hold_and_end():
    schedule = opt.cosine_decay(1.0, total_steps=100, warmup_rate=0.1, warmup_steps=10,
                                hold_base_rate_steps=10)
    values = rates(schedule, [0, 5, 10, 20, 60, 100, 101])
    assert values == pytest.approx([0.1, 0.55, 1.0, 1.0, 0.5, 0.0, 0.0], abs=1e-6)


def test_build_learning_rate_from_proto_and_unset_is_error():
    lr = pipeline_pb2.LearningRate()
    lr.manual_step_learning_rate.initial_learning_rate = 0.5
    entry = lr.manual_step_learning_rate.schedule.add()
    entry.step, entry.learning_rate = 3, 0.05
    assert rates(opt.build_learning_rate(lr, "x"), [0, 3]) == pytest.approx([0.5, 0.05])
    with pytest.raises(OdflowError, match="x.learning_rate is not set"):
        opt.build_learning_rate(pipeline_pb2.LearningRate(), "x")


def _apply(optimizer, grads, start):
    variable = tf.Variable(np.array(start, np.float32))
    optimizer.build({"v": variable})
    for grad in grads:
        optimizer.apply_one(variable, tf.constant(grad, tf.float32), tf.constant(0.1),
                            *optimizer.slots["v"])
        optimizer.after_apply()
    return variable.numpy()


GRADS = [[0.5, -1.0], [0.2, 0.3], [-0.4, 2.0]]


def test_rmsprop_is_tf1s_algorithm_with_epsilon_inside_the_root():
    got = _apply(opt.RMSProp(opt.constant(0.1), decay=0.9, momentum=0.9, epsilon=1.0),
                 GRADS, [1.0, 2.0])
    x, ms, mom = np.array([1.0, 2.0]), np.ones(2), np.zeros(2)  # TF1 starts ms at 1
    for g in map(np.array, GRADS):
        ms = 0.9 * ms + 0.1 * g ** 2
        mom = 0.9 * mom + 0.1 * g / np.sqrt(ms + 1.0)
        x = x - mom
    np.testing.assert_allclose(got, x, rtol=1e-6)


def test_momentum_update():
    got = _apply(opt.Momentum(opt.constant(0.1), momentum=0.9), GRADS, [1.0, 2.0])
    x, acc = np.array([1.0, 2.0]), np.zeros(2)
    for g in map(np.array, GRADS):
        acc = 0.9 * acc + g
        x = x - 0.1 * acc
    np.testing.assert_allclose(got, x, rtol=1e-6)


def test_adam_update_with_bias_correction():
    optimizer = opt.Adam(opt.constant(0.1), epsilon=1e-8)
    got = _apply(optimizer, GRADS, [1.0, 2.0])
    x, m, v = np.array([1.0, 2.0]), np.zeros(2), np.zeros(2)
    for t, g in enumerate(map(np.array, GRADS), 1):
        m = 0.9 * m + 0.1 * g
        v = 0.999 * v + 0.001 * g ** 2
        lr = 0.1 * np.sqrt(1 - 0.999 ** t) / (1 - 0.9 ** t)
        x = x - lr * m / (np.sqrt(v) + 1e-8)
    np.testing.assert_allclose(got, x, rtol=1e-5)
    assert set(optimizer.named_slots()) == {"v/Adam", "v/Adam_1", "beta1_power", "beta2_power"}


@pytest.mark.parametrize("kind, slots", [
    ("rms_prop_optimizer", {"w/RMSProp", "w/RMSProp_1"}),
    ("momentum_optimizer", {"w/Momentum"}),
    ("adam_optimizer", {"w/Adam", "w/Adam_1", "beta1_power", "beta2_power"}),
])
def test_build_optimizer_names_slots_as_tf1(kind, slots):
    config = pipeline_pb2.Optimizer()
    getattr(config, kind).learning_rate.constant_learning_rate.learning_rate = 0.01
    optimizer = opt.build_optimizer(config)
    optimizer.build({"w": tf.Variable(tf.zeros([2, 3]))})
    assert set(optimizer.named_slots()) == slots


def test_unset_optimizer_is_error():
    with pytest.raises(OdflowError, match="train_config.optimizer"):
        opt.build_optimizer(pipeline_pb2.Optimizer())


def test_moving_average_update_names_and_swap():
    weight = tf.Variable([1.0, 2.0])
    ema = MovingAverage({"w": weight}, decay=0.9)
    assert list(ema.named_variables()) == ["w/ExponentialMovingAverage"]
    weight.assign([3.0, 4.0])
    ema.update()
    np.testing.assert_allclose(ema.shadows["w"].numpy(), [1.2, 2.2], rtol=1e-6)
    with swapped_in({"w": weight}, ema.shadows):
        np.testing.assert_allclose(weight.numpy(), [1.2, 2.2], rtol=1e-6)
    np.testing.assert_allclose(weight.numpy(), [3.0, 4.0])
    ema.reset()
    np.testing.assert_allclose(ema.shadows["w"].numpy(), [3.0, 4.0])


def test_select_trainable_update_and_freeze_patterns():
    variables = {"FeatureExtractor/a": tf.Variable(1.0), "BoxPredictor_0/b": tf.Variable(1.0),
                 "FeatureExtractor/moving": tf.Variable(1.0, trainable=False)}
    assert set(select_trainable(variables, [], [])) == {"FeatureExtractor/a", "BoxPredictor_0/b"}
    assert set(select_trainable(variables, [], ["FeatureExtractor"])) == {"BoxPredictor_0/b"}
    assert set(select_trainable(variables, ["Box"], [])) == {"BoxPredictor_0/b"}
    with pytest.raises(OdflowError, match="no variable is left"):
        select_trainable(variables, ["Box"], ["Box"])
    with pytest.raises(OdflowError, match="freeze_variables: bad regular expression"):
        select_trainable(variables, [], ["("])
