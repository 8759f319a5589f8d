"""Conversion speed and memory: WIDER FACE layout, CSV and synthetic generation.

    python benchmarks/data_conversion.py [--images 3000] [--workdir /tmp/odflow-bench]

Makes a few thousand JPEGs in WIDER FACE's download layout (and the same set as a CSV),
converts them, and reports images/s next to a baseline measured in the same process: just
reading the same files' bytes (the I/O floor any converter pays).  Peak Python memory is
measured with tracemalloc on a second run, at two dataset sizes, to show that it does not
grow with the dataset.  Results are printed as Markdown rows for data_conversion.md.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from odflow import label_map as label_map_lib
from odflow.data.csv_source import convert_csv
from odflow.data.synthetic import (
    SyntheticConfig,
    encode_jpeg,
    generate_example,
    generate_records,
    split_rng,
)
from odflow.data.wider_face import convert_wider

UNIQUE_IMAGES = 100


def make_dataset(root: Path, num_images: int) -> tuple[Path, Path, Path]:
    """WIDER layout (60 events) plus a tutorial CSV over the same image files."""
    config = SyntheticConfig(height=384, width=512)
    samples = [generate_example(split_rng(99, "bench", i), config) for i in range(UNIQUE_IMAGES)]
    encoded = [encode_jpeg(s.image, 85) for s in samples]
    images = root / "WIDER_train" / "images"
    gt_lines, csv_lines = [], ["filename,width,height,class,xmin,ymin,xmax,ymax"]
    for index in range(num_images):
        sample = samples[index % UNIQUE_IMAGES]
        name = f"{index % 60}--Event/{index % 60}_Event_{index}.jpg"
        path = images / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(encoded[index % UNIQUE_IMAGES])
        boxes = sample.boxes_abs
        gt_lines += [name, str(max(len(boxes), 0))]
        if len(boxes) == 0:
            gt_lines.append("0 0 0 0 0 0 0 0 0 0 ")
            csv_lines.append(f"{name},512,384,,,,,")
        for y0, x0, y1, x1 in boxes.round().astype(int).tolist():
            gt_lines.append(f"{x0} {y0} {x1 - x0} {y1 - y0} 0 0 0 0 0 0 ")
            csv_lines.append(f"{name},512,384,face,{x0},{y0},{x1},{y1}")
    gt = root / "wider_face_split" / "wider_face_train_bbx_gt.txt"
    gt.parent.mkdir(parents=True, exist_ok=True)
    gt.write_text("\n".join(gt_lines) + "\n")
    csv_path = root / "labels.csv"
    csv_path.write_text("\n".join(csv_lines) + "\n")
    return gt, images, csv_path


def read_all(images: Path) -> int:
    total = 0
    for path in sorted(images.rglob("*.jpg")):
        total += len(path.read_bytes())
    return total


def decode_all(images: Path, ratio: int = 1) -> int:
    """Decode every image with TensorFlow's JPEG decoder (``ratio`` > 1: DCT-scaled down).

    What a full check at conversion would add per image: the converters read headers only,
    and this row is why (benchmarks/data_conversion.md).
    """
    import tensorflow as tf

    from odflow.data.example import check_decodable

    count = 0
    for path in sorted(images.rglob("*.jpg")):
        data = path.read_bytes()
        if ratio == 1:
            check_decodable(data, str(path))
        else:
            tf.io.decode_jpeg(data, channels=3, ratio=ratio)
        count += 1
    return count


class Timing:
    """Wall-clock and CPU seconds: on a shared machine the CPU time is the fairer figure."""

    def __init__(self, wall: float, cpu: float):
        self.wall, self.cpu = wall, cpu


def timed(function, *args, **kwargs) -> tuple[Timing, object]:
    start, start_cpu = time.perf_counter(), time.process_time()
    result = function(*args, **kwargs)
    return Timing(time.perf_counter() - start, time.process_time() - start_cpu), result


def peak_python_memory(function, *args, **kwargs) -> int:
    tracemalloc.start()
    try:
        function(*args, **kwargs)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=3000)
    parser.add_argument("--workdir", default="/tmp/odflow-bench-data")
    args = parser.parse_args()
    work = Path(args.workdir)
    shutil.rmtree(work, ignore_errors=True)
    label_map = work / "label_map.pbtxt"
    work.mkdir(parents=True)
    label_map_lib.write(label_map, ["face"])
    gt, images, csv_path = make_dataset(work / "big", args.images)
    small_n = max(args.images // 4, 1)
    gt_small, images_small, _ = make_dataset(work / "small", small_n)
    size_mb = sum(p.stat().st_size for p in images.rglob("*.jpg")) / 1e6
    print(f"dataset: {args.images} JPEGs 512x384, {size_mb:.1f} MB, "
          f"{sum(1 for line in csv_path.read_text().splitlines()) - 1} CSV rows")

    # Warm up (TensorFlow import, page cache), then time.
    convert_wider(gt_small, images_small, work / "warm.record", label_map_path=label_map)
    read_s, _ = timed(read_all, images)
    wider_s, summary = timed(convert_wider, gt, images, work / "wider.record",
                             label_map_path=label_map)
    shard_s, _ = timed(convert_wider, gt, images, work / "wider4.record",
                       label_map_path=label_map, num_shards=4)
    csv_s, _ = timed(convert_csv, csv_path, images.parent.parent / "WIDER_train" / "images",
                     work / "csv.record", label_map_path=label_map)
    decode_s, _ = timed(decode_all, images)
    decode8_s, _ = timed(decode_all, images, 8)
    n = args.images
    rows = [
        ("read the image bytes only (baseline)", read_s),
        ("wider -> 1 record", wider_s),
        ("wider -> 4 shards", shard_s),
        ("csv -> 1 record", csv_s),
        ("TF decode of every image, full size (check_decodable)", decode_s),
        ("TF decode of every image at 1/8 scale (ratio=8)", decode8_s),
    ]
    print("\n| step | wall s | images/s (wall) | images/s (CPU time) | x baseline CPU time |")
    print("|---|---|---|---|---|")
    for name, timing in rows:
        print(f"| {name} | {timing.wall:.2f} | {n / timing.wall:,.0f} | {n / timing.cpu:,.0f} "
              f"| {timing.cpu / read_s.cpu:.1f} |")
    print(f"\nboxes written: {summary.boxes}")
    for name, extra in (("full-size", decode_s), ("1/8-scale", decode8_s)):
        both = Timing(wider_s.wall + extra.wall, wider_s.cpu + extra.cpu)
        print(f"wider -> 1 record with a {name} decode check: {n / both.wall:,.0f} images/s "
              f"wall, {n / both.cpu:,.0f} CPU time")

    peak_small = peak_python_memory(convert_wider, gt_small, images_small,
                                    work / "m_small.record", label_map_path=label_map)
    peak_big = peak_python_memory(convert_wider, gt, images, work / "m_big.record",
                                  label_map_path=label_map)
    print(f"\npeak Python memory (tracemalloc): {small_n} images {peak_small / 1e6:.2f} MB, "
          f"{n} images {peak_big / 1e6:.2f} MB")

    count = 300
    synth_s, _ = timed(generate_records, work / "synthetic.record", split="train",
                       num_images=count, seed=1, label_map_path=label_map)
    only_s, _ = timed(lambda: [encode_jpeg(generate_example(split_rng(1, "x", i)).image)
                               for i in range(count)])
    print(f"\nsynthetic 256x256 into a record: {count / synth_s.wall:,.0f} images/s wall, "
          f"{count / synth_s.cpu:,.0f} images/s CPU time; generate+encode only: "
          f"{count / only_s.wall:,.0f} wall, {count / only_s.cpu:,.0f} CPU")
    print(f"load average after the run: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    try:
        import resource

        print(f"process max RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3:.0f} MB"
              " (includes TensorFlow)")
    except ImportError:  # pragma: no cover - not on Linux
        pass
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
