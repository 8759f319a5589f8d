"""odflow.experiments and odflow.runs_summary: variant settings, sharing, the summary table.

Expected values are worked by hand from the inputs written here.
"""

from __future__ import annotations

from pathlib import Path

import jsonschema
import pytest
import yaml

from odflow import experiments
from odflow.experiments import ExperimentError, run_configs
from odflow.runs_summary import (
    RunRow,
    benchmark_seconds,
    csv_text,
    images_per_second,
    markdown_text,
    read_run,
    sort_rows,
)

REPO = Path(__file__).resolve().parents[1]
SCHEMA = yaml.safe_load((REPO / "schemas/config.schema.yaml").read_text())


def validate(settings: dict) -> None:
    """The schema check, raising ValueError as rules/common.smk's wrapper of Snakemake's."""
    try:
        jsonschema.Draft202012Validator(SCHEMA).validate(settings)
    except jsonschema.ValidationError as error:
        raise ValueError(error.message) from None


BASE = {
    "model": {"name": "m", "url": "starter:", "sha256": "",
              "starter": {"depth_multiplier": 0.25, "image_size": 64, "seed": 7,
                          "architecture": "ssd_mobilenet_v1"}},
    "pipeline": {"template": "", "config_name": "c", "fine_tune_checkpoint_type": "detection",
                 "num_examples": 0, "overrides": ["train_config.batch_size=4"]},
    "classes": ["face"],
    "dataset": {"source": "synthetic", "num_shards": 1, "skip_bad": False,
                "synthetic": {"train_images": 24, "val_images": 8, "seed": 1}},
    "train": {"num_steps": 6, "eval_every": 0, "checkpoint_every_steps": 3,
              "keep_checkpoint_max": 5, "seed": 1, "log_every": 1},
}


def runs(**variants: dict) -> dict[str, dict]:
    return run_configs({**BASE, "experiments": variants}, SCHEMA, validate)


def test_variants_merge_over_the_base_key_by_key() -> None:
    found = runs(small={"model": {"starter": {"depth_multiplier": 0.5}}},
                 lr={"pipeline": {"overrides": ["a=1"]}})
    assert list(found) == ["", "runs/small/", "runs/lr/"]
    assert "experiments" not in found[""]
    small = found["runs/small/"]["model"]
    assert small["starter"] == {**BASE["model"]["starter"], "depth_multiplier": 0.5}
    assert small["url"] == "starter:"
    assert found["runs/lr/"]["pipeline"]["overrides"] == ["a=1"]  # lists are replaced
    assert found["runs/lr/"]["pipeline"]["config_name"] == "c"


def test_command_line_strings_are_typed_as_for_the_base() -> None:
    found = runs(more={"train": {"num_steps": "5000"}})
    assert found["runs/more/"]["train"]["num_steps"] == 5000


@pytest.mark.parametrize("name", ["a b", "x/y", "", "é"])
def test_bad_names_are_clear_errors(name: str) -> None:
    with pytest.raises(ExperimentError, match="letters, digits, '_' and '-'"):
        runs(**{name: {}})


@pytest.mark.parametrize("name", ["all", "base"])
def test_reserved_names(name: str) -> None:
    with pytest.raises(ExperimentError, match="reserved"):
        runs(**{name: {}})


def test_unknown_key_names_the_experiment_and_the_key() -> None:
    with pytest.raises(ExperimentError, match=r"experiments\.small.*'depth'"):
        runs(small={"model": {"starter": {"depth": 0.5}}})


def test_bad_value_names_the_experiment_and_the_key() -> None:
    with pytest.raises(ExperimentError, match=r"experiments\.more.*train\.num_steps.*'lots'"):
        runs(more={"train": {"num_steps": "lots"}})


def test_overrides_must_be_a_mapping() -> None:
    with pytest.raises(ExperimentError, match="expected a mapping"):
        runs(odd=["train"])


def test_equal_settings_share_the_first_runs_stages() -> None:
    found = runs(lr={"pipeline": {"overrides": ["a=1"]}},
                 small={"model": {"starter": {"depth_multiplier": 0.5}}},
                 small2={"model": {"starter": {"depth_multiplier": 0.5}}, "train": {"seed": 2}},
                 heads={"classes": ["head"]})
    data = experiments.owners(found, experiments.data_settings)
    model = experiments.owners(found, experiments.model_settings)
    assert data == {"": "", "runs/lr/": "", "runs/small/": "", "runs/small2/": "",
                    "runs/heads/": "runs/heads/"}
    # one class either way: the starter model (built for the class count) is shared
    assert model == {"": "", "runs/lr/": "", "runs/small/": "runs/small/",
                     "runs/small2/": "runs/small/", "runs/heads/": ""}


def test_differences_are_dotted_keys_with_the_runs_values() -> None:
    found = runs(x={"train": {"num_steps": 9}, "classes": ["a", "b"]})
    assert experiments.differences(found[""], found["runs/x/"]) == {
        "classes": ["a", "b"], "train.num_steps": 9}
    assert experiments.label_of("") == "base" and experiments.label_of("runs/x/") == "x"


def test_images_per_second_skips_evaluation_pauses() -> None:
    # steps 1->2 in 0.5 s, 2->3 in 9.5 s (an evaluation), 3->4 in 0.5 s: median 2 steps/s.
    points = [[1, 0.9, 10.0], [2, 0.8, 10.5], [3, 0.7, 20.0], [4, 0.6, 20.5]]
    assert images_per_second({"Loss/total_loss": points}, batch_size=4) == pytest.approx(8.0)
    assert images_per_second({"Loss/total_loss": points[:1]}, batch_size=4) is None


def test_benchmark_seconds(tmp_path: Path) -> None:
    tsv = tmp_path / "train.tsv"
    tsv.write_text("s\th:m:s\tmax_rss\n31.25\t0:00:31\t900\n")
    assert benchmark_seconds(tsv) == 31.25
    tsv.write_text("garbage")
    with pytest.raises(Exception, match="not a Snakemake benchmark file"):
        benchmark_seconds(tsv)


def test_rows_sorted_by_map_in_the_csv() -> None:
    def row(label: str, value: float) -> RunRow:
        return RunRow(label, {"DetectionBoxes_Precision/mAP": value}, 6, 1.0, None, 10,
                      {"train.seed": 2} if label != "base" else {})

    lines = csv_text(sort_rows([row("base", 0.2), row("a", 0.5), row("b", 0.1)])).splitlines()
    assert lines[0].startswith("run,DetectionBoxes_Precision/mAP,")
    assert [line.split(",")[0] for line in lines[1:]] == ["a", "base", "b"]
    assert lines[1].endswith(",train.seed=2")


def test_a_row_says_which_step_was_exported(tmp_path: Path) -> None:
    """eval/metrics.json of export.checkpoint best (odflow.train.best.choose_metrics): the
    row shows the metrics of step 4, trained to 8, and says so."""
    import json

    metrics = tmp_path / "metrics.json"
    metrics.write_text(json.dumps({
        "metrics": {"DetectionBoxes_Precision/mAP": 0.5}, "global_step": 4,
        "exported": {"checkpoint": "best", "global_step": 4, "last_step": 8, "best_step": 4,
                     "best_mAP": 0.5}}))
    history = tmp_path / "history.json"
    history.write_text(json.dumps({"train": {}, "eval": {}}))
    benchmark = tmp_path / "train.tsv"
    benchmark.write_text("s\th:m:s\n3.0\t0:00:03\n")
    model = tmp_path / "frozen_inference_graph.pb"
    model.write_bytes(b"x" * 7)
    row = read_run("base", str(metrics), str(history), str(benchmark), str(model), 2, {})
    assert (row.steps, row.exported) == (8, "step 4 (best)")
    assert ",8,step 4 (best),3.0," in csv_text([row]).splitlines()[1]
    assert "| 8 | step 4 (best) |" in markdown_text([row])


def test_the_readmes_experiments_are_valid_over_the_shipped_config() -> None:
    readme = (REPO / "README.md").read_text()
    block = readme.split("## Experiments", 1)[1].split("```yaml\n", 1)[1].split("```", 1)[0]
    shipped = yaml.safe_load((REPO / "config.yaml").read_text())
    found = run_configs({**shipped, **yaml.safe_load(block)}, SCHEMA, validate)
    assert sorted(found) == ["", "runs/lr_high/", "runs/more_steps/", "runs/small/"]
    data = experiments.owners(found, experiments.data_settings)
    model = experiments.owners(found, experiments.model_settings)
    # as the README says: lr_high and more_steps use the base's records and tarball
    assert data == dict.fromkeys(found, "")
    assert model == {"": "", "runs/lr_high/": "", "runs/more_steps/": "",
                     "runs/small/": "runs/small/"}
