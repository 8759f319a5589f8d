"""Records rebuilt from identical inputs are byte-identical, so training resumes on them.

Each build runs in a fresh interpreter, as a rebuild by the workflow does: protobuf's map
order (the ``features.feature`` map of every ``tf.train.Example``) varies between processes,
not within one, so building twice in the same process would not catch it.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from odflow.protos import pipeline_pb2
from odflow.train import fingerprint as fp
from tests.support.images import write_random_jpeg
from tests.support.training import REPO, subprocess_env

# One tiny input per writer: WIDER FACE, the tutorial's CSV, Pascal VOC and synthetic.
WIDER_GT = """\
0--Parade/0_Parade_1.jpg
2
4 6 20 16 0 0 0 0 0 0 
30 10 8 8 2 0 1 0 0 0 
0--Parade/0_Parade_2.jpg
1
1 2 30 20 0 0 0 0 1 0 
"""
CSV = """\
filename,width,height,class,xmin,ymin,xmax,ymax
a.jpg,48,32,face,4,6,20,30
a.jpg,48,32,person,22,0,48,32
b.jpg,40,24,face,0,0,40,24
"""
VOC_XML = """<annotation><filename>{name}.jpg</filename>
  <size><width>48</width><height>32</height><depth>3</depth></size>
  <object><name>face</name><pose>Frontal</pose><truncated>0</truncated><difficult>0</difficult>
    <bndbox><xmin>4</xmin><ymin>6</ymin><xmax>20</xmax><ymax>30</ymax></bndbox></object>
  <object><name>person</name><pose>Left</pose><truncated>1</truncated><difficult>1</difficult>
    <bndbox><xmin>22</xmin><ymin>0</ymin><xmax>48</xmax><ymax>32</ymax></bndbox></object>
</annotation>
"""
RECORDS = ("wider.record", "csv.record", "voc.record",
           "synthetic.record-00000-of-00002", "synthetic.record-00001-of-00002")

BUILD = """
import sys
from odflow.data.cli import main
src, out = sys.argv[1], sys.argv[2]
lm = ["--label-map", f"{src}/label_map.pbtxt"]
for argv in (
    ["wider", "--root", f"{src}/WIDER", "--split", "train", "-o", f"{out}/wider.record", *lm],
    ["csv", "--csv", f"{src}/labels.csv", "--images", f"{src}/images",
     "-o", f"{out}/csv.record", *lm],
    ["voc", "--annotations", f"{src}/Annotations", "--images", f"{src}/JPEGImages",
     "-o", f"{out}/voc.record", *lm],
    ["synthetic", "--num-images", "3", "--height", "48", "--width", "48", "--seed", "5",
     "--num-shards", "2", "-o", f"{out}/synthetic.record"],
):
    if main(argv) != 0:
        sys.exit(f"build failed: {argv}")
"""


def _make_sources(src: Path) -> None:
    src.mkdir()
    (src / "label_map.pbtxt").write_text("item { id: 1 name: 'person' }\n"
                                         "item { id: 2 name: 'face' }\n")
    gt = src / "WIDER/wider_face_split/wider_face_train_bbx_gt.txt"
    gt.parent.mkdir(parents=True)
    gt.write_text(WIDER_GT)
    for seed, name in enumerate(("0_Parade_1", "0_Parade_2")):
        write_random_jpeg(src / f"WIDER/WIDER_train/images/0--Parade/{name}.jpg", 48, 32, seed)
    (src / "labels.csv").write_text(CSV)
    write_random_jpeg(src / "images/a.jpg", 48, 32, 2)
    write_random_jpeg(src / "images/b.jpg", 40, 24, 3)
    (src / "Annotations").mkdir()
    for seed, name in enumerate(("x1", "x2")):
        write_random_jpeg(src / f"JPEGImages/{name}.jpg", 48, 32, 4 + seed)
        (src / f"Annotations/{name}.xml").write_text(VOC_XML.format(name=name))


def _build(src: Path, out: Path) -> dict[str, str]:
    """Build every record in a fresh interpreter; sha256 of each record and summary file."""
    done = subprocess.run([sys.executable, "-c", BUILD, str(src), str(out)], env=subprocess_env(),
                          cwd=str(REPO), capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return {path.name: hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(out.iterdir())}


def _training_config(out: Path) -> pipeline_pb2.TrainEvalPipelineConfig:
    config = pipeline_pb2.TrainEvalPipelineConfig()
    config.train_input_reader.tf_record_input_reader.input_path.extend(
        [str(out / name) for name in RECORDS])
    config.train_input_reader.label_map_path = str(out.parent / "src/label_map.pbtxt")
    return config


@pytest.mark.slow
def test_rebuilt_records_are_byte_identical_and_training_resumes_on_them(tmp_path: Path) -> None:
    src, out = tmp_path / "src", tmp_path / "datasets"
    _make_sources(src)
    first = _build(src, out)
    assert set(RECORDS) <= set(first)
    config = _training_config(out)
    stored = fp.compute(config, seed=1)

    shutil.rmtree(out)  # as after `rm datasets/*.record`: the rebuild writes new files
    second = _build(src, out)
    assert second == first  # the records and their .summary.json files

    # New files (other modification times), so the digests are computed again, not cached.
    assert [os.stat(out / name).st_mtime_ns for name in RECORDS] != [
        entry["mtime_ns"] for entry in stored["train_records"]]
    rebuilt = fp.compute(config, seed=1, previous=stored)
    assert fp.changes(stored, rebuilt) == []
