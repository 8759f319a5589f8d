"""Name-based checkpoints ``model.ckpt-<step>`` and the ``checkpoint`` state file, as TF1 wrote.

One home for the format, below every user of it: training writes, resumes and prunes these,
evaluation and export read them, fine-tuning restores the zoo's; ``find_checkpoint`` is the one
way a path the user gave (prefix, ``.index``, data file or directory) becomes a prefix.

TF2's object-based ``tf.train.Checkpoint`` keys variables by object path
(``model/layer/.ATTRIBUTES/VARIABLE_VALUE``), which neither TF1 users nor the zoo tools
recognise.  We write plain tensor bundles with ``SaveV2`` keyed by the zoo's variable names, so
``tf.train.list_variables`` and ``tf.train.load_checkpoint`` read them and the names read like the
API's own training checkpoints (``V``, ``V/RMSProp``, ``V/ExponentialMovingAverage``, ``global_step``).

Crash safety: a bundle is written under a temporary prefix and its files renamed into place
(data first, index last, since readers look for the index); only then does the state file,
itself replaced atomically, point at it.  A crash at any moment leaves the state file naming the
previous complete checkpoint.  A full disk is one such crash: the save removes what it had
written and raises an ``OdflowError`` naming the checkpoint (TF reports it as a
``ResourceExhaustedError`` traceback, which says neither what was being saved nor what to do).
"""

from __future__ import annotations

import errno
import glob
import logging
import os
import re
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import tensorflow as tf

from odflow.errors import OdflowError
from odflow.utils.atomic import atomic_write_text

log = logging.getLogger(__name__)

PREFIX = "model.ckpt"
STATE_FILE = "checkpoint"
DATA_SUFFIX = ".data-00000-of-00001"
_STEP_RE = re.compile(r"model\.ckpt-(\d+)$")
_STATE_LINE_RE = re.compile(r'^\s*(\w+)\s*:\s*"((?:[^"\\]|\\.)*)"\s*$')


def checkpoint_files(prefix: str | os.PathLike) -> list[Path]:
    return [Path(f"{prefix}.index"), Path(f"{prefix}{DATA_SUFFIX}")]


def checkpoint_exists(prefix: str | os.PathLike) -> bool:
    return all(path.is_file() for path in checkpoint_files(prefix))


def _data_files(prefix: str | os.PathLike) -> list[Path]:
    """The data shards of ``prefix`` (ours and the zoo's have one; TF may write several)."""
    prefix = Path(prefix)
    return sorted(prefix.parent.glob(f"{glob.escape(prefix.name)}.data-*-of-*"))


def checkpoint_problem(prefix: str | os.PathLike) -> str | None:
    """Why the checkpoint at ``prefix`` cannot be restored, ``None`` when it looks intact.

    Catches what a crash or a full disk leaves: missing files, an unreadable index, and data
    files shorter than the tensors the index lists (a truncated copy).  Checksums are verified
    by TensorFlow when the tensors are read.
    """
    index, data = checkpoint_files(prefix)
    shards = _data_files(prefix)
    missing = [str(p) for p, present in ((index, index.is_file()), (data, bool(shards)))
               if not present]
    if missing:
        return f"{' and '.join(missing)} missing"
    try:
        reader = tf.train.load_checkpoint(str(prefix))
    except (tf.errors.OpError, ValueError) as error:
        return f"{index} is unreadable ({str(error).strip().splitlines()[0]})"
    shapes = reader.get_variable_to_shape_map()
    dtypes = reader.get_variable_to_dtype_map()
    # Variable-length (string) tensors, such as a TF2 checkpoint's object graph, have no size
    # to add: the fixed-size tensors alone give a lower bound, enough to catch a cut copy.
    needed = sum(int(np.prod(shape, dtype=np.int64)) * dtypes[name].size
                 for name, shape in shapes.items() if dtypes[name] != tf.string)
    size = sum(shard.stat().st_size for shard in shards)
    if size < needed:
        names = " + ".join(str(shard) for shard in shards)
        return f"{names} is truncated ({size} bytes; its index lists {needed})"
    return None


def step_of(prefix: str | os.PathLike) -> int | None:
    """The step in a ``model.ckpt-<step>`` prefix, ``None`` for other names (the zoo's ``model.ckpt``)."""
    match = _STEP_RE.search(Path(prefix).name)
    return int(match.group(1)) if match else None


#: errno values of a full disk or an exhausted quota.
_NO_SPACE_ERRNOS = (errno.ENOSPC, errno.EDQUOT)


def is_no_space(error: BaseException) -> bool:
    """Whether ``error`` is a full disk (or quota) while writing: TF's or the OS's.

    TF turns ENOSPC into a ``ResourceExhaustedError`` whose message ends in strerror's text;
    the same class also means out of memory ("OOM when allocating"), hence the text test.
    """
    if isinstance(error, tf.errors.OpError):
        return any(os.strerror(code) in error.message for code in _NO_SPACE_ERRNOS)
    return isinstance(error, OSError) and error.errno in _NO_SPACE_ERRNOS


def no_space_error(prefix: str | os.PathLike, error: BaseException) -> OdflowError:
    """The message for a save that ran out of disk space."""
    detail = error.message if isinstance(error, tf.errors.OpError) else error
    return OdflowError(f"no space left on device while saving {prefix}; free space and rerun "
                       f"[{str(detail).strip()}]")


def write_bundle(prefix: str | os.PathLike, tensors: dict[str, tf.Tensor | np.ndarray]) -> None:
    """Write ``tensors`` as one name-based bundle at ``prefix``, all-or-nothing.

    A full disk raises ``OdflowError`` ("no space left on device while saving <prefix>"),
    with no file of the new bundle left behind.
    """
    prefix = Path(prefix)
    prefix.parent.mkdir(parents=True, exist_ok=True)
    tmp = prefix.parent / f".{prefix.name}.tmp-{uuid.uuid4().hex[:8]}"
    names = sorted(tensors)
    try:
        with tf.device("/cpu:0"):
            values = [tf.convert_to_tensor(tensors[name]) for name in names]
            tf.raw_ops.SaveV2(prefix=str(tmp), tensor_names=names,
                              shape_and_slices=[""] * len(names), tensors=values)
        # Readers find a checkpoint by its index: put the data in place first.
        os.replace(f"{tmp}{DATA_SUFFIX}", f"{prefix}{DATA_SUFFIX}")
        os.replace(f"{tmp}.index", f"{prefix}.index")
    except (tf.errors.OpError, OSError) as error:
        if not is_no_space(error):
            raise
        raise no_space_error(prefix, error) from None
    finally:
        for leftover in prefix.parent.glob(f"{tmp.name}*"):
            leftover.unlink(missing_ok=True)


def read_bundle(prefix: str | os.PathLike) -> dict[str, np.ndarray]:
    """Every tensor of a name-based checkpoint, by name."""
    if not checkpoint_exists(prefix):
        raise OdflowError(f"checkpoint {prefix} not found: expected {prefix}.index and "
                          f"{prefix}{DATA_SUFFIX}")
    reader = tf.train.load_checkpoint(str(prefix))
    return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()}


# -- the state file -----------------------------------------------------------------------------


@dataclass
class CheckpointState:
    """The ``checkpoint`` text proto: the latest prefix and the ones still kept (oldest first)."""

    latest: str | None = None
    all_paths: list[str] = field(default_factory=list)

    def render(self) -> str:
        lines = []
        if self.latest:
            lines.append(f'model_checkpoint_path: "{_escape(self.latest)}"')
        lines += [f'all_model_checkpoint_paths: "{_escape(p)}"' for p in self.all_paths]
        return "\n".join(lines) + "\n"


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def _unescape(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text)


def read_state(directory: str | os.PathLike) -> CheckpointState | None:
    """The state file of ``directory``; ``None`` when there is none."""
    path = Path(directory) / STATE_FILE
    if not path.is_file():
        return None
    state = CheckpointState()
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        match = _STATE_LINE_RE.match(line)
        if not match:
            if re.match(r"^\s*(all_model_checkpoint_timestamps|last_preserved_timestamp)\s*:",
                        line):
                continue  # written by TF2's CheckpointManager; irrelevant here
            raise OdflowError(f"{path}:{number}: cannot read this line of the checkpoint state "
                              f"file: {line.strip()!r}; delete the file to start over")
        key, value = match.group(1), _unescape(match.group(2))
        if key == "model_checkpoint_path":
            state.latest = value
        elif key == "all_model_checkpoint_paths":
            state.all_paths.append(value)
    return state


def _resolve(directory: Path, path: str) -> Path:
    return Path(path) if os.path.isabs(path) else directory / path


def latest_checkpoint(directory: str | os.PathLike) -> str | None:
    """The prefix the state file of ``directory`` names, ``None`` when there is no state file.

    When that checkpoint's files are gone (Snakemake deletes a rule's declared output, the
    final ``.index``, before rerunning it) or damaged (a truncated data file), the newest intact
    one the state file still lists is used, with a warning.  When none is intact it is an error:
    silently starting over from step 0 is what users of the API complained about.
    """
    directory = Path(directory)
    state = read_state(directory)
    if state is None or not state.latest:
        return None
    prefix = _resolve(directory, state.latest)
    problem = checkpoint_problem(prefix)
    if problem is None:
        return str(prefix)
    for older in reversed(state.all_paths):
        candidate = _resolve(directory, older)
        if candidate != prefix and checkpoint_problem(candidate) is None:
            log.warning("%s names %s, but %s; using %s, the newest intact checkpoint it lists",
                        directory / STATE_FILE, state.latest, problem, candidate)
            return str(candidate)
    raise OdflowError(f"{directory / STATE_FILE} names {state.latest!r} but {problem} (and no "
                      "older checkpoint it lists is intact); restore the files, or move the "
                      "state file away to start from scratch")


# -- finding the checkpoint a path means ---------------------------------------------------------


def find_checkpoint(path: str | os.PathLike, *, what: str | None = None) -> str:
    """The intact checkpoint prefix that ``path`` means.

    ``path`` is a prefix (``ckpt/model.ckpt-1000``), its ``.index`` or data file, or a directory:
    the latest checkpoint its state file names (as ``latest_checkpoint``), else its only
    ``*.index``.  Errors name ``what`` (the flag the path came from, when given) and list the
    checkpoints that are there, so a typo in the step is fixed from the message.
    """
    text = str(path)
    flag = f"{what}: " if what else ""
    candidate = Path(text)
    if candidate.is_dir():
        return _in_directory(candidate, flag)
    prefix = text
    if text.endswith(".index"):
        prefix = text[: -len(".index")]
    elif ".data-" in candidate.name:
        prefix = text[: text.rindex(".data-")]
    index = Path(f"{prefix}.index")
    if not index.is_file():
        raise OdflowError(f"{flag}checkpoint {text} does not exist (no file {index}); "
                          f"{_available(index.parent)}")
    problem = checkpoint_problem(prefix)
    if problem is not None:
        raise OdflowError(f"{flag}checkpoint {prefix} is incomplete or damaged: {problem}; "
                          "write it again (train, or copy all of its files) or give another "
                          "checkpoint")
    return prefix


def _in_directory(directory: Path, flag: str) -> str:
    latest = latest_checkpoint(directory)
    if latest is not None:
        return latest
    found = checkpoints_in(directory)
    if len(found) == 1:
        return find_checkpoint(directory / found[0])
    if not found:
        raise OdflowError(f"{flag}no checkpoint in {directory}: it has no '{STATE_FILE}' "
                          "state file and no *.index file; train first, or give a prefix")
    raise OdflowError(f"{flag}{directory} holds {len(found)} checkpoints and no "
                      f"'{STATE_FILE}' state file; {_available(directory)}")


def checkpoints_in(directory: Path) -> list[str]:
    """Prefixes of the checkpoints in ``directory`` (those with an ``.index`` file), by step."""
    if not directory.is_dir():
        return []
    prefixes = [path.name[: -len(".index")] for path in directory.glob("*.index")]
    return sorted(prefixes, key=_natural_key)


def _natural_key(name: str) -> list:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def _available(directory: Path) -> str:
    found = checkpoints_in(directory)
    if not found:
        return f"there are no checkpoints (*.index) in {directory}/"
    return (f"checkpoints in {directory}/: {', '.join(found)}; give one of them, e.g. "
            f"{directory / found[-1]}")


class CheckpointManager:
    """Saves ``model.ckpt-<step>`` into ``directory``, keeps the last ``max_to_keep``."""

    def __init__(self, directory: str | os.PathLike, max_to_keep: int = 5):
        if max_to_keep < 1:
            raise OdflowError(f"--keep_checkpoint_max must be at least 1, got {max_to_keep}")
        self.directory = Path(directory)
        self.max_to_keep = max_to_keep
        state = read_state(self.directory) or CheckpointState()
        self._kept = [p for p in state.all_paths
                      if checkpoint_exists(_resolve(self.directory, p))]

    def save(self, tensors: dict[str, tf.Tensor | np.ndarray], step: int) -> str:
        """Write the checkpoint for ``step``, point the state file at it, prune old ones."""
        name = f"{PREFIX}-{int(step)}"
        prefix = self.directory / name
        listed_before = any(_resolve(self.directory, p) == prefix for p in self._kept)
        write_bundle(prefix, tensors)
        kept = [p for p in self._kept if _resolve(self.directory, p) != prefix] + [name]
        dropped, kept = kept[:-self.max_to_keep], kept[-self.max_to_keep:]
        try:
            atomic_write_text(self.directory / STATE_FILE,
                              CheckpointState(latest=name, all_paths=kept).render())
        except OSError as error:
            if not is_no_space(error):
                raise
            # The state file still names the previous checkpoint: take the new one away too
            # (unless the state file already listed it), so the folder is as it was.
            if not listed_before:
                for path in checkpoint_files(prefix):
                    path.unlink(missing_ok=True)
            raise no_space_error(prefix, error) from None
        self._kept = kept
        for old in dropped:  # only after the state file no longer names them
            for path in checkpoint_files(_resolve(self.directory, old)):
                path.unlink(missing_ok=True)
        log.info("saved checkpoint %s", prefix)
        return str(prefix)


def assign_from(prefix: str | os.PathLike, variables: dict[str, tf.Variable], *,
                required: bool = True) -> list[str]:
    """Assign each variable the checkpoint tensor of the same name; return the names missing.

    ``required`` variables missing, or any shape mismatch, are an error naming the variable:
    the checkpoint belongs to a different model (num_classes or depth changed).
    """
    reader = tf.train.load_checkpoint(str(prefix))
    shapes = reader.get_variable_to_shape_map()
    missing = []
    for name, variable in variables.items():
        if name not in shapes:
            missing.append(name)
            continue
        if list(shapes[name]) != list(variable.shape):
            raise OdflowError(f"checkpoint {prefix}: {name} has shape {shapes[name]} but the "
                              f"model built from the config has {list(variable.shape)}; the "
                              "config changed since this checkpoint was written (use a new "
                              "model_dir)")
        variable.assign(reader.get_tensor(name))
    if required and missing:
        raise OdflowError(f"checkpoint {prefix} lacks {len(missing)} variable(s) of the model "
                          f"(first: {missing[0]}); it was written for another model")
    return missing
