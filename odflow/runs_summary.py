"""The experiments' comparison: ``runs/summary.csv``, ``runs/summary.md``, a report page and
``plots/runs_mAP.png``.

One row per run (the base and each ``runs/<name>/``): the twelve COCO metrics of its exported
checkpoint (the final or the best one, ``export.checkpoint``), the steps trained, which step
was exported, the train job's time (Snakemake's benchmark of the train rule),
training images/s, the frozen graph's size and the settings that differ from the base; rows
sorted by mAP, best first.  Everything is read from files the workflow declares.
"""

from __future__ import annotations

import argparse
import csv
import html
import io
import itertools
import json
import os
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from odflow import history as history_file
from odflow.errors import OdflowError
from odflow.evaluation.coco import METRIC_KEYS
from odflow.report import load_metrics, metrics_table_html
from odflow.utils.atomic import atomic_output, atomic_write_text
from odflow.utils.cli import run_cli, setup_logging

MAP = METRIC_KEYS[0]
LOSS_TAG = "Loss/total_loss"


@dataclass
class RunRow:
    """What the summary shows of one run."""

    label: str
    metrics: dict[str, float]
    steps: int
    train_seconds: float
    images_per_second: float | None
    model_bytes: int
    differences: dict[str, Any] = field(default_factory=dict)
    map_curve: list[tuple[int, float]] = field(default_factory=list)
    exported: str = ""  # "step 400 (best)": the checkpoint the export holds (export.checkpoint)


def benchmark_seconds(path: str | os.PathLike) -> float:
    """Wall-clock seconds of a job from its Snakemake benchmark TSV (the "s" column)."""
    try:
        reader = csv.DictReader(io.StringIO(Path(path).read_text()), delimiter="\t")
        return float(next(reader)["s"])
    except (OSError, StopIteration, KeyError, ValueError) as error:
        raise OdflowError(f"{path}: not a Snakemake benchmark file ({error}); rerun the "
                          "train rule") from None


def images_per_second(train_scalars: Mapping[str, Sequence[Sequence[float]]],
                      batch_size: int) -> float | None:
    """Training throughput: ``batch_size`` x the median steps/s between consecutive logged
    losses (the median skips the pauses for evaluation and checkpoints). None with fewer
    than two logged steps."""
    points = train_scalars.get(LOSS_TAG, [])
    rates = [(b[0] - a[0]) / (b[2] - a[2]) for a, b in itertools.pairwise(points)
             if b[0] > a[0] and b[2] > a[2]]
    return batch_size * statistics.median(rates) if rates else None


def read_run(label: str, metrics: str, history: str, benchmark: str, model: str,
             batch_size: int, differences: Mapping[str, Any]) -> RunRow:
    """One run's row from its declared files."""
    payload = json.loads(Path(metrics).read_text())
    loaded = history_file.load(history)
    exported = payload.get("exported") or {}  # eval/metrics.json of odflow.train.best
    step = int(payload.get("global_step", 0))
    return RunRow(
        label=label,
        metrics=load_metrics(metrics),
        steps=int(exported.get("last_step", step)),
        exported=f"step {step} ({exported.get('checkpoint', 'last')})",
        train_seconds=benchmark_seconds(benchmark),
        images_per_second=images_per_second(loaded["train"], batch_size),
        model_bytes=Path(model).stat().st_size,
        differences=dict(differences),
        map_curve=history_file.series(loaded, "eval").get(MAP, []),
    )


def sort_rows(rows: Sequence[RunRow]) -> list[RunRow]:
    """Best mAP first (ties keep the given order)."""
    return sorted(rows, key=lambda row: -row.metrics.get(MAP, float("-inf")))


def _differences_text(row: RunRow) -> str:
    return "; ".join(f"{key}={json.dumps(value)}" for key, value in row.differences.items())


def _fixed(value: float | None, digits: int) -> str:
    return "" if value is None else f"{value:.{digits}f}"


COLUMNS = ["run", *METRIC_KEYS, "steps", "exported", "train_seconds", "images_per_second",
           "model_bytes", "differences"]


def csv_text(rows: Sequence[RunRow]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COLUMNS)
    for row in rows:
        writer.writerow([row.label, *(f"{row.metrics.get(key, -1.0):.6f}" for key in METRIC_KEYS),
                         row.steps, row.exported, f"{row.train_seconds:.1f}",
                         _fixed(row.images_per_second, 2), row.model_bytes,
                         _differences_text(row)])
    return buffer.getvalue()


def _metric(value: float) -> str:
    return "–" if value < 0 else f"{value:.4f}"


def markdown_text(rows: Sequence[RunRow]) -> str:
    header = ["run", *(key.split("/", 1)[1] for key in METRIC_KEYS), "steps", "exported",
              "train time (s)", "images/s", "model (MB)", "differs from base"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        # COCO's -1 (no ground truth of that size) shows as a dash, as in the report
        cells = [row.label, *(_metric(row.metrics.get(key, -1.0)) for key in METRIC_KEYS),
                 str(row.steps), row.exported, f"{row.train_seconds:.1f}",
                 _fixed(row.images_per_second, 1),
                 f"{row.model_bytes / 1e6:.2f}", _differences_text(row).replace("|", "\\|")]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def html_text(rows: Sequence[RunRow]) -> str:
    """The report page: the metrics table (odflow.report) and a table of the rest."""
    page = metrics_table_html({row.label: row.metrics for row in rows},
                              "Experiments: COCO box metrics by run (best mAP first)")
    body = "\n".join(
        f"<tr><th>{html.escape(row.label)}</th><td class=\"value\">{row.steps}</td>"
        f"<td>{html.escape(row.exported)}</td>"
        f"<td class=\"value\">{row.train_seconds:.1f}</td>"
        f"<td class=\"value\">{_fixed(row.images_per_second, 1)}</td>"
        f"<td class=\"value\">{row.model_bytes / 1e6:.2f}</td>"
        f"<td>{html.escape(_differences_text(row))}</td></tr>" for row in rows)
    extra = ("<h2>Runs</h2>\n<table class=\"metrics\" id=\"runs\">\n<tr><th></th><th>steps</th>"
             "<th>exported</th><th>train time (s)</th><th>images/s</th><th>model (MB)</th>"
             f"<th>differs from base</th></tr>\n{body}\n</table>\n")
    return page.replace("</body>", extra + "</body>")


def plot_map_curves(rows: Sequence[RunRow], path: str | os.PathLike) -> None:
    """Every run's mAP over steps on one chart."""
    figure = Figure(figsize=(10, 6), dpi=100, layout="constrained")
    axes = figure.subplots()
    axes.set_title("COCO mAP by run")
    axes.set_xlabel("step")
    axes.set_ylabel("mAP")
    axes.grid(True, color="0.9")
    for row in rows:
        if row.map_curve:
            steps, values = zip(*row.map_curve)
            axes.plot(steps, values, marker="o", markersize=4, linewidth=1.5, label=row.label)
    if any(row.map_curve for row in rows):
        axes.legend(loc="best")
    with atomic_output(path) as tmp:
        figure.savefig(tmp, format="png")


def _batch_size(pipeline_config: str) -> int:
    from odflow.config import loader

    return int(loader.load(pipeline_config).train_config.batch_size)


def run(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Compare the runs of an experiment: summary CSV, Markdown, HTML and an "
                    "mAP chart, one row per run, best mAP first.")
    parser.add_argument("--runs", required=True,
                        help="JSON: a list of {label, metrics, history, benchmark, model, "
                             "pipeline_config, differences}, one per run")
    parser.add_argument("--csv", required=True)
    parser.add_argument("--markdown", required=True)
    parser.add_argument("--html", required=True)
    parser.add_argument("--plot", required=True)
    parser.add_argument("--log_file", default=None)
    args = parser.parse_args(argv)
    setup_logging(args.log_file)
    runs = json.loads(args.runs)
    rows = sort_rows([
        read_run(run["label"], run["metrics"], run["history"], run["benchmark"], run["model"],
                 _batch_size(run["pipeline_config"]), run["differences"]) for run in runs])
    atomic_write_text(args.csv, csv_text(rows))
    atomic_write_text(args.markdown, markdown_text(rows))
    atomic_write_text(args.html, html_text(rows))
    plot_map_curves(rows, args.plot)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run_cli(run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
