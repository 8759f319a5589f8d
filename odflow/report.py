"""Tables for Snakemake's HTML report (``snakemake --report report.html``).

Snakemake embeds each file an output marks with ``report(...)``; an HTML file shows as a page
of its own.  The twelve COCO numbers live in JSON files, which the report would show as raw
text, so this module renders them as one HTML table: a row per evaluated thing (the trained
checkpoint, an exported file, an experiment run), a column per metric.
"""

from __future__ import annotations

import argparse
import html
import json
from collections.abc import Mapping, Sequence
from pathlib import Path

from odflow.errors import OdflowError
from odflow.evaluation.coco import METRIC_KEYS
from odflow.utils.atomic import atomic_write_text
from odflow.utils.cli import run_cli

# Column headers: the metric names without the TF OD API's "DetectionBoxes_" prefix.
_HEADERS = {key: key.split("/", 1)[1] for key in METRIC_KEYS}

_STYLE = """
table.metrics { border-collapse: collapse; font-family: sans-serif; font-size: 14px; }
table.metrics th, table.metrics td { border: 1px solid #bbb; padding: 4px 8px; }
table.metrics td.value { text-align: right; font-variant-numeric: tabular-nums; }
table.metrics th { background: #eee; }
"""


def load_metrics(path: str | Path) -> dict[str, float]:
    """The ``metrics`` mapping of an odflow metrics JSON file (``eval/metrics.json``)."""
    try:
        payload = json.loads(Path(path).read_text())
        metrics = payload["metrics"]
    except FileNotFoundError:
        raise OdflowError(f"{path}: no such metrics file") from None
    except (json.JSONDecodeError, KeyError, TypeError) as error:
        raise OdflowError(f"{path}: not an odflow metrics file ({error}); rebuild it with "
                          "the evaluate rule") from None
    return {key: float(value) for key, value in metrics.items()}


def _cell(value: float | None) -> str:
    # COCO reports -1 for an area range with no ground truth: no number to show.
    if value is None or value < 0:
        return '<td class="value">&ndash;</td>'
    return f'<td class="value">{value:.4f}</td>'


def metrics_table_html(rows: Mapping[str, Mapping[str, float]], title: str) -> str:
    """A self-contained HTML page with one row per entry of ``rows`` (label -> metrics)."""
    header = "".join(f"<th>{html.escape(_HEADERS[key])}</th>" for key in METRIC_KEYS)
    body = "\n".join(
        f"<tr><th>{html.escape(label)}</th>"
        + "".join(_cell(metrics.get(key)) for key in METRIC_KEYS) + "</tr>"
        for label, metrics in rows.items())
    return (f"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{html.escape(title)}"
            f"</title><style>{_STYLE}</style></head><body>\n<h2>{html.escape(title)}</h2>\n"
            f"<table class=\"metrics\" id=\"metrics\">\n<tr><th></th>{header}</tr>\n{body}\n"
            "</table>\n</body></html>\n")


def _labelled_path(text: str) -> tuple[str, str]:
    label, sep, path = text.partition("=")
    if not sep or not label or not path:
        raise argparse.ArgumentTypeError(f"expected LABEL=PATH, got {text!r}")
    return label, path


def run(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Render odflow metrics JSON files as one HTML table for the report.")
    parser.add_argument("--metrics", type=_labelled_path, nargs="+", required=True,
                        metavar="LABEL=PATH", help="a row label and its metrics JSON file")
    parser.add_argument("--title", default="COCO box metrics")
    parser.add_argument("--output", required=True, help="the HTML file to write")
    args = parser.parse_args(argv)
    rows = {label: load_metrics(path) for label, path in args.metrics}
    atomic_write_text(args.output, metrics_table_html(rows, args.title))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run_cli(run, argv)
