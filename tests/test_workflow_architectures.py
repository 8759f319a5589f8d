"""Every starter architecture through the real workflow: build the starter tarball, train 20
steps on tiny synthetic data and export, with ``snakemake``; then run the frozen graph.

The default architecture (ssd_mobilenet_v1) runs in tests/test_workflow_run.py; this covers
the others the model builder registers, so a newly registered feature extractor is tested
through the workflow as soon as it is added (aliases of one builder run once).  One
``snakemake -c2`` run builds them all side by side (the base run and one experiment per
further architecture, sharing one data build), as a user comparing architectures would; each
architecture is then its own test case.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from odflow.config import loads
from odflow.model import builder
from odflow.workflow import starter
from tests.support.workflow import (
    SnakemakeResult,
    planned_jobs,
    run_snakemake,
    tiny_config,
    write_config,
)

pytestmark = [pytest.mark.workflow, pytest.mark.slow]

STEPS = 20
# What the suite (and so CI, within its time budget) runs by default: one architecture of each
# family of code: MobileNet v2 (plain and SSDLite), v3 (small and large are one code path;
# the small one is quicker), Inception v2 and the FPN/weight-shared predictor. The rest
# (v3 large, PPN, ResNet-50 FPN) run with ODFLOW_ALL_ARCHITECTURES=1.
DEFAULT_SUBSET = {"ssd_mobilenet_v2", "ssdlite_mobilenet_v2", "ssd_mobilenet_v3_small",
                  "ssd_inception_v2", "ssd_mobilenet_v1_fpn"}


def _architectures() -> list[str]:
    """One architecture per distinct builder (and each variant), without the default."""
    names = _all_architectures()
    if os.environ.get("ODFLOW_ALL_ARCHITECTURES") == "1":
        return names
    return [name for name in names if name in DEFAULT_SUBSET]


def _all_architectures() -> list[str]:
    seen = {builder.FEATURE_EXTRACTORS[starter.DEFAULT_ARCHITECTURE]}
    names = []
    for name in starter.starter_architectures():
        build = builder.FEATURE_EXTRACTORS.get(name)
        if build is None or build not in seen:
            names.append(name)
            seen.add(build)
    return names


ARCHITECTURES = _architectures()
BASE = ARCHITECTURES[0]


def _model(architecture: str) -> dict:
    return {"name": f"{architecture}_starter", "starter": {"architecture": architecture}}


def _run_dir(workdir: Path, architecture: str) -> Path:
    """The base run's files are in the work dir; each experiment's in runs/<name>/."""
    return workdir if architecture == BASE else workdir / "runs" / architecture


@pytest.fixture(scope="module")
def architectures_run(tmp_path_factory: pytest.TempPathFactory) -> SnakemakeResult:
    workdir = tmp_path_factory.mktemp("architectures")
    config = tiny_config(
        model=_model(BASE),
        train={"num_steps": STEPS, "checkpoint_every_steps": STEPS},
        experiments={name: {"model": _model(name)} for name in ARCHITECTURES[1:]})
    configfile = write_config(workdir, config)
    targets = [str(_run_dir(Path(), name) / "exported_model/frozen_inference_graph.pb")
               for name in ARCHITECTURES]
    return run_snakemake(workdir, configfile, "-c2", *targets, timeout=1800)


def test_the_run_succeeds(architectures_run: SnakemakeResult) -> None:
    assert architectures_run.returncode == 0, architectures_run.describe()


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_train_and_export_through_snakemake(architectures_run: SnakemakeResult,
                                            architecture: str) -> None:
    if architectures_run.returncode != 0:
        pytest.fail("the snakemake run failed (test_the_run_succeeds shows why)")
    run = _run_dir(architectures_run.workdir, architecture)
    assert (run / "ckpt" / f"model.ckpt-{STEPS}.index").is_file(), architectures_run.describe()

    exported = run / "exported_model"
    pipeline = loads((exported / "pipeline.config").read_text())
    assert pipeline.model.ssd.feature_extractor.type == (
        loads(starter.starter_pipeline_text(depth_multiplier=0.25, image_size=64,
                                            num_classes=1, architecture=architecture)
              ).model.ssd.feature_extractor.type)
    reader = tf.train.load_checkpoint(str(exported / "model.ckpt"))
    trained = reader.get_variable_to_shape_map()
    starter_model = builder.build(pipeline.model, is_training=False)
    assert {n: v.shape.as_list() for n, v in starter_model.named_variables().items()}.items() \
        <= trained.items()

    graph = tf.Graph()
    with graph.as_default():
        graph_def = tf.compat.v1.GraphDef()
        graph_def.ParseFromString((exported / "frozen_inference_graph.pb").read_bytes())
        tf.import_graph_def(graph_def, name="")
    image = np.random.default_rng(0).integers(0, 255, (1, 80, 96, 3), dtype=np.uint8)
    names = ("detection_boxes", "detection_scores", "num_detections")
    with tf.compat.v1.Session(graph=graph) as session:
        boxes, scores, num = session.run([f"{n}:0" for n in names],
                                         feed_dict={"image_tensor:0": image})
    assert boxes.shape == (1, 100, 4) and scores.shape == (1, 100)
    assert np.isfinite(boxes).all() and np.isfinite(scores).all() and 0 <= num[0] <= 100


def test_another_architecture_under_the_same_name_rebuilds_the_model_not_the_data(
        architectures_run: SnakemakeResult) -> None:
    """The starter tarball and everything made from it are stale (a params change), the
    dataset is not."""
    if architectures_run.returncode != 0:
        pytest.fail("the snakemake run failed (test_the_run_succeeds shows why)")
    workdir = architectures_run.workdir
    config = tiny_config(model=_model(BASE),
                         train={"num_steps": STEPS, "checkpoint_every_steps": STEPS})
    config["model"]["starter"]["architecture"] = starter.DEFAULT_ARCHITECTURE
    changed = write_config(workdir, config, name="changed.yaml")
    plan = run_snakemake(workdir, changed, "-n", "exported_model/frozen_inference_graph.pb")
    assert plan.returncode == 0, plan.describe()
    jobs = planned_jobs(plan.output)
    assert {"build_starter_model", "extract_model", "train", "export"} <= set(jobs), plan.output
    assert not {"records", "label_map"} & set(jobs), plan.output
