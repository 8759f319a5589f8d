"""The workflow end to end on tiny data: a full run, incremental reruns, an interrupted
training that resumes, and the model download from a local HTTP server.

One full run (module-scoped) is shared: tests that only plan (dry runs) read its work dir;
tests that run jobs work on a copy of it, so no test depends on another's side effects.
"""

from __future__ import annotations

import hashlib
import http.server
import json
import os
import re
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tests.support.report import embedded_files
from tests.support.workflow import (
    ALL_RULES,
    REPO,
    SnakemakeResult,
    interrupt,
    latest_checkpoint_step,
    nothing_to_do,
    planned_jobs,
    run_snakemake,
    start_snakemake,
    tiny_config,
    wait_for,
    write_config,
)

pytestmark = [pytest.mark.workflow, pytest.mark.slow]

TARBALL = "downloads/ssd_mobilenet_v1_starter.tar.gz"
EXPORTED = ["frozen_inference_graph.pb", "saved_model/saved_model.pb", "model.ckpt.index",
            "model.ckpt.data-00000-of-00001", "checkpoint", "pipeline.config",
            "label_map.pbtxt"]
METRIC_KEYS = {
    "DetectionBoxes_Precision/mAP", "DetectionBoxes_Precision/mAP@.50IOU",
    "DetectionBoxes_Precision/mAP@.75IOU", "DetectionBoxes_Precision/mAP (small)",
    "DetectionBoxes_Precision/mAP (medium)", "DetectionBoxes_Precision/mAP (large)",
    "DetectionBoxes_Recall/AR@1", "DetectionBoxes_Recall/AR@10", "DetectionBoxes_Recall/AR@100",
    "DetectionBoxes_Recall/AR@100 (small)", "DetectionBoxes_Recall/AR@100 (medium)",
    "DetectionBoxes_Recall/AR@100 (large)",
}


@pytest.fixture(scope="module")
def full_run(finished_tiny_run: SnakemakeResult) -> SnakemakeResult:
    """`snakemake -c2 all` in a fresh work dir (tests/conftest.py; shared by the modules)."""
    return finished_tiny_run


@pytest.fixture()
def finished(full_run: SnakemakeResult) -> Path:
    """The finished full run's work dir (read-only for the tests: dry runs only)."""
    if full_run.returncode != 0:
        pytest.fail(f"the full run failed, so this test cannot run:\n{full_run.describe()}")
    return full_run.workdir


@pytest.fixture()
def finished_copy(finished: Path, tmp_path: Path) -> Path:
    """A copy of the finished work dir (file times and .snakemake metadata kept), to run on."""
    copy = tmp_path / "work"
    shutil.copytree(finished, copy, symlinks=True)
    return copy


def changed_config(workdir: Path, name: str, **changes) -> Path:
    return write_config(workdir, tiny_config(**changes), name=f"{name}.yaml")


def dry_run(workdir: Path, configfile: Path, *targets: str) -> SnakemakeResult:
    result = run_snakemake(workdir, configfile, "-n", *(targets or ("all",)))
    assert result.returncode == 0, result.describe()
    return result


# -- 1. the full run ------------------------------------------------------------------------


def test_full_run_builds_every_target(full_run: SnakemakeResult) -> None:
    assert full_run.returncode == 0, full_run.describe()
    work = full_run.workdir
    missing = [name for name in EXPORTED if not (work / "exported_model" / name).is_file()]
    assert not missing, f"exported_model/ lacks {missing}\n{full_run.describe()}"
    for plot in ("mAP", "AR", "loss"):
        png = work / "plots" / f"{plot}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", png
    assert (work / "ckpt" / "model.ckpt-6.index").is_file()
    assert (work / "ckpt" / "model.ckpt-6.data-00000-of-00001").is_file()
    # The zoo's own 'checkpoint' state file must not be copied into ckpt/ (training would
    # take the zoo's model.ckpt for a resumable checkpoint); ckpt/checkpoint is ours.
    state = (work / "ckpt" / "checkpoint").read_text()
    assert "model.ckpt-6" in state, state
    # The console shows training's short progress line (the log keeps the full lines).
    assert "ckpt: step 1/6, loss " in full_run.output, full_run.describe()
    assert "ckpt: step 1/6" not in full_run.log("train")

    metrics = json.loads((work / "eval" / "metrics.json").read_text())
    values = metrics.get("metrics", metrics)
    assert set(values) == METRIC_KEYS, sorted(values)
    assert all(isinstance(value, float) for value in values.values()), values

    logs = {path.stem for path in (work / "logs").glob("*.log")}
    expected_logs = {"build_starter_model", "extract_model", "fine_tune_checkpoint", "label_map",
                     "records_train", "records_val", "pipeline_config", "train",
                     "export", "metrics", "plots", "metrics_table", "data_preview"}
    assert expected_logs <= logs, sorted(expected_logs - logs)
    benchmarks = {path.stem for path in (work / "logs" / "benchmarks").glob("*.tsv")}
    assert expected_logs <= benchmarks, sorted(expected_logs - benchmarks)
    for tsv in (work / "logs" / "benchmarks").glob("*.tsv"):
        header, row = tsv.read_text().splitlines()[:2]
        assert header.startswith("s\t") and float(row.split("\t")[0]) >= 0, tsv

    planned = planned_jobs(full_run.output)
    assert set(planned) == ALL_RULES and planned["records"] == 2, planned


def test_report_holds_the_metrics_and_plots(finished: Path, tmp_path: Path) -> None:
    """`snakemake --report report.html` (the README's command) embeds the table and plots."""
    report = tmp_path / "report.html"
    result = run_snakemake(finished, finished / "tiny.yaml", "--report", str(report), "all")
    assert result.returncode == 0, result.describe()
    files = embedded_files(report.read_text())
    assert {"metrics.html", "mAP.png", "AR.png", "loss.png"} <= set(files), sorted(files)
    # odflow data preview's figures (plots/data/), under the report's "Data" category.
    preview = {"train_augmented.png", "train.png", "val.png", "box_stats.png",
               "anchor_coverage.png"}
    assert preview <= set(files), sorted(files)
    assert all(files[name][:8] == b"\x89PNG\r\n\x1a\n" for name in preview)
    assert all(files[f"{name}.png"][:8] == b"\x89PNG\r\n\x1a\n" for name in ("mAP", "AR", "loss"))
    metrics = json.loads((finished / "eval" / "metrics.json").read_text())["metrics"]
    table = files["metrics.html"].decode()
    for key, value in metrics.items():
        # Every metric of the run is in the table, 4 decimals (COCO's -1, "none", a dash).
        assert (f"{value:.4f}" if value >= 0 else "&ndash;") in table, key


def _chromium() -> str:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        if os.environ.get("ODFLOW_CI"):
            pytest.fail("chromium is not installed (.ci/run installs Debian's chromium)")
        pytest.skip("needs Debian's chromium (apt-get install chromium)")
    return browser


def _headless(browser: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu",
                           "--virtual-time-budget=5000", *args],
                          capture_output=True, text=True, timeout=120, check=True)


def test_report_renders_in_a_browser(finished: Path, tmp_path: Path) -> None:
    """A headless Chromium draws the report (not blank) and its DOM lists the metrics."""
    browser = _chromium()
    report = tmp_path / "report.html"
    result = run_snakemake(finished, finished / "tiny.yaml", "--report", str(report), "all")
    assert result.returncode == 0, result.describe()
    shot = tmp_path / "report.png"
    _headless(browser, "--window-size=1280,900", f"--screenshot={shot}", report.as_uri())
    from PIL import Image

    with Image.open(shot) as image:
        colours = image.convert("RGB").getcolors(maxcolors=1 << 16)
    assert colours is None or len(colours) > 50, "the report rendered (nearly) blank"
    dom = _headless(browser, "--dump-dom", report.as_uri()).stdout
    assert "Evaluation" in dom and "filename=metrics.html" in dom, dom[:2000]
    page = tmp_path / "metrics.html"
    page.write_bytes(embedded_files(report.read_text())["metrics.html"])
    table = _headless(browser, "--dump-dom", page.as_uri()).stdout
    assert '<table class="metrics" id="metrics">' in table
    assert table.count("<tr>") == 2, table


def test_frozen_graph_runs_with_the_exported_signature(finished: Path) -> None:
    """The frozen graph loads, has the one ``image_tensor`` input and answers with the four
    outputs in their shapes and ranges.  It does not claim detections: six training steps on
    tiny data find nothing reliably, and zero detections is a valid answer on this noise
    image (the demo test measures what the model finds)."""
    tf = pytest.importorskip("tensorflow")
    graph_def = tf.compat.v1.GraphDef()
    graph_def.ParseFromString((finished / "exported_model/frozen_inference_graph.pb").read_bytes())
    placeholders = [node.name for node in graph_def.node if node.op == "Placeholder"]
    assert placeholders == ["image_tensor"], placeholders
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.import_graph_def(graph_def, name="")
    image = np.random.default_rng(0).integers(0, 256, size=(1, 80, 120, 3), dtype=np.uint8)
    with tf.compat.v1.Session(graph=graph) as session:
        boxes, scores, classes, count = session.run(
            ["detection_boxes:0", "detection_scores:0", "detection_classes:0",
             "num_detections:0"], feed_dict={"image_tensor:0": image})
    assert boxes.shape == (1, 100, 4) and scores.shape == (1, 100)
    assert classes.shape == (1, 100) and count.shape == (1,)
    n = int(count[0])
    assert 0 <= n <= 100
    assert np.all((scores[0, :n] >= 0) & (scores[0, :n] <= 1))
    assert np.all(classes[0, :n] == 1)  # the only class of the label map
    assert np.all((boxes[0, :n] >= 0) & (boxes[0, :n] <= 1))


# -- 2. incremental runs --------------------------------------------------------------------


def test_second_run_has_nothing_to_do(finished: Path) -> None:
    result = dry_run(finished, finished / "tiny.yaml")
    assert nothing_to_do(result.output), result.describe()
    assert not planned_jobs(result.output)


def test_export_setting_reruns_export_only(finished: Path) -> None:
    configfile = changed_config(finished, "encoded", export={"input_type":
                                                             "encoded_image_string_tensor"})
    planned = planned_jobs(dry_run(finished, configfile).output)
    assert set(planned) == {"export", "all"}, planned


def test_class_names_rerun_label_map_and_what_follows(finished: Path) -> None:
    configfile = changed_config(finished, "head", classes=["head"])
    planned = planned_jobs(dry_run(finished, configfile).output)
    assert planned["records"] == 2, planned
    assert {"label_map", "pipeline_config", "train", "export", "plots"} <= set(planned)
    # Same number of classes: the starter model and its extraction stay as they are.
    assert not {"build_starter_model", "extract_model", "fine_tune_checkpoint"} & set(planned)


def test_more_steps_plan_training_and_what_follows_only(finished: Path) -> None:
    """The length lives in the pipeline config (train_config.num_steps), so it is rewritten."""
    configfile = changed_config(finished, "nine", train={"num_steps": 9})
    planned = planned_jobs(dry_run(finished, configfile).output)
    assert {"pipeline_config", "train", "export", "plots"} <= set(planned), planned
    untouched = {"build_starter_model", "extract_model", "fine_tune_checkpoint", "label_map",
                 "records"}
    assert not untouched & set(planned), planned


# -- 3. more steps, interrupted by Ctrl+C, resumed ------------------------------------------


def test_more_steps_continue_and_survive_an_interruption(finished_copy: Path) -> None:
    """Raising num_steps (6 -> 150) continues from model.ckpt-6; Ctrl+C (SIGINT to the
    process group, as a terminal sends it) during that training keeps the intermediate
    checkpoints (Snakemake does not delete them), and the next run resumes from the last."""
    work = finished_copy
    num_steps = 150
    configfile = changed_config(work, "long", train={"num_steps": num_steps,
                                                     "checkpoint_every_steps": 5})
    target = f"ckpt/model.ckpt-{num_steps}.index"
    process, output = start_snakemake(work, configfile, "-c2", target)
    train_log = work / "logs" / "train.log"

    def saved_past_step_10() -> bool:
        return process.poll() is not None or (latest_checkpoint_step(work / "ckpt") or 0) >= 11

    try:
        wait_for(saved_past_step_10, timeout=300, interval=0.2,
                 what="training to save a checkpoint past step 10")
    finally:
        if process.poll() is None:
            interrupt(process)
    first_output = output.read_text(errors="replace")
    first_log = train_log.read_text(errors="replace")
    context = f"{first_output[-3000:]}\n--- train.log\n{first_log[-3000:]}"
    assert re.search(r"resumed from \S*model\.ckpt-6 at step 6", first_log), context
    assert "fine-tuning from" not in first_log, context
    assert process.returncode != 0, f"training ended before the interruption\n{context}"
    assert "SIGINT received" in first_log, context
    assert not (work / target).exists()
    saved = latest_checkpoint_step(work / "ckpt")
    assert saved is not None and 11 <= saved < num_steps, (saved, context)
    assert (work / f"ckpt/model.ckpt-{saved}.data-00000-of-00001").is_file()

    result = run_snakemake(work, configfile, "-c2", target)
    assert result.returncode == 0, f"{context}\n{result.describe()}"
    assert set(planned_jobs(result.output)) == {"train"}, result.describe()
    log = result.log("train")
    assert re.search(rf"resumed from \S*model\.ckpt-{saved} at step {saved}", log), log[-3000:]
    assert f"done at step {num_steps}" in log, log[-3000:]
    assert (work / target).is_file()


# -- 4. the model download ------------------------------------------------------------------


class _TarballHandler(http.server.BaseHTTPRequestHandler):
    payload = b""
    requests = 0

    def do_GET(self) -> None:
        type(self).requests += 1
        if self.path != "/x.tar.gz":
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(self.payload)))
        self.end_headers()
        self.wfile.write(self.payload)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="module")
def starter_tarball(full_run: SnakemakeResult, tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """The starter tarball's bytes: the full run's, else built with scripts/model_zoo.py."""
    built = full_run.workdir / TARBALL
    if built.is_file():
        return built.read_bytes()
    import subprocess
    import sys

    out = tmp_path_factory.mktemp("starter") / "x.tar.gz"
    subprocess.run([sys.executable, str(REPO / "scripts/model_zoo.py"), "starter",
                    "--name", "ssd_mobilenet_v1_starter", "--output", str(out),
                    "--image-size", "64"], check=True, capture_output=True, timeout=300)
    return out.read_bytes()


@pytest.fixture()
def tarball_server(starter_tarball: bytes) -> Iterator[http.server.ThreadingHTTPServer]:
    _TarballHandler.payload = starter_tarball
    _TarballHandler.requests = 0
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _TarballHandler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def _download_config(workdir: Path, port: int, sha256: str) -> Path:
    return write_config(workdir, tiny_config(model={"url": f"http://127.0.0.1:{port}/x.tar.gz",
                                                    "sha256": sha256}))


def test_download_with_right_sha256(tarball_server, starter_tarball: bytes,
                                    tmp_path: Path) -> None:
    port = tarball_server.server_address[1]
    configfile = _download_config(tmp_path, port, hashlib.sha256(starter_tarball).hexdigest())
    result = run_snakemake(tmp_path, configfile, "-c2", "ckpt/model.ckpt.index")
    assert result.returncode == 0, result.describe()
    assert (tmp_path / TARBALL).read_bytes() == starter_tarball
    assert (tmp_path / "ckpt/model.ckpt.index").is_file()
    assert not (tmp_path / "ckpt/checkpoint").exists()  # the zoo's state file stays out
    assert _TarballHandler.requests == 1
    assert set(planned_jobs(result.output)) == {"download_model", "extract_model",
                                                "fine_tune_checkpoint"}

    # A verified tarball is never fetched again, even when downstream files are gone.
    (tmp_path / "ckpt/model.ckpt.index").unlink()
    again = run_snakemake(tmp_path, configfile, "-c1", "ckpt/model.ckpt.index")
    assert again.returncode == 0, again.describe()
    assert _TarballHandler.requests == 1, again.describe()


def test_download_with_wrong_sha256_fails_and_keeps_nothing(tarball_server, starter_tarball: bytes,
                                                            tmp_path: Path) -> None:
    port = tarball_server.server_address[1]
    wrong = "ab" * 32
    actual = hashlib.sha256(starter_tarball).hexdigest()
    configfile = _download_config(tmp_path, port, wrong)
    result = run_snakemake(tmp_path, configfile, "-c1", "ckpt/model.ckpt.index")
    assert result.returncode != 0, result.describe()
    log = result.log("download_model")
    assert wrong in log and actual in log, result.describe()
    downloads = tmp_path / "downloads"
    leftovers = sorted(p.name for p in downloads.iterdir()) if downloads.exists() else []
    assert leftovers == [], leftovers


def test_dry_run_with_a_url_does_not_touch_the_network(tarball_server, tmp_path: Path) -> None:
    port = tarball_server.server_address[1]
    tarball_server.shutdown()
    tarball_server.server_close()  # nothing listens on the port any more
    configfile = _download_config(tmp_path, port, "cd" * 32)
    result = run_snakemake(tmp_path, configfile, "-n", "all")
    assert result.returncode == 0, result.describe()
    assert planned_jobs(result.output)["download_model"] == 1, result.describe()
    assert _TarballHandler.requests == 0
