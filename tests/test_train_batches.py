"""Batches that never hang training; data errors naming the image and the record file."""

from __future__ import annotations

import io
import logging
import threading
import time

import numpy as np
import pytest
from PIL import Image

from odflow.errors import OdflowError
from odflow.train.batches import BatchSource, data_error
from odflow.train.cli import main
from tests.support.training import make_config, make_records, write_config


@pytest.fixture(autouse=True)
def _restore_logging():
    """``main`` points the root logger at the captured stderr of the test that ran it, which
    is closed afterwards: drop such handlers (not pytest's own subclasses) around each test."""
    handlers = [h for h in logging.root.handlers
                if type(h) not in (logging.StreamHandler, logging.FileHandler)]
    logging.root.handlers[:] = handlers
    yield
    logging.root.handlers[:] = handlers

def test_stop_request_ends_a_wait_for_data_that_never_comes():
    never = threading.Event()

    def blocked():
        never.wait()  # a pipeline that yields nothing
        yield None

    stop = threading.Event()
    source = BatchSource(blocked(), ["x.record"], stop.is_set, poll=0.05)
    threading.Timer(0.3, stop.set).start()
    started = time.monotonic()
    assert source.next_batch() is None
    assert time.monotonic() - started < 5  # not forever


def test_batches_end_and_errors_reach_the_caller():
    source = BatchSource(iter([1, 2]), ["x.record"], lambda: False)
    assert [source.next_batch(), source.next_batch()] == [1, 2]
    with pytest.raises(StopIteration):
        source.next_batch()

    def failing():
        yield 1
        raise ValueError("boom")

    source = BatchSource(failing(), ["x.record"], lambda: False)
    assert source.next_batch() == 1
    with pytest.raises(ValueError, match="boom"):
        source.next_batch()


def _corrupt_jpeg() -> bytes:
    """A JPEG whose header and end marker are intact but whose scan data is garbage."""
    pixels = np.random.default_rng(0).integers(0, 255, (120, 100, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=90)
    data = buffer.getvalue()
    return data[:600] + b"\xff\x00" * ((len(data) - 602) // 2) + b"\xff\xd9"


def _records_with_a_corrupt_image(path, count=5, bad=3):
    from odflow.data.example import ImageAnnotation
    from odflow.data.records import RecordWriter, iter_serialized

    good = tmp = path.with_suffix(".good")
    make_records(good, count)
    with RecordWriter(path) as writer:
        for index, serialized in enumerate(iter_serialized(str(tmp))):
            if index == bad:
                writer.write(ImageAnnotation(
                    encoded=_corrupt_jpeg(), image_format="jpeg", filename="broken.jpg",
                    source_id="broken-id", height=120, width=100,
                    boxes=np.array([[0.1, 0.1, 0.5, 0.5]]), class_texts=["thing"],
                    class_ids=[1]))
            else:
                writer.write_serialized(serialized)
    good.unlink()
    return path


def test_corrupt_image_is_named_with_its_record_file(tmp_path):
    import tensorflow as tf

    from odflow.inputs import build_dataset

    path = _records_with_a_corrupt_image(tmp_path / "train.record")

    cfg = make_config(tmp_path, with_eval=False)
    reader = cfg.train_input_reader
    reader.tf_record_input_reader.input_path[0] = str(path)
    dataset = build_dataset(reader, model_config=cfg.model, batch_size=2, is_training=True,
                            seed=0)
    source = BatchSource(iter(dataset), [str(path)], lambda: False)
    with pytest.raises(OdflowError) as caught:
        for _ in range(10):
            source.next_batch()
    message = str(caught.value)
    assert message == (
        f"train_input_reader: {path}: record 3 (image 'broken.jpg'): image cannot be decoded "
        "(jpeg::Uncompress failed. Invalid JPEG data or crop window.). Replace or drop the "
        "image(s) and rebuild the records (`python scripts/create_records.py validate --decode "
        "<file.record>` lists every problem)")
    generic = data_error([str(tmp_path / "train.record.good.missing")],
                         tf.errors.DataLossError(None, None, "corrupted record at 12"), "x")
    assert "corrupted record at 12" in str(generic)


def test_empty_training_records_fail_at_once_without_traceback(tmp_path, capsys):
    config = write_config(tmp_path)
    (tmp_path / "train.record").write_bytes(b"")
    started = time.monotonic()
    code = main(["--model_dir", str(tmp_path / "ckpt"), "--pipeline_config_path", str(config)])
    err = capsys.readouterr().err
    assert code == 2 and time.monotonic() - started < 30
    assert f"train_input_reader: the record file(s) {tmp_path / 'train.record'} hold no " \
           "examples" in err
    assert "Traceback" not in err


def test_empty_eval_records_fail_before_training(tmp_path, capsys):
    config = write_config(tmp_path)
    (tmp_path / "val.record").write_bytes(b"")
    code = main(["--model_dir", str(tmp_path / "ckpt"), "--pipeline_config_path", str(config)])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert f"eval_input_reader: the record file(s) {tmp_path / 'val.record'} hold no" in err


@pytest.mark.slow
def test_records_too_few_for_one_batch_fail_at_once(tmp_path):
    from odflow import config as config_lib
    from odflow.train.loop import TrainOptions, train

    cfg = make_config(tmp_path, num_train=3, batch_size=4, with_eval=False)
    cfg.train_input_reader.num_epochs = 1
    path = tmp_path / "pipeline.config"
    config_lib.save(cfg, path)
    with pytest.raises(OdflowError, match=r"gave no batch of train_config.batch_size 4 "
                                          r"\(train_input_reader.num_epochs 1\)"):
        train(TrainOptions(model_dir=str(tmp_path / "ckpt"), pipeline_config_path=str(path),
                           eval_every=-1, seed=1, show_progress_bar=False))
