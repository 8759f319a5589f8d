"""The zoo fixtures (tests/fixtures/reference/model_zoo/<folder>): pipeline configs and the
checkpoint variable lists (``variables.txt``: name, shape, dtype; optimizer slots and EMA
copies already left out by the reference, see its header)."""

from __future__ import annotations

import ast
from pathlib import Path

from google.protobuf import text_format

from odflow.protos import pipeline_pb2

ZOO = Path(__file__).parent.parent / "fixtures" / "reference" / "model_zoo"


def pipeline(folder: str, *overrides: str) -> pipeline_pb2.TrainEvalPipelineConfig:
    """The zoo's pipeline.config (retired fields removed as odflow.config does) with text
    overrides merged into ``model``."""
    from odflow import config as odflow_config
    loaded = odflow_config.load(ZOO / folder / "pipeline.config")
    for text in overrides:
        text_format.Merge(text, loaded.model)
    return loaded


def variables(folder: str) -> dict[str, tuple[list[int], str]]:
    """``{name: (shape, dtype)}`` from variables.txt."""
    return read_listing(ZOO / folder / "variables.txt")


def excluded(folder: str) -> dict[str, tuple[list[int], str]]:
    """The optimizer slots and EMA copies of the index (variables_excluded.txt), if listed."""
    path = ZOO / folder / "variables_excluded.txt"
    return read_listing(path) if path.exists() else {}


def read_listing(path: Path) -> dict[str, tuple[list[int], str]]:
    listed = {}
    for line in path.read_text().splitlines():
        if line.startswith("#") or not line.strip():
            continue
        name, shape, dtype = line.split("\t")
        listed[name] = (ast.literal_eval(shape), dtype)
    return listed
