"""The report's metrics table: every metric in its column, -1 shown as a dash."""

from __future__ import annotations

import json
import re

import pytest

from odflow.errors import OdflowError
from odflow.report import load_metrics, main


def _cells(html: str) -> list[list[str]]:
    rows = re.findall(r"<tr>(.*?)</tr>", html, re.DOTALL)
    return [re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row) for row in rows]


def test_table_has_a_column_per_metric_in_the_api_order(tmp_path):
    names = ["Precision/mAP", "Precision/mAP@.50IOU", "Precision/mAP@.75IOU",
             "Precision/mAP (small)", "Precision/mAP (medium)", "Precision/mAP (large)",
             "Recall/AR@1", "Recall/AR@10", "Recall/AR@100", "Recall/AR@100 (small)",
             "Recall/AR@100 (medium)", "Recall/AR@100 (large)"]
    values = [0.5, 0.875, 0.25, -1.0, 0.125, 0.75, 0.3, 0.4, 0.45, -1.0, 0.2, 0.6]
    path = tmp_path / "metrics.json"
    path.write_text(json.dumps({"metrics": {f"DetectionBoxes_{n}": v
                                            for n, v in zip(names, values)}}))
    out = tmp_path / "metrics.html"
    assert main(["--metrics", f"a <b>={path}", "--output", str(out)]) == 0
    header, row = _cells(out.read_text())
    assert header == [""] + [name.split("/")[1] for name in names]
    assert row[0] == "a &lt;b&gt;"
    assert row[1:] == ["0.5000", "0.8750", "0.2500", "&ndash;", "0.1250", "0.7500", "0.3000",
                       "0.4000", "0.4500", "&ndash;", "0.2000", "0.6000"]


def test_a_file_that_is_not_metrics_names_itself(tmp_path):
    path = tmp_path / "other.json"
    path.write_text("[1, 2]")
    with pytest.raises(OdflowError, match="other.json: not an odflow metrics file"):
        load_metrics(path)
