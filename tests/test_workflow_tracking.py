"""Every setting is tracked: each leaf key of schemas/config.schema.yaml, changed on a finished
run, makes `snakemake -n` plan exactly the jobs whose outputs it changes (or none, with the
reason written here), and an image edited in place plans its records again.

Finished states: the tiny full run (synthetic data, shared with test_workflow_run.py), the
same with its records used in place (source tfrecord), and records made from tiny csv, voc and
WIDER FACE folders.  The ~45 dry runs share one Python process (tests.support.dry_runs).
"""

from __future__ import annotations

import copy
import io
import json
import shutil
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from PIL import Image

from tests.support.dry_runs import dry_runs
from tests.support.workflow import (
    REPO,
    SnakemakeResult,
    nothing_to_do,
    planned_jobs,
    run_snakemake,
    tiny_config,
    write_config,
)

pytestmark = [pytest.mark.workflow, pytest.mark.slow]

SCHEMA = yaml.safe_load((REPO / "schemas/config.schema.yaml").read_text())
RECORDS = ["datasets/train.record", "datasets/val.record"]

AFTER_TRAIN = {"train", "metrics", "metrics_table", "export", "plots", "all"}
# data_preview reads the pipeline config and both splits' records.
AFTER_CONFIG = {"pipeline_config", "data_preview"} | AFTER_TRAIN
MODEL_CHAIN = {"extract_model", "fine_tune_checkpoint"} | AFTER_CONFIG


def jobs(rules: set[str] = frozenset(), records: int = 0) -> Counter[str]:
    planned = Counter({rule: 1 for rule in rules})
    if records:
        planned["records"] = records
    return planned


@dataclass(frozen=True)
class Change:
    """A new value for one key, the finished state it is tried on, and the jobs it plans."""

    value: Any
    scenario: str
    planned: Counter[str] = field(default_factory=Counter)
    why_nothing: str = ""


# One entry per leaf key of the schema (test_every_schema_leaf_is_listed checks this).
CHANGES: dict[str, Change] = {
    "model.name": Change("other_starter", "synthetic",
                         jobs(MODEL_CHAIN | {"build_starter_model"})),
    "model.url": Change("file:///nowhere/model.tar.gz", "synthetic",
                        jobs(MODEL_CHAIN | {"download_model"})),
    "model.sha256": Change("ab" * 32, "synthetic", why_nothing=(
        "a param of download_model only; this run builds its model (url starter:), and the "
        "download tests in test_workflow_run.py use it")),
    "model.layout": Change("tf1", "synthetic", why_nothing=(
        "tf1 is what auto decides for this (TF1) starter: the same file names and params; a "
        "layout that differs from the model's is planned in test_workflow_tf2_zoo.py")),
    "model.starter.depth_multiplier": Change(0.5, "synthetic",
                                             jobs(MODEL_CHAIN | {"build_starter_model"})),
    "model.starter.image_size": Change(96, "synthetic",
                                       jobs(MODEL_CHAIN | {"build_starter_model"})),
    "model.starter.seed": Change(8, "synthetic", jobs(MODEL_CHAIN | {"build_starter_model"})),
    "model.starter.architecture": Change("ssd_mobilenet_v1_fpn", "synthetic",
                                         jobs(MODEL_CHAIN | {"build_starter_model"})),
    "pipeline.template": Change("alt/pipeline.config", "synthetic", jobs(AFTER_CONFIG)),
    "pipeline.config_name": Change("other", "synthetic", jobs(AFTER_CONFIG)),
    "pipeline.fine_tune_checkpoint_type": Change("full", "synthetic", jobs(AFTER_CONFIG)),
    "pipeline.num_examples": Change(5, "synthetic", jobs(AFTER_CONFIG)),
    "pipeline.overrides": Change(["train_config.batch_size=4", "train_config.batch_size=2"],
                                 "synthetic", jobs(AFTER_CONFIG)),
    # The fitted anchors change the pipeline config; the train records become its input.
    "anchors.fit": Change(True, "synthetic", jobs(AFTER_CONFIG)),
    "classes": Change(["head"], "synthetic", jobs(AFTER_CONFIG | {"label_map"}, records=2)),
    "dataset.source": Change("synthetic", "csv", jobs(records=2)),
    "dataset.num_shards": Change(2, "synthetic", jobs(AFTER_CONFIG, records=2)),
    "dataset.skip_bad": Change(True, "csv", jobs(records=2)),
    "dataset.synthetic.train_images": Change(25, "synthetic",
                                             jobs(AFTER_TRAIN | {"data_preview"}, records=1)),
    "dataset.synthetic.val_images": Change(9, "synthetic", jobs(AFTER_CONFIG, records=1)),
    "dataset.synthetic.seed": Change(2, "synthetic", jobs(AFTER_CONFIG, records=2)),
    "dataset.wider_face.root": Change("alt/wider", "wider_face", jobs(records=2)),
    "dataset.wider_face.drop_invalid": Change(False, "wider_face", jobs(records=2)),
    "dataset.wider_face.min_size": Change(4, "wider_face", jobs(records=2)),
    "dataset.wider_face.keep_empty": Change(False, "wider_face", jobs(records=2)),
    "dataset.csv.train_csv": Change("alt/train.csv", "csv", jobs(records=1)),
    "dataset.csv.train_images": Change("alt/train_images", "csv", jobs(records=1)),
    "dataset.csv.val_csv": Change("alt/val.csv", "csv", jobs(records=1)),
    "dataset.csv.val_images": Change("alt/val_images", "csv", jobs(records=1)),
    "dataset.voc.train_annotations": Change("alt/train_xml", "voc", jobs(records=1)),
    "dataset.voc.train_images": Change("alt/train_images", "voc", jobs(records=1)),
    "dataset.voc.val_annotations": Change("alt/val_xml", "voc", jobs(records=1)),
    "dataset.voc.val_images": Change("alt/val_images", "voc", jobs(records=1)),
    "dataset.coco.train_json": Change("alt/train.json", "coco", jobs(records=1)),
    "dataset.coco.train_images": Change("alt/train_images", "coco", jobs(records=1)),
    "dataset.coco.val_json": Change("alt/val.json", "coco", jobs(records=1)),
    "dataset.coco.val_images": Change("alt/val_images", "coco", jobs(records=1)),
    "dataset.coco.skip_unknown_classes": Change(True, "coco", jobs(records=2)),
    # The yolo state is built from folders; the same folders named by a data.yaml are new
    # inputs (the yaml), so both splits are made again.
    "dataset.yolo.data": Change("data/data.yaml", "yolo", jobs(records=2)),
    "dataset.yolo.train_images": Change("alt/train/images", "yolo", jobs(records=1)),
    "dataset.yolo.val_images": Change("alt/valid/images", "yolo", jobs(records=1)),
    "dataset.yolo.skip_unknown_classes": Change(True, "yolo", jobs(records=2)),
    "dataset.tfrecord.train": Change(["alt/train.record"], "tfrecord", jobs(AFTER_CONFIG)),
    "dataset.tfrecord.val": Change(["alt/val.record"], "tfrecord", jobs(AFTER_CONFIG)),
    "train.num_steps": Change(7, "synthetic", jobs(AFTER_CONFIG)),
    "train.eval_every": Change(3, "synthetic", jobs(AFTER_TRAIN)),
    "train.checkpoint_every_steps": Change(2, "synthetic", why_nothing=(
        "when to save intermediate checkpoints: the trained model is the same")),
    "train.keep_checkpoint_max": Change(2, "synthetic", why_nothing=(
        "how many old checkpoints stay on disk: the trained model is the same")),
    "train.seed": Change(2, "synthetic", jobs(AFTER_TRAIN)),
    "train.log_every": Change(2, "synthetic", why_nothing=(
        "how often training logs progress: only logs/train.log differs")),
    "train.strategy": Change("one_device", "synthetic", why_nothing=(
        "how training is spread over devices or workers, not what it learns: a run resumes "
        "across a change (multi-worker equals one worker with as many replicas)")),
    # Each CPU replica normalises batch norm over its share of the batch: retrained.
    "train.cpu_replicas": Change(2, "synthetic", jobs(AFTER_TRAIN)),
    # The NMS order of evaluation (eval/metrics.json, written by train) and of the export.
    "postprocess.clip_before_nms": Change(True, "synthetic", jobs(AFTER_TRAIN)),
    "export.input_type": Change("encoded_image_string_tensor", "synthetic",
                                jobs({"export", "all"})),
    # The export and eval/metrics.json (and its table) change; training does not.
    "export.checkpoint": Change("best", "synthetic",
                                jobs({"export", "metrics", "metrics_table", "all"})),
    "deploy.calibration_images": Change(5, "synthetic", why_nothing=(
        'a param of the deploy rules only (TFLite/ONNX files and their metrics), which `all` does not build; tests/test_workflow_deploy.py covers them')),
    "deploy.int8_per_channel": Change(True, "synthetic", why_nothing=(
        'a param of the deploy rules only (TFLite/ONNX files and their metrics), which `all` does not build; tests/test_workflow_deploy.py covers them')),
    "deploy.use_regular_nms": Change(False, "synthetic", why_nothing=(
        'a param of the deploy rules only (TFLite/ONNX files and their metrics), which `all` does not build; tests/test_workflow_deploy.py covers them')),
    "deploy.onnx_opset": Change(13, "synthetic", why_nothing=(
        'a param of the deploy rules only (TFLite/ONNX files and their metrics), which `all` does not build; tests/test_workflow_deploy.py covers them')),
    "detect.images": Change('other/*.jpg', "synthetic", why_nothing=(
        'a param of the detect rule only, which `all` does not build')),
    "detect.model": Change('exported_model/model.onnx', "synthetic", why_nothing=(
        'a param of the detect rule only, which `all` does not build')),
    "detect.min_score": Change(0.3, "synthetic", why_nothing=(
        'a param of the detect rule only, which `all` does not build')),
}


def schema_leaves(schema: dict[str, Any], prefix: str = "") -> Iterator[str]:
    for key, sub in schema.get("properties", {}).items():
        if sub.get("type") == "object":
            yield from schema_leaves(sub, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}"


def with_key(config: dict[str, Any], dotted: str, value: Any) -> dict[str, Any]:
    changed = copy.deepcopy(config)
    *parents, leaf = dotted.split(".")
    node = changed
    for name in parents:
        node = node.setdefault(name, {})
    node[leaf] = value
    return changed


# -- tiny datasets in each source's layout ----------------------------------------------------


def jpeg(seed: int, width: int = 64, height: int = 48) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG")
    return buffer.getvalue()


VOC_XML = """<annotation><filename>{name}.jpg</filename>
  <size><width>64</width><height>48</height><depth>3</depth></size>
  <object><name>face</name><difficult>0</difficult>
    <bndbox><xmin>5</xmin><ymin>5</ymin><xmax>30</xmax><ymax>30</ymax></bndbox></object>
</annotation>
"""
WIDER_GT = "0--Parade/{split}_a.jpg\n1\n5 5 20 20 0 0 0 0 0 0 \n" \
           "0--Parade/{split}_b.jpg\n1\n10 8 16 16 0 0 0 0 0 0 \n"


def coco_json(names: list[str]) -> str:
    """A COCO file for two 64x48 images, with a Roboflow-style unused supercategory."""
    return json.dumps({
        "images": [{"id": i, "file_name": f"{n}.jpg", "width": 64, "height": 48}
                   for i, n in enumerate(names)],
        "annotations": [{"id": i, "image_id": i, "category_id": 1, "bbox": [5, 5, 25, 25],
                         "iscrowd": i} for i in range(len(names))],
        "categories": [{"id": 0, "name": "faces"}, {"id": 1, "name": "face"}]})


def make_yolo(work: Path) -> dict[str, Any]:
    """Roboflow's YOLO layout under data/ (and a copy under alt/): {train,valid}/{images,
    labels}, a data.yaml saying ../train/images; the config names the folders."""
    data = work / "data"
    for seed, split in enumerate(("train", "valid")):
        (data / split / "images").mkdir(parents=True)
        (data / split / "labels").mkdir()
        for index, name in enumerate(("a", "b")):
            (data / split / "images" / f"{name}.jpg").write_bytes(jpeg(10 * seed + index))
        (data / split / "labels" / "a.txt").write_text("0 0.3 0.4 0.2 0.3\n")
    (data / "data.yaml").write_text("train: ../train/images\nval: ../valid/images\nnc: 1\n"
                                    "names: ['face']\n")
    shutil.copytree(data, work / "alt")
    return {"train_images": "data/train/images", "val_images": "data/valid/images"}


def make_source(work: Path, source: str) -> dict[str, Any]:
    """Write two images per split in ``source``'s layout under work/data; its config section."""
    if source == "yolo":
        return make_yolo(work)
    data = work / "data"
    settings: dict[str, Any] = {}
    for seed, split in enumerate(("train", "val")):
        if source == "wider_face":
            images = data / f"WIDER_{split}" / "images" / "0--Parade"
            gt = data / "wider_face_split" / f"wider_face_{split}_bbx_gt.txt"
            gt.parent.mkdir(parents=True, exist_ok=True)
            gt.write_text(WIDER_GT.format(split=split))
            names = [f"{split}_a", f"{split}_b"]
            settings = {"root": "data"}
        else:
            images = data / f"{split}_images"
            names = ["a", "b"]
        images.mkdir(parents=True, exist_ok=True)
        for index, name in enumerate(names):
            (images / f"{name}.jpg").write_bytes(jpeg(10 * seed + index))
        if source == "csv":
            rows = "".join(f"{name}.jpg,64,48,face,5,5,30,30\n" for name in names)
            (data / f"{split}.csv").write_text(f"filename,width,height,class,xmin,ymin,xmax,"
                                               f"ymax\n{rows}")
            settings |= {f"{split}_csv": f"data/{split}.csv",
                         f"{split}_images": f"data/{split}_images"}
        elif source == "coco":
            (data / f"{split}.json").write_text(coco_json(names))
            settings |= {f"{split}_json": f"data/{split}.json",
                         f"{split}_images": f"data/{split}_images"}
        elif source == "voc":
            xml = data / f"{split}_xml"
            xml.mkdir(parents=True, exist_ok=True)
            for name in names:
                (xml / f"{name}.xml").write_text(VOC_XML.format(name=name))
            settings |= {f"{split}_annotations": f"data/{split}_xml",
                         f"{split}_images": f"data/{split}_images"}
    # The same inputs again under alt/, for the path keys (a moved dataset is another input).
    if source == "wider_face":
        shutil.copytree(data, work / "alt" / "wider")
    else:
        for split in ("train", "val"):
            shutil.copytree(data / f"{split}_images", work / "alt" / f"{split}_images")
            if source in ("csv", "coco"):
                suffix = "csv" if source == "csv" else "json"
                shutil.copy(data / f"{split}.{suffix}", work / "alt" / f"{split}.{suffix}")
            if source == "voc":
                shutil.copytree(data / f"{split}_xml", work / "alt" / f"{split}_xml")
    return settings


# -- finished states -----------------------------------------------------------------------


@dataclass
class Scenario:
    workdir: Path
    config: dict[str, Any]
    targets: list[str]


@pytest.fixture(scope="module")
def scenarios(finished_tiny_run: SnakemakeResult,
              tmp_path_factory: pytest.TempPathFactory) -> dict[str, Scenario]:
    if finished_tiny_run.returncode != 0:
        pytest.fail(f"the tiny full run failed:\n{finished_tiny_run.describe()}")
    work = tmp_path_factory.mktemp("tracking") / "synthetic"
    shutil.copytree(finished_tiny_run.workdir, work, symlinks=True)
    (work / "alt").mkdir()
    shutil.copy(work / "ssd_mobilenet_v1_starter/pipeline.config", work / "alt")
    for split in ("train", "val"):
        shutil.copy(work / f"datasets/{split}.record", work / "alt")
    found = {
        "synthetic": Scenario(work, tiny_config(), ["all"]),
        "tfrecord": Scenario(work, tiny_config(dataset={"source": "tfrecord", "tfrecord": {
            "train": ["datasets/train.record"], "val": ["datasets/val.record"]}}), ["all"]),
    }
    for source in ("csv", "voc", "wider_face", "coco", "yolo"):
        folder = tmp_path_factory.mktemp(source)
        settings = make_source(folder, source)
        config = tiny_config(dataset={"source": source, source: settings})
        built = run_snakemake(folder, write_config(folder, config), "-c2", *RECORDS)
        if built.returncode != 0:
            pytest.fail(f"building the {source} records failed:\n{built.describe()}")
        found[source] = Scenario(folder, config, RECORDS)
    return found


def plan(scenarios: dict[str, Scenario], cases: dict[str, tuple[str, dict[str, Any]]]
         ) -> dict[str, SnakemakeResult]:
    """Dry-run each case (scenario name, config) in one batch; results by case name."""
    runs = []
    for name, (scenario_name, config) in cases.items():
        scenario = scenarios[scenario_name]
        configfile = write_config(scenario.workdir / "configs", config,
                                  name=f"{name.replace('.', '-')}.yaml")
        runs.append((scenario.workdir, configfile, scenario.targets))
    return dict(zip(cases, dry_runs(runs)))


@pytest.fixture(scope="module")
def key_plans(scenarios: dict[str, Scenario]) -> dict[str, SnakemakeResult]:
    cases = {f"baseline-{name}": (name, scenario.config)
             for name, scenario in scenarios.items()}
    for key, change in CHANGES.items():
        cases[key] = (change.scenario, with_key(scenarios[change.scenario].config, key,
                                                change.value))
    return plan(scenarios, cases)


# -- the tests -----------------------------------------------------------------------------


def test_every_schema_leaf_is_listed() -> None:
    assert sorted(schema_leaves(SCHEMA)) == sorted(CHANGES)
    for key, change in CHANGES.items():
        assert bool(change.planned) != bool(change.why_nothing), key


@pytest.mark.parametrize("scenario", ["synthetic", "tfrecord", "csv", "voc", "wider_face",
                                      "coco", "yolo"])
def test_each_finished_state_has_nothing_to_do(key_plans: dict[str, SnakemakeResult],
                                               scenario: str) -> None:
    result = key_plans[f"baseline-{scenario}"]
    assert result.returncode == 0 and nothing_to_do(result.output), result.describe()


@pytest.mark.parametrize("key", sorted(CHANGES))
def test_changing_a_key_plans_exactly_what_it_changes(key_plans: dict[str, SnakemakeResult],
                                                      key: str) -> None:
    result = key_plans[key]
    change = CHANGES[key]
    assert result.returncode == 0, result.describe()
    assert planned_jobs(result.output) == change.planned, (change, result.describe())
    if not change.planned:
        assert nothing_to_do(result.output), result.describe()


def test_a_changed_setting_is_the_reason_given(key_plans: dict[str, SnakemakeResult]) -> None:
    """What used to be ignored (settings reaching the records rule through an input function)
    now shows up as the reason for the rerun."""
    for key in ("dataset.synthetic.seed", "dataset.skip_bad", "dataset.wider_face.min_size"):
        assert "Params have changed since last execution" in key_plans[key].output, key


@pytest.mark.parametrize(("source", "edit", "split"), [
    ("csv", "data/val_images/a.jpg", "val"),
    ("voc", "data/train_xml/b.xml", "train"),
    ("wider_face", "data/WIDER_val/images/0--Parade/val_b.jpg", "val"),
], ids=["csv-image", "voc-annotation", "wider-image-in-an-event-folder"])
def test_a_file_edited_in_place_plans_its_records(scenarios: dict[str, Scenario],
                                                  key_plans: dict[str, SnakemakeResult],
                                                  source: str, edit: str, split: str) -> None:
    """The folder's own mtime does not change when a file inside is rewritten; the records
    rule's folder digest does."""
    del key_plans  # the key dry runs saw the files as built
    scenario = scenarios[source]
    path = scenario.workdir / edit
    folder_mtime = path.parent.stat().st_mtime_ns
    if path.suffix == ".jpg":
        path.write_bytes(jpeg(99))
    else:
        path.write_text(path.read_text().replace("<xmax>30</xmax>", "<xmax>31</xmax>"))
    assert path.parent.stat().st_mtime_ns == folder_mtime
    [result] = dry_runs([(scenario.workdir, scenario.workdir / "tiny.yaml",
                          scenario.targets)])
    assert result.returncode == 0, result.describe()
    assert planned_jobs(result.output) == Counter({"records": 1}), result.describe()
    assert f"wildcards: run=, split={split}" in result.output, result.describe()
    assert "Params have changed since last execution" in result.output, result.describe()


@pytest.mark.parametrize(("source", "edit", "split"), [
    ("coco", "data/val.json", "val"),
    ("yolo", "data/train/labels/a.txt", "train"),
], ids=["coco-json", "yolo-label-file"])
def test_an_annotation_edited_in_place_plans_its_records(scenarios: dict[str, Scenario],
                                                         key_plans: dict[str, SnakemakeResult],
                                                         source: str, edit: str, split: str
                                                         ) -> None:
    """A COCO JSON is an input file (its mtime); a YOLO label file is in a watched folder."""
    del key_plans  # the key dry runs saw the files as built
    scenario = scenarios[source]
    path = scenario.workdir / edit
    text = path.read_text()
    path.write_text(text.replace("25", "26") if source == "coco" else text.replace("0.2", "0.25"))
    [result] = dry_runs([(scenario.workdir, scenario.workdir / "tiny.yaml",
                          scenario.targets)])
    assert result.returncode == 0, result.describe()
    assert planned_jobs(result.output) == Counter({"records": 1}), result.describe()
    assert f"wildcards: run=, split={split}" in result.output, result.describe()


def test_coco_and_yolo_records_hold_the_sources_boxes(scenarios: dict[str, Scenario]) -> None:
    """The tiny workflow runs from a COCO file (Roboflow's unused supercategory ignored,
    iscrowd kept) and from YOLO folders (b.jpg has no label file: a negative) to records."""
    from odflow.data.records import iter_examples

    coco = list(iter_examples(str(scenarios["coco"].workdir / "datasets/val.record")))
    assert [e.source_id for e in coco] == ["0", "1"]
    np.testing.assert_allclose(coco[0].boxes, [[5 / 48, 5 / 64, 30 / 48, 30 / 64]], rtol=1e-6)
    assert [e.is_crowd.tolist() for e in coco] == [[0], [1]]
    yolo = list(iter_examples(str(scenarios["yolo"].workdir / "datasets/train.record")))
    assert [(e.filename, e.num_boxes) for e in yolo] == [("a.jpg", 1), ("b.jpg", 0)]
    np.testing.assert_allclose(yolo[0].boxes, [[0.25, 0.2, 0.55, 0.4]], rtol=1e-6)
