"""Keep TensorFlow's C++ start-up chatter out of the user's console.

Every job would otherwise open with TensorFlow's native log lines, among them
``E0000 ... failed call to cuInit: ... UNKNOWN ERROR (303)`` on any machine without a GPU,
which reads like a failure although CPU training is what the user asked for.  Some of these
lines are written before TensorFlow reads ``TF_CPP_MIN_LOG_LEVEL`` (absl's "before
InitializeLog" buffer), so the level alone does not hide them: the import itself runs with
the process's stderr pointed at /dev/null.  A user who sets ``TF_CPP_MIN_LOG_LEVEL`` gets
TensorFlow's own behaviour untouched.  Python-level errors are unaffected: an exception
raised by the import is re-raised after stderr is restored.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.machinery
import os
import sys
from collections.abc import Iterator

QUIET_LEVEL = "3"  # hides INFO, WARNING and ERROR lines of TensorFlow's C++ logging


@contextlib.contextmanager
def stderr_silenced() -> Iterator[None]:
    """Point file descriptor 2 at /dev/null for the duration (C++ writes bypass sys.stderr)."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no usable stderr: nothing to silence
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


class _QuietLoader(importlib.abc.Loader):
    def __init__(self, loader: importlib.abc.Loader) -> None:
        self._loader = loader

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module) -> None:
        with stderr_silenced():
            self._loader.exec_module(module)


class _QuietTensorflowFinder(importlib.abc.MetaPathFinder):
    """Finds ``tensorflow`` as usual, then runs its import with stderr silenced."""

    def find_spec(self, fullname, path, target=None):
        if fullname != "tensorflow":
            return None
        sys.meta_path.remove(self)  # one import only; later ones are cached
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is not None and spec.loader is not None:
            spec.loader = _QuietLoader(spec.loader)
        return spec


def quiet_tensorflow_startup() -> None:
    """Default ``TF_CPP_MIN_LOG_LEVEL`` and silence the import, unless the user chose a level."""
    if "TF_CPP_MIN_LOG_LEVEL" in os.environ:
        return
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = QUIET_LEVEL
    if "tensorflow" not in sys.modules and not any(
            isinstance(finder, _QuietTensorflowFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, _QuietTensorflowFinder())
