"""What the incremental-training safeguards cost, in one process.

1. ``BatchSource`` (batches fetched on a helper thread so signals are handled while waiting for
   data) against plain ``next(iterator)``: the extra time per batch, and that time relative to
   the tutorial model's training step (0.88 s for batch 8 on this VM, benchmarks/train_pipeline.md).
2. The fingerprint's record digest: sha256 read in chunks, first run against a rerun that finds
   the digest cached by (path, size, mtime).

    python benchmarks/train_housekeeping.py [--megabytes 512] [--output benchmarks/train_housekeeping.md]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from odflow.train import fingerprint
from odflow.train.batches import BatchSource

TUTORIAL_STEP_SECONDS = 8 / 9.09  # bare step, depth 1.0, batch 8 (train_pipeline.md)


def per_item(make_next, count: int) -> float:
    started = time.perf_counter()
    for _ in range(count):
        make_next()
    return (time.perf_counter() - started) / count


def batch_source_overhead(count: int, blocks: int) -> tuple[float, float]:
    plain, threaded = [], []
    for _ in range(blocks):  # alternate so machine load hits both alike
        iterator = iter(range(count))
        plain.append(per_item(lambda it=iterator: next(it), count))
        source = BatchSource(iter(range(count + 1)), ["-"], lambda: False)
        threaded.append(per_item(source.next_batch, count))
    return statistics.median(plain), statistics.median(threaded)


def digest_times(megabytes: int) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "big.record"
        block = os.urandom(1 << 20)
        with open(path, "wb") as handle:
            handle.writelines(block for _ in range(megabytes))
        started = time.perf_counter()
        entry = fingerprint.file_digest(path)
        first = time.perf_counter() - started
        cache = {(entry["path"], entry["size"], entry["mtime_ns"]): entry["sha256"]}
        started = time.perf_counter()
        fingerprint.file_digest(path, cache)
        cached = time.perf_counter() - started
    return first, cached


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megabytes", type=int, default=512)
    parser.add_argument("--batches", type=int, default=5000)
    parser.add_argument("--blocks", type=int, default=5)
    parser.add_argument("--output", default=None)
    args = parser.parse_args()

    plain, threaded = batch_source_overhead(args.batches, args.blocks)
    extra = threaded - plain
    first, cached = digest_times(args.megabytes)
    lines = [
        "# Incremental-training safeguards: cost",
        "",
        f"`python benchmarks/train_housekeeping.py --megabytes {args.megabytes}`; "
        f"{platform.machine()}, Python {platform.python_version()}, {os.cpu_count()} CPU "
        "cores shared with other jobs.",
        "",
        "| what | baseline | with the safeguard | cost |",
        "|---|---|---|---|",
        f"| one batch: `next(iterator)` vs `BatchSource.next_batch()` (median of "
        f"{args.blocks} blocks of {args.batches}) | {plain * 1e6:.1f} us | "
        f"{threaded * 1e6:.1f} us | +{extra * 1e6:.1f} us per step = "
        f"{extra / TUTORIAL_STEP_SECONDS:.1e} of the tutorial model's step |",
        f"| digest of a {args.megabytes} MB record file: first run vs cached rerun | "
        f"{first:.2f} s ({args.megabytes / first:.0f} MB/s) | {cached * 1e3:.2f} ms | "
        f"rerun {first / max(cached, 1e-9):.0f}x faster |",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    if args.output:
        Path(args.output).write_text(text)


if __name__ == "__main__":
    main()
