"""What the user sees while training: a bar on a terminal, a log line every N steps always.

Upstream's console showed nothing for minutes; SLURM logs and Snakemake ``log:`` files have no
terminal, so the periodic log line (step, losses, learning rate, images/s, ETA) is written to
the log whether or not the bar is shown.  A rule redirects the job's stdout and stderr to its
log, so the console (what Snakemake prints) gets a separate stream: a short, self-contained
line every few seconds (``ConsoleLine``), labelled so several jobs' lines stay readable.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Mapping
from typing import TextIO

log = logging.getLogger("odflow.train")


def format_duration(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    if days:
        return f"{days}d{hours:02d}h"
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{seconds:02d}s"


def _short(tag: str) -> str:
    """``Loss/classification_loss`` -> ``classification``, for a compact log line."""
    return tag.rsplit("/", 1)[-1].removesuffix("_loss")


class ConsoleLine:
    """A one-line status (step, images/s, ETA, last loss) written at most every ``every`` seconds.

    Each line is written whole and flushed (no carriage returns), so the lines of jobs that
    Snakemake runs side by side interleave line by line; the label says which job it is.  The
    rate is measured over the steps since the previous console line.
    """

    def __init__(self, stream: TextIO, label: str, start_step: int, num_steps: int,
                 batch_size: int, every: float = 10.0):
        self.stream: TextIO | None = stream
        self.label = label
        self.num_steps, self.batch_size, self.every = num_steps, batch_size, every
        self._first_step = start_step + 1
        self._step, self._time = start_step, time.perf_counter()

    def update(self, step: int, loss: float) -> bool:
        """Write the line when the first step finished or ``every`` seconds passed since the last."""
        now = time.perf_counter()
        if step != self._first_step and now - self._time < self.every:
            return False
        of = f"/{self.num_steps}" if self.num_steps > 0 else ""
        parts = [f"{self.label}: step {step}{of}"]
        if step != self._first_step and step > self._step and now > self._time:
            rate = (step - self._step) * self.batch_size / (now - self._time)
            parts.append(f"{rate:.1f} images/s")
            if self.num_steps > 0:
                eta = (self.num_steps - step) * self.batch_size / rate
                parts.append(f"ETA {format_duration(eta)}")
        parts.append(f"loss {loss:.4f}")
        self._step, self._time = step, now
        try:
            self.stream.write(", ".join(parts) + "\n")
            self.stream.flush()
        except OSError:  # the console went away (closed terminal): training goes on
            self.stream = None
            return False
        return True


class Progress:
    """Tracks throughput since the last report and renders bar and log lines.

    The rate is measured over the steps since the previous log line, so the first steps (graph
    tracing, pipeline warm-up) do not distort it for long.
    """

    def __init__(self, start_step: int, num_steps: int, batch_size: int, log_every: int,
                 show_bar: bool | None = None, console: ConsoleLine | None = None):
        self.num_steps = num_steps
        self.batch_size = batch_size
        self.log_every = max(int(log_every), 1)
        self._first_step = start_step + 1
        self._window_step = start_step
        self._window_time = time.perf_counter()
        self.images_per_second = 0.0
        self.console = console
        if show_bar is None:
            show_bar = sys.stderr.isatty()
        self._bar = None
        if show_bar:
            from tqdm import tqdm
            total = num_steps if num_steps > 0 else None
            self._bar = tqdm(total=total, initial=start_step, unit="step", dynamic_ncols=True,
                             file=sys.stderr)

    def eta_seconds(self, step: int) -> float | None:
        if self.num_steps <= 0 or self.images_per_second <= 0:
            return None
        return (self.num_steps - step) * self.batch_size / self.images_per_second

    def update(self, step: int, losses: Mapping[str, float], learning_rate: float) -> bool:
        """Record that ``step`` finished; returns True when this step was logged."""
        if self._bar is not None:
            self._bar.update(step - self._bar.n)
            self._bar.set_postfix(loss=f"{losses.get('Loss/total_loss', float('nan')):.3f}",
                                  lr=f"{learning_rate:.3g}", refresh=False)
        if self.console is not None and self.console.stream is not None:
            self.console.update(step, losses.get("Loss/total_loss", float("nan")))
        # The first step is logged too: it shows at once that training runs (and what the
        # losses start at) instead of staying silent until step N.
        if step % self.log_every != 0 and step != self._first_step:
            return False
        now = time.perf_counter()
        if step > self._window_step and now > self._window_time and step != self._first_step:
            self.images_per_second = ((step - self._window_step) * self.batch_size
                                      / (now - self._window_time))
        self._window_step, self._window_time = step, now
        self.log_line(step, losses, learning_rate)
        return True

    def log_line(self, step: int, losses: Mapping[str, float], learning_rate: float) -> None:
        total = losses.get("Loss/total_loss", float("nan"))
        parts = " ".join(f"{_short(tag)} {value:.4f}" for tag, value in losses.items()
                         if tag != "Loss/total_loss" and tag.endswith("_loss"))
        of = f"/{self.num_steps}" if self.num_steps > 0 else ""
        eta = self.eta_seconds(step)
        eta_text = f" ETA {format_duration(eta)}" if eta is not None else ""
        rate = f" {self.images_per_second:.1f} images/s" if self.images_per_second > 0 else ""
        line = f"step {step}{of} loss {total:.4f} ({parts}) lr {learning_rate:.6g}{rate}{eta_text}"
        if self._bar is not None:
            self._bar.set_postfix(loss=f"{total:.3f}", lr=f"{learning_rate:.3g}",
                                  img_s=f"{self.images_per_second:.1f}")
            # Keep the bar intact: the log line goes to the handlers, the bar is redrawn.
            self._bar.clear()
        log.info(line)
        if self._bar is not None:
            self._bar.refresh()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
