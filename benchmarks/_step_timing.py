"""The timing pieces the step benchmarks share: interleaved rounds, a gradient step, ratios, and
a matmul rate taken between rounds.

On a machine shared with other jobs a benchmark's absolute times move by 2x from minute to
minute; what holds is a comparison measured in one process with the variants *interleaved*
(round 1: A, B, C; round 2: A, B, C; ...), so a busy spell hits all of them.  The fastest round
is the least disturbed, the median the typical one: both are reported.  A float32 matmul timed
between rounds (``benchmarks/roofline.matmul_rate``) gives each run's machine speed, so figures
from runs under different load can be put side by side (img/s per matmul GFLOP/s).
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import tensorflow as tf

sys.path.insert(0, str(Path(__file__).resolve().parent))

from roofline import MATMUL_SIZE, forward_flops, matmul_rate

__all__ = ["MATMUL_SIZE", "Rounds", "forward_flops", "gradient_step", "interleaved_rounds",
           "matmul_rate", "time_call", "time_steps"]


def gradient_step(variables, loss_fn: Callable[[], tf.Tensor]) -> Callable[[], tuple]:
    """A ``tf.function`` forward + backward without an update: loss and the gradients of
    ``variables``; summing every gradient keeps each one computed (none is pruned)."""
    @tf.function
    def step():
        with tf.GradientTape() as tape:
            total = loss_fn()
        gradients = tape.gradient(total, variables)
        return total, tf.add_n([tf.reduce_sum(g) for g in gradients if g is not None])
    return step


def time_steps(step: Callable[[], object], steps: int) -> float:
    """Seconds per call of ``step`` over ``steps`` calls; the last result is fetched to the
    host (``float(result[0])``) so asynchronous work is inside the timing."""
    start = time.perf_counter()
    result = None
    for _ in range(steps):
        result = step()
    if isinstance(result, (tuple, list)) and result:
        float(result[0])
    return (time.perf_counter() - start) / steps


def time_call(run: Callable[[], object]) -> float:
    """Seconds of one call of ``run`` (which must finish its work before returning)."""
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


@dataclass
class Rounds:
    """Per-variant times (seconds per call) of interleaved rounds, and the matmul GFLOP/s
    measured before each round."""

    times: dict[str, list[float]] = field(default_factory=dict)
    matmul: list[float] = field(default_factory=list)

    def fastest(self, name: str) -> float:
        return min(self.times[name])

    def median(self, name: str) -> float:
        return statistics.median(self.times[name])

    def ratio(self, a: str, b: str) -> tuple[float, float]:
        """``a``'s time over ``b``'s: (by the fastest rounds, by the medians)."""
        return self.fastest(a) / self.fastest(b), self.median(a) / self.median(b)

    def ratio_text(self, a: str, b: str) -> str:
        fastest, median = self.ratio(a, b)
        return f"{fastest:.2f}x by the fastest round, {median:.2f}x by the median"

    def table(self, batch: int) -> list[str]:
        """Markdown rows: s/step (fastest, median), images/s of the fastest, every round."""
        lines = ["| step | s/step min | s/step median | images/s (min) | per round |",
                 "|---|---|---|---|---|"]
        for name, values in self.times.items():
            rounds = ", ".join(f"{v:.2f}" for v in values)
            lines.append(f"| {name} | {min(values):.3f} | {statistics.median(values):.3f} | "
                         f"{batch / min(values):.2f} | {rounds} |")
        return lines


def interleaved_rounds(steps: Mapping[str, Callable[[], object]], rounds: int,
                       steps_per_round: int = 1, *, warmup: int = 1, with_matmul: bool = False,
                       log: Callable[[str], None] | None = None) -> Rounds:
    """Warm each step up (``warmup`` calls: tracing, first allocations), then ``rounds`` rounds
    in which every step runs ``steps_per_round`` times in turn; optionally a matmul rate
    before each round."""
    say = log or (lambda message: print(message, file=sys.stderr, flush=True))
    for name, step in steps.items():
        say(f"warming up: {name}")
        for _ in range(warmup):
            time_steps(step, 1)
    result = Rounds(times={name: [] for name in steps})
    for index in range(rounds):
        say(f"round {index + 1}/{rounds}")
        if with_matmul:
            result.matmul.append(matmul_rate())
        for name, step in steps.items():
            result.times[name].append(time_steps(step, steps_per_round))
    return result
