"""Peak memory of reading a large COCO instances JSON: odflow's streaming reader vs json.load.

    python benchmarks/coco_json_memory.py [--megabytes 150] [--workdir /tmp/odflow-bench]

Writes an instances-style file shaped like COCO's ``instances_train2017.json`` (per image
about 7 annotations, each with a polygon ``segmentation`` of some 25 points, the bulk of
COCO's bytes) of about ``--megabytes`` MB, then reads it in a fresh process per method and
reports that process's peak RSS growth (MiB) over its own baseline (the interpreter and imports,
measured before reading):

- ``json.load``: what a plain reader holds (every polygon point a Python float);
- ``odflow``: ``odflow.data.coco_source.read_coco`` (ijson events, only what the records need
  kept: a tuple per box), the reader ``odflow data coco`` uses.

Results are printed as Markdown rows for coco_json_memory.md.  Goal: <= about 2x the file.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def write_instances(path: Path, megabytes: float, seed: int = 0) -> tuple[int, int]:
    """An instances-style file of about ``megabytes``; (images, annotations) written."""
    rng = random.Random(seed)
    target = megabytes * 1e6
    categories = [{"supercategory": "thing", "id": i, "name": f"class_{i}"}
                  for i in range(1, 91)]
    written = images = annotations = 0
    with open(path, "w", encoding="utf-8") as handle:
        head = '{"info": {"description": "odflow benchmark"}, "licenses": [], "images": ['
        handle.write(head)
        image_entries = []
        # Images first (as COCO's files): ~118k images in 450 MB, about 1/4 kB each of 3.8 kB.
        count = int(target / 3900)
        for i in range(count):
            image_entries.append(json.dumps({
                "license": 3, "file_name": f"{i:012d}.jpg", "coco_url": "http://x/" + str(i),
                "height": 480, "width": 640, "date_captured": "2013-11-14 11:18:45",
                "flickr_url": "http://y/" + str(i), "id": i}))
        handle.write(", ".join(image_entries))
        handle.write('], "annotations": [')
        written = handle.tell()
        first = True
        while written < target - 10_000:
            image_id = rng.randrange(count)
            x, y = rng.uniform(0, 500), rng.uniform(0, 350)
            w, h = rng.uniform(5, 140), rng.uniform(5, 130)
            points = [round(v, 2) for _ in range(25)
                      for v in (x + rng.uniform(0, w), y + rng.uniform(0, h))]
            text = json.dumps({
                "segmentation": [points], "area": round(w * h * 0.6, 4), "iscrowd": 0,
                "image_id": image_id, "bbox": [round(x, 2), round(y, 2), round(w, 2),
                                               round(h, 2)],
                "category_id": rng.randrange(1, 91), "id": annotations})
            handle.write(text if first else ", " + text)
            first = False
            annotations += 1
            written += len(text) + 2
        handle.write('], "categories": ' + json.dumps(categories) + "}")
        images = count
    return images, annotations


CHILD = r"""
import json, resource, sys, time
sys.path.insert(0, {repo!r})
from odflow.data.coco_source import read_coco
from odflow.data.convert import BadInput
from odflow.data.summary import DatasetSummary
import ijson
def rss_mb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
base = rss_mb()
start = time.perf_counter()
usage = resource.getrusage(resource.RUSAGE_SELF)
cpu_start = usage.ru_utime + usage.ru_stime
if {method!r} == "json.load":
    with open({path!r}, encoding="utf-8") as f:
        data = json.load(f)
    n = len(data["annotations"])
else:
    data = read_coco({path!r}, BadInput(DatasetSummary(), False))
    n = sum(len(i.boxes) for i in data.images)
seconds = time.perf_counter() - start
usage = resource.getrusage(resource.RUSAGE_SELF)
peak = usage.ru_maxrss / 1024
cpu = usage.ru_utime + usage.ru_stime - cpu_start
print(json.dumps({{"base": base, "peak": peak, "seconds": seconds, "cpu": cpu, "boxes": n}}))
"""


def measure(path: Path, method: str) -> dict:
    code = CHILD.format(repo=str(REPO), method=method, path=str(path))
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                         text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megabytes", type=float, default=150)
    parser.add_argument("--workdir", default="/tmp/odflow-bench")
    parser.add_argument("--keep", action="store_true",
                        help="keep the generated file, and reuse one already there")
    args = parser.parse_args()
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / "instances_bench.json"
    start = time.perf_counter()
    if not (args.keep and path.is_file()):
        images, annotations = write_instances(path, args.megabytes)
        print(f"wrote {path}: {images:,} images, {annotations:,} annotations "
              f"({time.perf_counter() - start:.1f} s)")
    size_mb = path.stat().st_size / 2**20
    print(f"{path}: {size_mb:.1f} MiB")
    print("| reader | file MiB | peak RSS growth MiB | x file size | wall s | CPU s | boxes |")
    print("|---|---|---|---|---|---|---|")
    for method in ("odflow", "json.load"):
        result = measure(path, method)
        growth = result["peak"] - result["base"]
        print(f"| {method} | {size_mb:.1f} | {growth:.0f} | {growth / size_mb:.2f} | "
              f"{result['seconds']:.1f} | {result['cpu']:.1f} | {result['boxes']:,} |")
    if not args.keep:
        os.remove(path)


if __name__ == "__main__":
    main()
