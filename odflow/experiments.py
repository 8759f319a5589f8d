"""Experiments: named variants of config.yaml, each a run under ``runs/<name>/``.

``config.yaml``'s ``experiments:`` maps a name to overrides of the same kinds the file itself
takes (``small: {model: {starter: {depth_multiplier: 0.5}}}``).  Each variant's settings are the
base settings with its overrides merged in, key by key, checked against the same schema as
the base (so an unknown key is the same error), and built by the same rules under the run
prefix ``runs/<name>/`` ("" is the base run).

Stages whose settings are equal are shared: the records (and label map) are made once per
distinct data settings, the model tarball once per distinct model settings; each run reads
them from the first run (base first) that has those settings.  Everything after (pipeline
config, training, evaluation, export, plots) is the run's own, unless all of a run's settings
equal an earlier run's (``run_settings``): then the run is that run's files under another
label (its summary row reads them) and nothing of its own is built.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable, Mapping
from typing import Any

from odflow.errors import OdflowError
from odflow.workflow.settings import ConfigTypeError, coerce_to_schema

NAME = re.compile(r"[A-Za-z0-9_-]+")
RUNS_DIR = "runs"
BASE = ""  # the base run's prefix
BASE_LABEL = "base"
# runs/all is the target that builds every variant; "base" labels the base run's row.
RESERVED = {"all", BASE_LABEL}


class ExperimentError(OdflowError):
    """A bad experiments: entry (its name, or a key or value of its overrides)."""


def merge(base: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with ``overrides`` merged in: nested mappings key by key, anything else
    (lists included) replaced.  Neither input is modified."""
    merged = copy.deepcopy(dict(base))
    for key, value in overrides.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def prefix_of(name: str) -> str:
    """The run prefix of experiment ``name`` (``runs/<name>/``)."""
    return f"{RUNS_DIR}/{name}/"


def label_of(prefix: str) -> str:
    """The name a run is shown under: ``base`` or the experiment's name."""
    return BASE_LABEL if prefix == BASE else prefix.removeprefix(f"{RUNS_DIR}/").rstrip("/")


def run_configs(config: Mapping[str, Any], schema: Mapping[str, Any],
                validate: Callable[[dict[str, Any]], None]) -> dict[str, dict[str, Any]]:
    """Run prefix -> that run's full settings: the base ("") then each experiment in order.

    ``config`` is the validated base config (defaults filled in).  Each variant is the base
    (without ``experiments``) with its overrides merged in, typed as ``--config`` values are
    (``coerce_to_schema``) and checked by ``validate``, which raises ValueError with the
    schema's message (rules/common.smk wraps Snakemake's validate, so the error reads as for
    config.yaml); errors name the experiment.
    """
    base = {key: value for key, value in config.items() if key != "experiments"}
    runs = {BASE: base}
    for name, overrides in (config.get("experiments") or {}).items():
        where = f"config experiments.{name}"
        if not isinstance(name, str) or not NAME.fullmatch(name):
            raise ExperimentError(
                f"config experiments: {name!r} is not a valid experiment name; use letters, "
                "digits, '_' and '-' only (it names the folder runs/<name>/)")
        if name in RESERVED:
            raise ExperimentError(
                f"{where}: the name {name!r} is reserved (runs/all builds every run, 'base' "
                "labels the base run); choose another")
        if not isinstance(overrides, Mapping):
            raise ExperimentError(
                f"{where}: expected a mapping of config.yaml sections to change, e.g. "
                f"{{train: {{num_steps: 5000}}}}, got {overrides!r}")
        if "experiments" in overrides:
            raise ExperimentError(f"{where}: an experiment cannot define experiments")
        variant = merge(base, overrides)
        try:
            coerce_to_schema(variant, dict(schema))
        except ConfigTypeError as error:
            raise ExperimentError(f"{where}: {error}") from None
        try:
            validate(variant)
        except ValueError as error:
            raise ExperimentError(f"{where}: {error}") from None
        runs[prefix_of(name)] = variant
    return runs


def data_settings(run: Mapping[str, Any]) -> str:
    """What the label map and records are made from."""
    return _key({"dataset": run["dataset"], "classes": run["classes"]})


def model_settings(run: Mapping[str, Any]) -> str:
    """What the model tarball (and what is extracted from it) is made from; a starter model
    is built for the number of classes."""
    starter = run["model"]["url"].startswith("starter:")
    return _key({"model": run["model"],
                 "num_classes": len(run["classes"]) if starter else None})


#: Top-level settings no run's own files depend on: detect.* drives one workflow-wide rule,
#: and ``experiments`` (absent from the base run, an empty default in a variant) names runs.
NOT_PER_RUN = frozenset({"detect", "experiments"})


def run_settings(run: Mapping[str, Any]) -> str:
    """Everything a run's own files (pipeline config, training, metrics, export, plots) are
    made from: two runs with equal run_settings would make identical files, so the later
    one uses the earlier one's instead of training again."""
    return _key({key: value for key, value in run.items() if key not in NOT_PER_RUN})


def _key(settings: Mapping[str, Any]) -> str:
    return json.dumps(settings, sort_keys=True)


def owners(runs: Mapping[str, Mapping[str, Any]],
           settings: Callable[[Mapping[str, Any]], str]) -> dict[str, str]:
    """Run prefix -> the prefix of the first run (base first) with the same ``settings``,
    whose copy of that stage's outputs the run uses."""
    first: dict[str, str] = {}
    return {prefix: first.setdefault(settings(run), prefix) for prefix, run in runs.items()}


def flatten(settings: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Dotted key -> leaf value (lists are leaves)."""
    flat: dict[str, Any] = {}
    for key, value in settings.items():
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def differences(base: Mapping[str, Any], run: Mapping[str, Any]) -> dict[str, Any]:
    """The dotted settings whose value in ``run`` differs from ``base`` (run's values)."""
    ours, theirs = flatten(base), flatten(run)
    return {key: theirs.get(key) for key in sorted(set(ours) | set(theirs))
            if ours.get(key) != theirs.get(key)}
