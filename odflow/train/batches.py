"""Training batches that never hang the process, and data errors that name the bad image.

Python runs signal handlers only between bytecodes of the main thread, so while the main thread
waits inside ``next(iterator)`` (a tf.data pipeline filling its shuffle buffer, or spinning over
records that hold nothing) Ctrl+C and SIGTERM did nothing.  ``BatchSource`` takes batches from a
daemon thread and waits for them in short slices, checking the stop request in between.

When the pipeline fails (``jpeg::Uncompress failed``, a corrupt record), TensorFlow's message
names neither the image nor the file.  ``data_error`` finds the records whose image does not
decode (``odflow.data.inspect.find_undecodable``, the decoder training uses) and names them.
"""

from __future__ import annotations

import logging
import os
import queue
import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence

import tensorflow as tf

from odflow.errors import OdflowError

log = logging.getLogger(__name__)

#: How many undecodable images an error message lists.
MAX_LISTED = 5


def check_not_empty(paths: Sequence[str], field: str) -> None:
    """All of a reader's record files empty: an error now, rather than a pipeline that spins."""
    if paths and all(os.path.getsize(p) == 0 for p in paths):
        raise OdflowError(f"{field}: the record file(s) {', '.join(paths)} hold no examples; "
                          "rebuild them (the dataset gave 0 images?) or point "
                          f"{field}.tf_record_input_reader.input_path at records with examples")


class BatchSource:
    """``next_batch()`` waits for the next batch while staying responsive to ``should_stop``."""

    def __init__(self, iterator: Iterator, record_files: Sequence[str],
                 should_stop: Callable[[], bool], warn_after: float = 60.0, poll: float = 0.2,
                 threaded: bool = True):
        """``threaded=False`` fetches in the caller's thread: a multi-worker iterator runs
        collective ops (do all workers still have data?), which must be issued in the same
        order as the training step's on every worker, so not from a thread of their own."""
        self.record_files = list(record_files)
        self.should_stop = should_stop
        self.warn_after = warn_after
        self.poll = poll
        self._queue: queue.Queue = queue.Queue(maxsize=1)
        if threaded:
            self._thread = threading.Thread(target=self._fetch, args=(iterator,), daemon=True,
                                            name="odflow-batches")
            self._thread.start()
        else:
            self._iterator = iterator
            self._thread = None

    def _fetch(self, iterator: Iterator) -> None:
        while self._fetch_one(iterator):
            pass

    def _fetch_one(self, iterator: Iterator) -> bool:
        """Queue the next batch (or the end, or the error); whether there may be more."""
        try:
            item = ("batch", next(iterator))
        except StopIteration:
            self._queue.put(("end", None))
            return False
        except Exception as error:  # noqa: BLE001 - handed to the main thread
            self._queue.put(("error", error))
            return False
        self._queue.put(item)
        return True

    def next_batch(self):
        """The next batch; ``None`` when a stop was requested first.

        Raises ``StopIteration`` at the end of the data and ``OdflowError`` for a data error.
        """
        if self._thread is None:
            if self.should_stop():
                return None
            self._fetch_one(self._iterator)
        started = time.monotonic()
        warned = False
        while True:
            if self.should_stop():
                return None
            try:
                kind, value = self._queue.get(timeout=self.poll)
            except queue.Empty:
                waited = time.monotonic() - started
                if not warned and waited >= self.warn_after:
                    log.warning("no training batch for %.0f s from %s; still waiting (Ctrl+C "
                                "stops)", waited, ", ".join(self.record_files))
                    warned = True
                continue
            if kind == "batch":
                return value
            if kind == "end":
                raise StopIteration
            if isinstance(value, tf.errors.OpError):
                raise data_error(self.record_files, value, "train_input_reader") from None
            raise value


def first_line(error: tf.errors.OpError) -> str:
    """TensorFlow's message, first line, without the ``{{function_node ...}}`` decoration."""
    text = (error.message or type(error).__name__).strip()
    text = re.sub(r"^\{\{function_node [^}]*\}\}\s*", "", text)
    text = text.splitlines()[0] if text else type(error).__name__
    return re.sub(r"\s*\[Op:[^\]]*\].*$", "", text)  # eager mode's "[Op:DecodeImage] name:"


def data_error(paths: Sequence[str], error: tf.errors.OpError, field: str) -> OdflowError:
    """An ``OdflowError`` for a failed input pipeline, naming the bad images when it can."""
    first = first_line(error)
    log.info("reading %s failed (%s); looking for the record that causes it", field, first)
    from odflow.data.inspect import find_undecodable

    try:
        bad = find_undecodable(list(paths), limit=MAX_LISTED + 1)
    except OdflowError as problem:  # e.g. a truncated record file
        return OdflowError(f"{field}: {problem} (TensorFlow: {first})")
    if bad:
        listed = "; ".join(bad[:MAX_LISTED])
        more = " (and more)" if len(bad) > MAX_LISTED else ""
        return OdflowError(
            f"{field}: {listed}{more}. Replace or drop the image(s) and rebuild the records "
            "(`python scripts/create_records.py validate --decode <file.record>` lists every "
            "problem)")
    return OdflowError(f"{field}: reading the records {', '.join(paths)} failed: {first}; "
                       "check or rebuild them (`python scripts/create_records.py validate "
                       "--decode <file.record>`)")
