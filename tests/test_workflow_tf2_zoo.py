"""The TF2 Detection Model Zoo in the workflow: its tarball layout, its presets, its configs.

A TF2 zoo tarball holds ``<folder>/pipeline.config``, ``<folder>/checkpoint/{checkpoint,
ckpt-0.index, ckpt-0.data-00000-of-00001}`` and ``<folder>/saved_model/`` (the layout of
``../shared/reference/tf2_zoo/README.md``).  The tarballs here are made by hand: the shipped
config of ``tests/fixtures/tf2_zoo/configs/`` and a small object-based checkpoint written by
``tf.train.CheckpointManager(tf.train.Checkpoint(model=...))``, saved as the TF2 exporter
saves it (``checkpoint_number=0``).  The expected presets come from the zoo's own table
(``tests/fixtures/tf2_zoo/zoo_table.md``).
"""

from __future__ import annotations

import io
import logging
import os
import re
import tarfile
from pathlib import Path

import numpy as np
import pytest
import yaml
from snakemake.utils import validate

from odflow import config as config_lib
from odflow.config.patch import patch_config
from odflow.errors import OdflowError
from odflow.workflow.layout import TF1, TF2, resolve_layout
from odflow.workflow.tarball import copy_checkpoint, extract_model
from tests.support.dry_runs import dry_runs
from tests.support.workflow import REPO, run_snakemake, tiny_config, write_config

FIXTURES = Path(__file__).parent / "fixtures" / "tf2_zoo"
ZOO_TABLE = FIXTURES / "zoo_table.md"
MOBILENET_CONFIG = FIXTURES / "configs" / "ssd_mobilenet_v2_320x320_coco17_tpu-8.config"
EFFICIENTDET_CONFIG = FIXTURES / "configs" / "ssd_efficientdet_d0_512x512_coco17_tpu-8.config"
SCHEMA = REPO / "schemas" / "config.schema.yaml"
TF2_URL = "http://download.tensorflow.org/models/object_detection/tf2/20200711/{}.tar.gz"
TF1_URL = "http://download.tensorflow.org/models/object_detection/{}.tar.gz"
CHECKPOINT_MEMBERS = ["checkpoint/ckpt-0.index", "checkpoint/ckpt-0.data-00000-of-00001"]


def zoo_rows() -> list[dict[str, str]]:
    """The 18 rows of the zoo's table: zoo name, config, tarball URL (and its folder)."""
    rows = []
    for line in ZOO_TABLE.read_text().splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) >= 3 and cells[2].startswith("http://"):
            folder = cells[2].rsplit("/", 1)[1].removesuffix(".tar.gz")
            rows.append({"zoo_name": cells[0], "config": cells[1].strip("`"), "url": cells[2],
                         "folder": folder})
    return rows


ROWS = zoo_rows()


# -- the layout ---------------------------------------------------------------------------------


def test_the_zoo_table_has_the_18_models() -> None:
    assert len(ROWS) == 18
    assert len({row["folder"] for row in ROWS}) == 18


@pytest.mark.parametrize("setting, url, architecture, want", [
    ("auto", TF2_URL.format("ssd_mobilenet_v2_320x320_coco17_tpu-8"), "ssd_mobilenet_v1", "tf2"),
    ("auto", TF1_URL.format("ssd_mobilenet_v1_coco_2018_01_28"), "ssd_mobilenet_v1", "tf1"),
    ("auto", "file:///mirror/efficientdet_d0_coco17_tpu-32.tar.gz", "ssd_mobilenet_v1", "tf1"),
    ("tf2", "file:///mirror/efficientdet_d0_coco17_tpu-32.tar.gz", "ssd_mobilenet_v1", "tf2"),
    ("tf1", TF2_URL.format("ssd_mobilenet_v2_320x320_coco17_tpu-8"), "ssd_mobilenet_v1", "tf1"),
    ("auto", "starter:", "ssd_mobilenet_v1", "tf1"),
    ("auto", "starter:", "ssd_mobilenet_v1_keras", "tf1"),  # a TF1 zoo model, whatever its name
    ("auto", "starter:", "ssd_mobilenet_v2_keras", "tf2"),
    ("auto", "starter:", "ssd_efficientnet-b0_bifpn_keras", "tf2"),
    ("tf1", "starter:", "ssd_inception_v2", "tf1"),
])
def test_layout_setting_resolves(setting: str, url: str, architecture: str, want: str) -> None:
    assert resolve_layout(setting, url, architecture) == want


def test_a_layout_the_starter_does_not_write_is_refused_naming_both_settings() -> None:
    with pytest.raises(OdflowError, match=r"model\.layout 'tf2'.*model\.starter\.architecture"):
        resolve_layout("tf2", "starter:", "ssd_mobilenet_v1")


def test_layout_file_names() -> None:
    assert TF2.members == ("pipeline.config", *CHECKPOINT_MEMBERS)
    assert TF2.fine_tune_files == ("ckpt-0.index", "ckpt-0.data-00000-of-00001")
    assert TF1.members == ("pipeline.config", "model.ckpt.index",
                           "model.ckpt.data-00000-of-00001")
    assert TF1.fine_tune_files == ("model.ckpt.index", "model.ckpt.data-00000-of-00001")


# -- hand-made tarballs ---------------------------------------------------------------------------


def write_tf2_checkpoint(directory: Path) -> dict[str, np.ndarray]:
    """``directory/{checkpoint, ckpt-0.*}`` as the TF2 exporter writes them; the values by key."""
    import tensorflow as tf

    rng = np.random.default_rng(3)
    kernel = rng.normal(size=[3, 3, 3, 8]).astype(np.float32)
    gamma = rng.uniform(0.5, 1.5, size=[8]).astype(np.float32)
    extractor = tf.Module()
    extractor.kernel = tf.Variable(kernel)
    extractor.gamma = tf.Variable(gamma)
    model = tf.Module()
    model._feature_extractor = extractor
    manager = tf.train.CheckpointManager(tf.train.Checkpoint(model=model), str(directory),
                                         max_to_keep=1)
    manager.save(checkpoint_number=0)
    suffix = "/.ATTRIBUTES/VARIABLE_VALUE"
    return {f"model/_feature_extractor/kernel{suffix}": kernel,
            f"model/_feature_extractor/gamma{suffix}": gamma}


def _add(archive: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    archive.addfile(info, io.BytesIO(data))


def make_tf2_tarball(path: Path, folder: str, config: Path = MOBILENET_CONFIG) -> dict:
    """A tarball in the TF2 zoo's layout; returns the checkpoint's values by key."""
    scratch = path.parent / f"{path.name}.parts"
    values = write_tf2_checkpoint(scratch / "checkpoint")
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as archive:
        _add(archive, f"{folder}/pipeline.config", config.read_bytes())
        for name in ("checkpoint", "ckpt-0.index", "ckpt-0.data-00000-of-00001"):
            _add(archive, f"{folder}/checkpoint/{name}",
                 (scratch / "checkpoint" / name).read_bytes())
        _add(archive, f"{folder}/saved_model/saved_model.pb", b"not used")
        _add(archive, f"{folder}/saved_model/variables/variables.index", b"not used")
    return values


def files_under(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_extract_takes_only_the_config_and_the_checkpoint(tmp_path: Path) -> None:
    tarball = tmp_path / "efficientdet_d0_coco17_tpu-32.tar.gz"
    make_tf2_tarball(tarball, "efficientdet_d0_coco17_tpu-32", EFFICIENTDET_CONFIG)
    out = tmp_path / "efficientdet_d0_coco17_tpu-32"
    extract_model(tarball, out, layout=TF2)
    # never the state file (nor the SavedModel)
    assert files_under(out) == sorted(["pipeline.config", *CHECKPOINT_MEMBERS])
    assert (out / "pipeline.config").read_bytes() == EFFICIENTDET_CONFIG.read_bytes()
    with tarfile.open(tarball) as archive:
        for member in CHECKPOINT_MEMBERS:
            source = archive.extractfile(f"efficientdet_d0_coco17_tpu-32/{member}")
            assert (out / member).read_bytes() == source.read()


def test_copy_checkpoint_gives_ckpt_0_that_tensorflow_reads_back(tmp_path: Path) -> None:
    import tensorflow as tf

    tarball = tmp_path / "m.tar.gz"
    values = make_tf2_tarball(tarball, "m")
    extract_model(tarball, tmp_path / "m", layout=TF2)
    ckpt = tmp_path / "ckpt"
    copy_checkpoint(tmp_path / "m", ckpt, layout=TF2)
    assert files_under(ckpt) == ["ckpt-0.data-00000-of-00001", "ckpt-0.index"]
    reader = tf.train.load_checkpoint(str(ckpt / "ckpt-0"))
    for key, value in values.items():
        np.testing.assert_array_equal(reader.get_tensor(key), value)


def test_a_tf1_tarball_read_as_tf2_names_the_setting_that_fixes_it(tmp_path: Path) -> None:
    tarball = tmp_path / "tf1.tar.gz"
    with tarfile.open(tarball, "w:gz") as archive:
        for name in ("pipeline.config", "model.ckpt.index", "model.ckpt.data-00000-of-00001",
                     "checkpoint"):
            _add(archive, f"tf1/{name}", b"x")
    with pytest.raises(OdflowError) as info:
        extract_model(tarball, tmp_path / "out", layout=TF2)
    message = str(info.value)
    assert "checkpoint/ckpt-0.index" in message and "model.layout: tf1" in message
    assert not (tmp_path / "out").exists()


def test_a_tf2_tarball_read_as_tf1_names_the_setting_that_fixes_it(tmp_path: Path) -> None:
    tarball = tmp_path / "m.tar.gz"
    make_tf2_tarball(tarball, "m")
    with pytest.raises(OdflowError, match=r"model\.ckpt\.index.*model\.layout: tf2"):
        extract_model(tarball, tmp_path / "out", layout=TF1)


def test_a_linked_checkpoint_member_is_not_followed(tmp_path: Path) -> None:
    """The same refusal as for TF1 tarballs: only regular files, below the top folder."""
    secret = tmp_path / "secret"
    secret.write_bytes(b"secret")
    tarball = tmp_path / "evil.tar.gz"
    with tarfile.open(tarball, "w:gz") as archive:
        _add(archive, "evil/pipeline.config", b"x")
        _add(archive, "evil/checkpoint/ckpt-0.data-00000-of-00001", b"x")
        link = tarfile.TarInfo("evil/checkpoint/ckpt-0.index")
        link.type = tarfile.SYMTYPE
        link.linkname = str(secret)
        archive.addfile(link)
        _add(archive, "evil/../../escaped", b"x")
    with pytest.raises(OdflowError, match=r"missing checkpoint/ckpt-0\.index"):
        extract_model(tarball, tmp_path / "out", layout=TF2)
    assert not (tmp_path / "out").exists() and not (tmp_path.parent / "escaped").exists()


def test_copy_checkpoint_before_extraction_names_the_missing_file(tmp_path: Path) -> None:
    with pytest.raises(OdflowError, match=r"checkpoint/ckpt-0\.index, .*checkpoint/ckpt-0\."
                                          r"data-00000-of-00001 do not exist.*tf2"):
        copy_checkpoint(tmp_path / "m", tmp_path / "ckpt", layout=TF2)
    assert not (tmp_path / "ckpt").exists()


# -- the pipeline config ------------------------------------------------------------------------


def patched_tf2_config(tmp_path: Path, config: Path = MOBILENET_CONFIG, **changes):
    label_map = tmp_path / "label_map.pbtxt"
    label_map.write_text("item {\n  id: 1\n  name: 'face'\n}\n")
    options = dict(num_classes_from_label_map=True, label_map_path=label_map,
                   fine_tune_checkpoint="ckpt/ckpt-0", fine_tune_checkpoint_type="detection",
                   fine_tune_checkpoint_version="V2", train_input_paths=["train.record"],
                   eval_input_paths=["val.record"], num_examples=8, num_steps=20,
                   overrides=["train_config.batch_size=4"])
    options.update(changes)
    return patch_config(config_lib.load(config), **options)


def test_tf2_config_gets_the_tf2_tutorials_edits(tmp_path: Path) -> None:
    template = config_lib.load(MOBILENET_CONFIG)
    assert template.train_config.fine_tune_checkpoint_type == "classification"  # as shipped
    patched = patched_tf2_config(tmp_path)
    train = patched.train_config
    assert train.fine_tune_checkpoint == "ckpt/ckpt-0"
    assert train.fine_tune_checkpoint_type == "detection"
    assert config_lib.dumps(patched).count("fine_tune_checkpoint_version: V2") == 1
    assert patched.model.ssd.num_classes == 1
    assert train.batch_size == 4 and train.num_steps == 20
    assert list(patched.train_input_reader.tf_record_input_reader.input_path) == ["train.record"]
    assert list(patched.eval_input_reader[0].tf_record_input_reader.input_path) == ["val.record"]
    assert patched.train_input_reader.label_map_path.endswith("label_map.pbtxt")
    assert patched.eval_config.num_examples == 8
    assert "PATH_TO_BE_CONFIGURED" not in config_lib.dumps(patched)


def test_the_workflow_setting_still_chooses_the_checkpoint_type(tmp_path: Path) -> None:
    patched = patched_tf2_config(tmp_path, fine_tune_checkpoint_type="full")
    assert patched.train_config.fine_tune_checkpoint_type == "full"


def test_v1_leaves_a_tf1_config_as_it_was(tmp_path: Path) -> None:
    """TF1 tarballs patch to the same bytes as before the version existed."""
    tf1 = REPO / "tests/fixtures/reference/sample_configs/ssd_mobilenet_v1_coco.config"
    common = dict(num_classes=1, fine_tune_checkpoint="ckpt/model.ckpt",
                  fine_tune_checkpoint_type="detection")
    without = patch_config(config_lib.load(tf1), **common)
    with_v1 = patch_config(config_lib.load(tf1), fine_tune_checkpoint_version="V1", **common)
    assert config_lib.dumps(with_v1) == config_lib.dumps(without)
    assert "fine_tune_checkpoint_version" not in config_lib.dumps(with_v1)
    # and a V2 template is turned back to V1 when asked
    v1 = patched_tf2_config(tmp_path, fine_tune_checkpoint_version="V1")
    assert "fine_tune_checkpoint_version: V1" in config_lib.dumps(v1)


def test_use_bfloat16_trains_in_float32_and_says_so(tmp_path: Path, caplog) -> None:
    from odflow.train.loop import check_train_config

    patched = patched_tf2_config(tmp_path, config=EFFICIENTDET_CONFIG)
    assert patched.train_config.use_bfloat16  # the TPU config's, kept
    with caplog.at_level(logging.INFO, logger="odflow.train"):
        try:
            check_train_config(patched.train_config)
        except OdflowError as error:  # only the V2 reader may still be missing here
            assert "use_bfloat16" not in str(error)
    assert any("use_bfloat16" in r.getMessage() and "float32" in r.getMessage()
               for r in caplog.records)


# -- presets ------------------------------------------------------------------------------------


def load_preset(folder: str) -> dict:
    return yaml.safe_load((REPO / "presets" / f"{folder}.yaml").read_text())


def test_every_tf2_preset_is_a_row_of_the_zoo_table() -> None:
    presets = {p.stem for p in (REPO / "presets").glob("*_coco17_tpu-*.yaml")}
    assert presets == {row["folder"] for row in ROWS}


@pytest.mark.parametrize("row", ROWS, ids=[row["folder"] for row in ROWS])
def test_tf2_preset_names_the_zoo_tarball_and_validates(row: dict[str, str]) -> None:
    preset = load_preset(row["folder"])
    assert set(preset) == {"model", "pipeline"}
    assert preset["model"] == {"name": row["folder"], "url": row["url"], "sha256": "",
                               "layout": "tf2"}
    assert preset["pipeline"]["config_name"] == row["config"]
    assert preset["pipeline"]["fine_tune_checkpoint_type"] == "detection"
    tutorial = yaml.safe_load((REPO / "presets" / "wider_face.yaml").read_text())
    validate({**tutorial, "model": preset["model"],
              "pipeline": {**tutorial["pipeline"], **preset["pipeline"]}}, str(SCHEMA))


def planned_outputs(output: str) -> dict[str, list[str]]:
    """rule -> its output files, from a dry run's job listing (one job per rule here)."""
    planned: dict[str, list[str]] = {}
    for block in re.split(r"\n(?=(?:local)?rule \S+:)", output):
        rule = re.match(r"(?:local)?rule (\S+):", block.strip())
        files = re.search(r"^\s+output: (.*)$", block, re.MULTILINE)
        if rule and files:
            planned[rule.group(1)] = files.group(1).split(", ")
    return planned


def shell_of(output: str, script: str) -> str:
    return next(line for line in output.splitlines() if script in line and "python" in line)


@pytest.mark.workflow
@pytest.mark.slow
def test_dry_run_with_each_preset_plans_the_tf2_files(tmp_path: Path) -> None:
    """`snakemake -n -p` with each TF2 preset (and, for contrast, a TF1 one and a TF2 URL
    forced to tf1) plans the tarball, its TF2 members, ckpt/ckpt-0.* and the V2 config."""
    plans, expected = [], []
    for row in ROWS:
        preset = load_preset(row["folder"])
        workdir = tmp_path / row["folder"]
        config = tiny_config(model=preset["model"], pipeline=preset["pipeline"])
        plans.append((workdir, write_config(tmp_path / "configs" / row["folder"], config),
                      ["-p", "exported_model/frozen_inference_graph.pb"]))
        expected.append((row["folder"], row["config"], "tf2"))
    tf1_preset = yaml.safe_load((REPO / "presets" / "ssd_mobilenet_v2_coco.yaml").read_text())
    forced = load_preset(ROWS[0]["folder"])
    forced["model"]["layout"] = "tf1"
    for name, preset, layout in [("tf1_preset", tf1_preset, "tf1"), ("forced", forced, "tf1")]:
        config = tiny_config(model=preset["model"], pipeline=preset["pipeline"])
        plans.append((tmp_path / name, write_config(tmp_path / "configs" / name, config),
                      ["-p", "exported_model/frozen_inference_graph.pb"]))
        expected.append((preset["model"]["name"], preset["pipeline"]["config_name"], layout))

    for result, (folder, config_name, layout) in zip(dry_runs(plans), expected, strict=True):
        assert result.returncode == 0, result.output
        planned = planned_outputs(result.output)
        assert planned["download_model"] == [f"downloads/{folder}.tar.gz"]
        members = CHECKPOINT_MEMBERS if layout == "tf2" else [
            "model.ckpt.index", "model.ckpt.data-00000-of-00001"]
        assert planned["extract_model"] == [f"{folder}/pipeline.config",
                                            *(f"{folder}/{m}" for m in members)]
        prefix = "ckpt/ckpt-0" if layout == "tf2" else "ckpt/model.ckpt"
        copy_rule = "fine_tune_checkpoint_tf2" if layout == "tf2" else "fine_tune_checkpoint"
        assert planned[copy_rule] == [f"{prefix}.index", f"{prefix}.data-00000-of-00001"]
        assert planned["pipeline_config"] == [f"ckpt/{config_name}.config"]
        assert planned["export"][0] == "exported_model/frozen_inference_graph.pb"
        patch = shell_of(result.output, "patch_pipeline_config.py")
        version = "V2" if layout == "tf2" else "V1"
        assert f"--fine-tune-checkpoint {prefix} " in patch
        assert f"--fine-tune-checkpoint-version {version} " in patch
        assert "--fine-tune-checkpoint-type detection " in patch
        assert f"--layout {layout} " in shell_of(result.output, " extract ")


@pytest.mark.workflow
@pytest.mark.slow
def test_tf2_tarball_through_the_extract_and_fine_tune_rules(tmp_path: Path) -> None:
    """A TF2 zoo tarball (from a file:// mirror of the zoo's /tf2/ folder, model.layout auto)
    through download_model, extract_model and fine_tune_checkpoint_tf2 (the patched config's
    V2 fields: the dry runs above and the patch tests)."""
    import tensorflow as tf

    folder = "ssd_mobilenet_v2_320x320_coco17_tpu-8"
    tarball = tmp_path / "mirror" / "tf2" / "20200711" / f"{folder}.tar.gz"
    values = make_tf2_tarball(tarball, folder)
    tarball_bytes = tarball.read_bytes()
    workdir = tmp_path / "work"
    preset = load_preset(folder)
    model = {**preset["model"], "url": tarball.as_uri(), "layout": "auto"}
    configfile = write_config(workdir, tiny_config(model=model, pipeline=preset["pipeline"]))
    result = run_snakemake(workdir, configfile, "-c2", "ckpt/ckpt-0.index")
    assert result.returncode == 0, result.output

    assert files_under(workdir / folder) == sorted(["pipeline.config", *CHECKPOINT_MEMBERS])
    assert sorted(os.listdir(workdir / "ckpt")) == [  # no state file
        "ckpt-0.data-00000-of-00001", "ckpt-0.index"]
    reader = tf.train.load_checkpoint(str(workdir / "ckpt" / "ckpt-0"))
    for key, value in values.items():
        np.testing.assert_array_equal(reader.get_tensor(key), value)
    assert tarball.read_bytes() == tarball_bytes  # the user's file, untouched


def test_a_conversion_that_cannot_be_made_names_the_model_and_why() -> None:
    from odflow.export.convertible import check_convertible

    with pytest.raises(OdflowError) as info:
        check_convertible(config_lib.load(EFFICIENTDET_CONFIG), "onnx")
    message = str(info.value)
    assert "'ssd_efficientnet-b0_bifpn_keras' (EfficientDet)" in message
    assert "onnx" in message and "tf2onnx" in message and "frozen_inference_graph.pb" in message
    for fmt in ("tflite", "tflite_int8"):  # EfficientDet's TFLite files convert
        check_convertible(config_lib.load(EFFICIENTDET_CONFIG), fmt)
    check_convertible(config_lib.load(MOBILENET_CONFIG), "onnx")  # the others convert
