"""Record files: writing them (sharded, atomically, with a summary) and reading them back.

Training reads records through ``parse_example_tensors`` inside ``tf.data``; evaluation and
inspection read them in numpy through ``iter_examples``.  Both go through the one layout of
``odflow.data.example``, so a key renamed in one place cannot silently disappear in another.
"""

from __future__ import annotations

import contextlib
import glob
import logging
import os
import re
import struct
from collections.abc import Iterator, Sequence
from pathlib import Path

from odflow.data import example as ex
from odflow.data.example import DecodedExample, ImageAnnotation
from odflow.data.summary import DatasetSummary, summary_path_for
from odflow.errors import OdflowError
from odflow.utils.atomic import (
    check_not_folder,
    remove_stale_temporaries,
    temporary_path_for,
)

log = logging.getLogger(__name__)

_SHARD_SUFFIX = re.compile(r"-\d{5}-of-\d{5}$")


def shard_paths(output_path: str | os.PathLike, num_shards: int) -> list[Path]:
    """The API's shard names: ``train.record`` or ``train.record-00000-of-00004``..."""
    output = Path(output_path)
    if num_shards < 1:
        raise OdflowError(f"--num-shards must be at least 1, got {num_shards}")
    if num_shards == 1:
        return [output]
    return [output.with_name(f"{output.name}-{i:05d}-of-{num_shards:05d}")
            for i in range(num_shards)]


def _stale_outputs(output: Path, keep: list[Path]) -> list[Path]:
    """Earlier outputs of the same name with another shard count (a glob would mix them in)."""
    candidates = [output] + [Path(p) for p in glob.glob(glob.escape(str(output)) + "-*-of-*")
                             if _SHARD_SUFFIX.search(p)]
    return [p for p in candidates if p.exists() and p not in keep]


class RecordWriter:
    """Write annotated images to one record file or N shards, all-or-nothing.

    Images go round-robin to the shards (image i to shard i mod N, as the API's own tools do),
    each shard to a temporary name; only when the ``with`` block ends without an exception are
    the shards renamed into place and the summary written beside them.  On an exception every
    temporary file is removed and any earlier output is left as it was; temporary files a
    killed earlier run left for this output are removed on entry.

    Converters pass ``source`` (the annotation file they read): a conversion that writes no
    image then fails naming it, instead of leaving an empty set for training to spin on.
    """

    def __init__(self, output_path: str | os.PathLike, num_shards: int = 1,
                 summary: DatasetSummary | None = None, summary_extra: dict | None = None,
                 *, source: str | os.PathLike | None = None):
        self.output_path = Path(output_path)
        self.paths = shard_paths(self.output_path, num_shards)
        self.summary = summary if summary is not None else DatasetSummary()
        self.summary_extra = dict(summary_extra or {})
        self.source = None if source is None else os.fspath(source)
        self._writers: list = []
        self._tmp_paths: list[Path] = []
        self._count = 0

    @property
    def summary_path(self) -> Path:
        return summary_path_for(self.output_path)

    def __enter__(self) -> RecordWriter:  # noqa: PYI034
        import tensorflow as tf

        for path in (*self.paths, self.summary_path):
            check_not_folder(path)
        remove_stale_temporaries(self.output_path.parent, own_names_pattern(self.output_path))
        try:
            for path in self.paths:
                tmp = temporary_path_for(path)
                self._tmp_paths.append(tmp)
                self._writers.append(tf.io.TFRecordWriter(str(tmp)))
        except BaseException:
            self._abort()
            raise
        return self

    def write(self, annotation: ImageAnnotation) -> None:
        """Encode and append one image; counted in the summary."""
        self.write_serialized(ex.encode_example(annotation))
        self.summary.add_image(annotation.height, annotation.width, annotation.boxes,
                               list(annotation.class_texts))

    def write_serialized(self, serialized: bytes) -> None:
        """Append already-encoded ``tf.train.Example`` bytes (not counted in the summary)."""
        self._writers[self._count % len(self._writers)].write(serialized)
        self._count += 1

    @property
    def num_written(self) -> int:
        return self._count

    def _abort(self) -> None:
        for writer in self._writers:
            with contextlib.suppress(Exception):
                writer.close()
        for tmp in self._tmp_paths:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        self._writers, self._tmp_paths = [], []

    def _check_not_empty(self) -> None:
        if self.source is None or self._count:
            return
        dropped = self.summary.dropped_images
        read = sum(dropped.values())
        detail = "; ".join(f"{count} {reason}" for reason, count in sorted(dropped.items()))
        first = f" First: {self.summary.warnings[0]}" if self.summary.warnings else ""
        raise OdflowError(
            f"{self.output_path}: 0 images after converting {self.source} "
            f"({read} read{', all left out: ' + detail if read else ''}); nothing was written. "
            "An empty set cannot train or evaluate: check the annotation file and image "
            f"folder (dataset.* in config.yaml) and the filters that left images out.{first}")

    def _commit(self) -> None:
        self._check_not_empty()
        for writer in self._writers:
            writer.flush()
            writer.close()
        stale = _stale_outputs(self.output_path, self.paths)
        for tmp, path in zip(self._tmp_paths, self.paths):
            os.replace(tmp, path)
        self._writers, self._tmp_paths = [], []
        for path in stale:
            log.info("removing %s, left by an earlier run with another --num-shards", path)
            path.unlink()
        extra = {"output": str(self.output_path), "shards": [str(p) for p in self.paths]}
        extra.update(self.summary_extra)
        self.summary.write(self.summary_path, extra)
        log.info("wrote %d images (%d boxes) to %s%s", self.summary.images, self.summary.boxes,
                 self.output_path,
                 f" in {len(self.paths)} shards" if len(self.paths) > 1 else "")

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self._abort()
            return
        try:
            self._commit()
        except BaseException:
            self._abort()
            raise


def own_names_pattern(output_path: str | os.PathLike) -> str:
    """Regex of every file name a ``RecordWriter`` for ``output_path`` writes: the record,
    its shards with any shard count, and the summary."""
    return re.escape(Path(output_path).name) + r"(?:-\d{5}-of-\d{5})?(?:\.summary\.json)?"


def expand_record_paths(patterns: str | os.PathLike | Sequence[str | os.PathLike]) -> list[str]:
    """Record files named by the API's ``input_path`` forms, sorted and without duplicates.

    Accepts a plain file, a glob (``train.record-*``, ``train.record-?????-of-00004``) or a list
    of these; a comma-separated string is split as the API did.  A pattern that matches nothing
    is an ``OdflowError`` naming it.
    """
    if isinstance(patterns, (str, os.PathLike)):
        items = [p.strip() for p in str(patterns).split(",") if p.strip()]
    else:
        items = [str(p) for p in patterns]
    if not items:
        raise OdflowError("no record file given (input_path is empty)")
    found: set[str] = set()
    for pattern in items:
        if glob.has_magic(pattern):
            matches = [m for m in glob.glob(pattern) if os.path.isfile(m)]
        else:
            matches = [pattern] if os.path.isfile(pattern) else []
        if not matches:
            raise OdflowError(f"record file {pattern!r} not found (nothing matches it); "
                              "check input_path or build the records first")
        found.update(matches)
    return sorted(found)


def _read_exact(handle, size: int, path: str, index: int) -> bytes:
    data = handle.read(size)
    if len(data) != size:
        raise OdflowError(f"{path}: record {index} is truncated (file cut short?)")
    return data


def iter_serialized(path: str) -> Iterator[bytes]:
    """The raw records of one file, by reading the TFRecord framing (no TensorFlow needed).

    Framing: uint64 length, uint32 masked CRC of the length, the data, uint32 masked CRC of
    the data (little endian).  The CRCs are not verified here; TensorFlow's own reader does
    that when training reads the file.
    """
    with open(path, "rb") as handle:
        index = 0
        while True:
            header = handle.read(12)
            if not header:
                return
            if len(header) != 12:
                raise OdflowError(f"{path}: record {index} is truncated (file cut short?)")
            (length,) = struct.unpack("<Q", header[:8])
            data = _read_exact(handle, length, path, index)
            _read_exact(handle, 4, path, index)
            yield data
            index += 1


def _count_file(path: str) -> int:
    size = os.path.getsize(path)
    count = 0
    offset = 0
    with open(path, "rb") as handle:
        while offset < size:
            header = handle.read(12)
            if len(header) != 12:
                raise OdflowError(f"{path}: record {count} is truncated (file cut short?)")
            (length,) = struct.unpack("<Q", header[:8])
            offset += 12 + length + 4
            if offset > size:
                raise OdflowError(f"{path}: record {count} is truncated (file cut short?)")
            handle.seek(offset)
            count += 1
    return count


def count_examples(paths: str | os.PathLike | Sequence[str | os.PathLike], *,
                   allow_empty: bool = False) -> int:
    """Number of records in the files (patterns as ``expand_record_paths``), skipping the data.

    No record at all is an ``OdflowError`` naming the files (unless ``allow_empty``): an empty
    training or validation set would otherwise reach training, which would wait for data
    that never comes, or evaluation, which would report nothing.
    """
    files = expand_record_paths(paths)
    total = sum(_count_file(p) for p in files)
    if total == 0 and not allow_empty:
        raise OdflowError(f"{', '.join(files)}: 0 records (examples) in {len(files)} file"
                          f"{'s' if len(files) > 1 else ''}; an empty set cannot train or be "
                          "evaluated. Rebuild the records, or point input_path "
                          "(dataset.tfrecord in config.yaml) at record files that hold images")
    return total


def iter_examples(paths: str | os.PathLike | Sequence[str | os.PathLike]
                  ) -> Iterator[DecodedExample]:
    """Every record of the files decoded to numpy, file by file in sorted order.

    Memory stays flat (one record at a time).  A record that is not a valid example raises
    ``OdflowError`` naming the file and the record's index.
    """
    for path in expand_record_paths(paths):
        for index, serialized in enumerate(iter_serialized(path)):
            yield ex.decode_example(serialized, f"{path}: record {index}")


def parse_example_tensors(serialized) -> dict:
    """Decode one serialised example to tensors; for ``tf.data.Dataset.map`` (graph mode).

    Returns ``image`` uint8 [H, W, 3], ``source_id``/``filename`` string, ``height``/``width``
    int32 (of the decoded image), ``groundtruth_boxes`` float32 [N, 4] (ymin, xmin, ymax, xmax),
    ``groundtruth_classes`` int32 [N], ``groundtruth_difficult`` and ``groundtruth_is_crowd``
    int32 [N] (0 where the record has no such flags).
    """
    import tensorflow as tf

    spec = {
        ex.ENCODED: tf.io.FixedLenFeature([], tf.string),
        ex.SOURCE_ID: tf.io.FixedLenFeature([], tf.string, default_value=""),
        ex.FILENAME: tf.io.FixedLenFeature([], tf.string, default_value=""),
        ex.YMIN: tf.io.VarLenFeature(tf.float32),
        ex.XMIN: tf.io.VarLenFeature(tf.float32),
        ex.YMAX: tf.io.VarLenFeature(tf.float32),
        ex.XMAX: tf.io.VarLenFeature(tf.float32),
        ex.CLASS_LABEL: tf.io.VarLenFeature(tf.int64),
        ex.DIFFICULT: tf.io.VarLenFeature(tf.int64),
        ex.IS_CROWD: tf.io.VarLenFeature(tf.int64),
    }
    parsed = tf.io.parse_single_example(serialized, spec)
    image = tf.io.decode_image(parsed[ex.ENCODED], channels=3, expand_animations=False)
    image.set_shape([None, None, 3])
    image = tf.cast(image, tf.uint8)

    def dense(key: str):
        return tf.sparse.to_dense(parsed[key])

    boxes = tf.stack([dense(ex.YMIN), dense(ex.XMIN), dense(ex.YMAX), dense(ex.XMAX)], axis=1)
    boxes = tf.reshape(boxes, [-1, 4])
    classes = tf.cast(dense(ex.CLASS_LABEL), tf.int32)
    num_boxes = tf.shape(boxes)[0]

    def flags(key: str):
        # Absent flags (most sources) become zeros; the pad/slice keeps [N] without a tf.cond.
        values = tf.cast(dense(key), tf.int32)
        return tf.pad(values, [[0, tf.maximum(num_boxes - tf.size(values), 0)]])[:num_boxes]

    shape = tf.shape(image)
    return {
        "image": image,
        "source_id": parsed[ex.SOURCE_ID],
        "filename": parsed[ex.FILENAME],
        "height": tf.cast(shape[0], tf.int32),
        "width": tf.cast(shape[1], tf.int32),
        "groundtruth_boxes": boxes,
        "groundtruth_classes": classes,
        "groundtruth_difficult": flags(ex.DIFFICULT),
        "groundtruth_is_crowd": flags(ex.IS_CROWD),
    }
