"""The training run: resume or fine-tune, step until ``num_steps``, save, evaluate.

What a run does, in order: read the config; lock ``model_dir`` and clean what a killed run
left there; compare what the existing checkpoints were trained on (``fingerprint.json``) with
the current inputs: the same, resume; different, move them to ``superseded/<time>/`` and start
again (``--resume``/``--restart`` force either).  If the latest checkpoint is at ``num_steps``
there is nothing to do (below it: the kept checkpoint of that step, else an error); otherwise
build the model under the distribution strategy, restore the latest checkpoint (or, when
starting fresh, the fine-tune checkpoint), and step.  Checkpoints are saved every N steps or M
minutes, at the end, and when SIGINT/SIGTERM asks to stop (also while waiting for data);
evaluations run every ``eval_every`` steps and at the end.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import tensorflow as tf

from odflow import checkpoints
from odflow import config as config_lib
from odflow.anchors.measure import log_coverage as log_anchor_coverage
from odflow.errors import OdflowError
from odflow.train import evaluate as evaluation
from odflow.train import fingerprint, workdir
from odflow.train.batches import BatchSource, check_not_empty, first_line
from odflow.train.best import BestCheckpoint
from odflow.train.ema import swapped_in
from odflow.train.progress import ConsoleLine, Progress
from odflow.train.signals import Interrupted, stop_on_signals
from odflow.train.state import TrainingState
from odflow.train.step import LEARNING_RATE, build_train_step
from odflow.train.strategy import Placement, make_strategy
from odflow.train.summaries import SummaryWriter

log = logging.getLogger("odflow.train")

# TrainConfig fields that tuned TF1's queue-based input or distributed runtime; tf.data and
# tf.distribute replace them, so they are ignored (they do not change what is learned).
_IGNORED_TRAIN_FIELDS = ("keep_checkpoint_every_n_hours", "startup_delay_steps",
                         "batch_queue_capacity", "num_batch_queue_threads",
                         "prefetch_queue_capacity", "unpad_groundtruth_tensors",
                         "retain_original_images", "run_fine_tune_checkpoint_dummy_computation",
                         "replicas_to_aggregate",
                         # TF1's SyncReplicasOptimizer averaged the workers' gradients each
                         # step; odflow's (tf.distribute) training is synchronous already.
                         "sync_replicas")
# TrainConfig fields that would change training and that odflow does not implement.
_UNSUPPORTED_TRAIN_FIELDS = {
    "bias_grad_multiplier": "a separate gradient multiplier for biases",
    "use_multiclass_scores": "multiclass score targets",
    "merge_multiple_label_boxes": "merging boxes with several labels",
    "summarize_gradients": "gradient histograms",
}


@dataclass
class TrainOptions:
    model_dir: str
    pipeline_config_path: str
    num_train_steps: int | None = None
    eval_every: int = 0  # steps; 0 = only at the end, < 0 = never
    seed: int | None = None
    deterministic: bool = False
    log_every: int = 100
    keep_checkpoint_max: int = 5
    checkpoint_every_steps: int = 1000  # 0 = off
    checkpoint_every_minutes: float = 10.0  # 0 = off
    metrics_json: str | None = None
    best_metrics_json: str | None = None  # the best evaluation's metrics (odflow.train.best)
    show_progress_bar: bool | None = None  # None: when stderr is a terminal
    console: TextIO | None = None  # also a short progress line here every console_every s
    console_every: float = 10.0
    eval_backend: str = "faster"
    resume: bool = False  # resume even when the inputs changed
    restart: bool = False  # start again even when they did not
    strategy: str = "auto"  # train.strategy: auto, one_device, mirrored, multi_worker
    cpu_replicas: int = 1  # train.cpu_replicas: replicas on a GPU-less machine
    # The evaluations' NMS clips boxes first, as the zoo's 2018 graphs (postprocess.clip_before_nms)
    clip_before_nms: bool = False


@dataclass
class TrainResult:
    step: int
    checkpoint: str | None
    metrics: dict[str, float] | None


def check_train_config(train_config) -> None:
    """Reject train_config settings odflow does not implement, naming the field."""
    for field, what in _UNSUPPORTED_TRAIN_FIELDS.items():
        if getattr(train_config, field):
            raise OdflowError(f"train_config.{field}: {what} is not supported by odflow; "
                              "remove it")
    if train_config.use_bfloat16:
        # The TF2 zoo's TPU configs (EfficientDet, the *_tpu-8/-32 SSDs) all set it; their
        # weights and checkpoints are float32 either way, so training in float32 gives the
        # same model, only slower on a TPU.
        log.info("train_config.use_bfloat16: true is accepted but odflow trains in float32 "
                 "(bfloat16 is a TPU speed-up; the weights and checkpoints are float32 either way)")
    if not train_config.HasField("optimizer"):
        raise OdflowError("train_config.optimizer is not set; set rms_prop_optimizer, "
                          "momentum_optimizer or adam_optimizer")
    for field in _IGNORED_TRAIN_FIELDS:
        if train_config.HasField(field):
            log.info("train_config.%s is ignored (tf.data/tf.distribute tune this)", field)


_TF_SEED_MODULUS = 2**31 - 1
# The TF global seed used for --seed 0 (Python's and NumPy's generators still get 0).
_SEED_ZERO_STANDIN = 0x5EED0


def configure_determinism(seed: int | None, deterministic: bool) -> None:
    """Seed Python, NumPy and TF; with ``deterministic`` make TF's kernels deterministic too."""
    if deterministic and seed is None:
        raise OdflowError("--deterministic needs --seed (a run is only repeatable from a "
                          "fixed seed)")
    if seed is not None:
        tf.keras.utils.set_random_seed(seed)
        if seed % _TF_SEED_MODULUS == 0:
            # TF reduces the global seed modulo 2**31 - 1, and with a reduced global seed of 0
            # its get_seed compares the op seed with 0 in Python, which fails for the tensor
            # seeds of the training stream's per-epoch shuffles (odflow.inputs.pipeline).
            tf.random.set_seed(_SEED_ZERO_STANDIN)
    if deterministic:
        tf.config.experimental.enable_op_determinism()


def resolve_num_steps(config, num_train_steps: int | None) -> int:
    steps = config.train_config.num_steps if num_train_steps is None else num_train_steps
    if steps < 0:
        raise OdflowError(f"--num_train_steps must be >= 0 (0: train until stopped), got {steps}")
    return int(steps)


def resume_point(model_dir: str) -> tuple[str | None, int]:
    """The checkpoint to continue from and its step (``None``, 0 when starting fresh)."""
    prefix = checkpoints.latest_checkpoint(model_dir)
    if prefix is None:
        return None, 0
    step = checkpoints.step_of(prefix)
    if step is None:
        raise OdflowError(
            f"{Path(model_dir) / checkpoints.STATE_FILE} names {prefix}, which is not a training "
            "checkpoint model.ckpt-<step> (the model zoo's own 'checkpoint' file was probably "
            "copied too); delete that state file and set train_config.fine_tune_checkpoint "
            "to the zoo's model.ckpt instead")
    return prefix, step


def _check_inputs(config, with_eval: bool) -> None:
    """Missing records or readers are reported before the model is built."""
    from odflow.inputs import check_input_reader

    if not config.HasField("train_input_reader"):
        raise OdflowError("the config has no train_input_reader; add one with "
                          "tf_record_input_reader { input_path: \"train.record\" }")
    check_input_reader(config.train_input_reader, "train_input_reader", True)
    check_not_empty(evaluation.record_paths(config.train_input_reader, "train_input_reader"),
                    "train_input_reader")
    if with_eval:
        try:
            reader = evaluation.eval_reader(config)
        except OdflowError as error:
            raise OdflowError(f"{error} (or pass --eval_every -1 to train without "
                              "evaluating)") from None
        evaluation.check_eval_config(config)
        check_input_reader(reader, "eval_input_reader", False)
        check_not_empty(evaluation.record_paths(reader, "eval_input_reader"),
                        "eval_input_reader")


def _restore_fine_tune(state: TrainingState, train_config) -> None:
    path = train_config.fine_tune_checkpoint
    if not path:
        log.info("no fine_tune_checkpoint: training from randomly initialised weights")
        return
    checkpoint_type = train_config.fine_tune_checkpoint_type
    if not checkpoint_type:
        checkpoint_type = "detection" if train_config.from_detection_checkpoint \
            else "classification"
    from odflow.model.tf2_checkpoint import restore_for_version
    log.info("fine-tuning from %s (fine_tune_checkpoint_type %s)", path, checkpoint_type)
    # V2: the TF2 object-based reader, V1/unset: the name-based one.  Logs its report
    # (restored/skipped counts) and fails when nothing restores.
    restore_for_version(state.model, path, checkpoint_type,
                        train_config.fine_tune_checkpoint_version,
                        train_config.load_all_detection_checkpoint_vars)


def _train_dataset(config, seed: int | None, strategy: tf.distribute.Strategy, start: int):
    from odflow.inputs import build_dataset
    train_config = config.train_config
    dataset = build_dataset(config.train_input_reader, model_config=config.model,
                            augmentations=list(train_config.data_augmentation_options),
                            batch_size=train_config.batch_size, is_training=True,
                            max_number_of_boxes=train_config.max_number_of_boxes, seed=seed,
                            start=start)
    if strategy.num_replicas_in_sync > 1:
        if train_config.batch_size % strategy.num_replicas_in_sync:
            raise OdflowError(f"train_config.batch_size {train_config.batch_size} must be a "
                              f"multiple of the {strategy.num_replicas_in_sync} replicas")
        # Every worker reads the same shuffled stream and keeps its slice of each global
        # batch (sharding by file would need at least one record file per worker).
        options = tf.data.Options()
        options.experimental_distribute.auto_shard_policy = \
            tf.data.experimental.AutoShardPolicy.DATA
        return strategy.experimental_distribute_dataset(dataset.with_options(options))
    return dataset


class _SaveClock:
    """Decides when a periodic checkpoint is due (every N steps or M minutes)."""

    def __init__(self, every_steps: int, every_minutes: float):
        self.every_steps = every_steps
        self.every_seconds = every_minutes * 60.0
        self.last = time.monotonic()

    def due(self, step: int) -> bool:
        if self.every_steps > 0 and step % self.every_steps == 0:
            return True
        return self.every_seconds > 0 and time.monotonic() - self.last >= self.every_seconds

    def saved(self) -> None:
        self.last = time.monotonic()


def _check_fine_tune(train_config) -> None:
    """A wrong fine-tune path is reported before anything moves or minutes of model building."""
    if not train_config.fine_tune_checkpoint:
        return
    try:
        prefix = checkpoints.find_checkpoint(train_config.fine_tune_checkpoint)
    except OdflowError as error:
        raise OdflowError(f"train_config.fine_tune_checkpoint: {error}") from None
    from odflow.model.tf2_checkpoint import check_version
    check_version(prefix, train_config.fine_tune_checkpoint_version)


def decide_resume(model_dir: Path, config, options: TrainOptions) -> bool:
    """Whether the checkpoints in ``model_dir`` may be resumed; moves them away when not.

    Writes the current fingerprint either way, so the checkpoints saved from now on are
    labelled with what they are trained on.
    """
    stored = fingerprint.load(model_dir)
    current = fingerprint.compute(config, options.seed, stored,
                                  cpu_replicas=options.cpu_replicas)
    changed = fingerprint.changes(stored, current) if stored is not None else None
    if not workdir.has_checkpoints(model_dir):
        _check_fine_tune(config.train_config)
        if any(p.name != fingerprint.FILE_NAME for p in workdir.training_files(model_dir)):
            moved = workdir.supersede(model_dir)  # events of a run that saved no checkpoint
            log.info("starting from step 0: moved the events of an earlier run to %s", moved)
        fingerprint.save(model_dir, current)
        return False
    if options.restart:
        reason = "--restart was given"
    elif stored is None:
        reason = (f"there is no {fingerprint.FILE_NAME} beside them to tell what they were "
                  "trained on (an older odflow or another tool wrote them)")
    elif changed:
        reason = "changed since they were trained: " + "; ".join(changed)
    else:
        if stored != current:  # the same contents; refresh the cached file stats
            fingerprint.save(model_dir, current)
        return True
    if options.resume:
        log.warning("resuming the checkpoints in %s as --resume asks, although %s", model_dir,
                    reason)
        fingerprint.save(model_dir, current)
        return True
    _check_fine_tune(config.train_config)
    moved = workdir.supersede(model_dir)
    log.warning("not resuming the checkpoints in %s: %s. Moved them, the state file and the "
                "events to %s; training again from %s (--resume continues them instead)",
                model_dir, reason, moved,
                config.train_config.fine_tune_checkpoint or "random weights")
    fingerprint.save(model_dir, current)
    return False


def _below_latest(model_dir: Path, num_steps: int, latest: str, latest_step: int
                  ) -> TrainResult:
    """``num_steps`` was lowered below the latest checkpoint: that step's, if still kept."""
    kept = model_dir / f"{checkpoints.PREFIX}-{num_steps}"
    if checkpoints.checkpoint_problem(kept) is None:
        log.info("num_steps %d is below the latest checkpoint (step %d); using the kept "
                 "checkpoint %s", num_steps, latest_step, kept)
        return TrainResult(num_steps, str(kept), None)
    state = checkpoints.read_state(model_dir)
    listed = ", ".join(state.all_paths) if state else "none"
    aside = model_dir / workdir.SUPERSEDED / "manual"
    raise OdflowError(
        f"training is to end at step {num_steps} (--num_train_steps, else "
        f"train_config.num_steps), below step {latest_step} of the latest checkpoint {latest}, "
        f"and {kept} is not kept (kept: {listed}). Set the number of steps to {latest_step} "
        f"or more to continue this run; or train again from the fine-tune checkpoint to step "
        f"{num_steps}: pass --restart (the checkpoints then move to "
        f"{model_dir / workdir.SUPERSEDED}/), or, under Snakemake, move them there first: "
        f"mkdir -p {aside} && mv {model_dir / checkpoints.STATE_FILE} "
        f"{model_dir / checkpoints.PREFIX}-[0-9]* {aside}/")


def train(options: TrainOptions, strategy: tf.distribute.Strategy | None = None) -> TrainResult:
    """Train as configured; raises ``Interrupted`` (after saving) on SIGINT/SIGTERM.

    Of several workers (``train.strategy: multi_worker``) only the chief owns ``model_dir``:
    it takes the lock, clears leftovers, decides resume or restart, saves checkpoints, events
    and metrics; the others resume from what it decided and write nowhere.
    """
    if options.resume and options.restart:
        raise OdflowError("--resume and --restart contradict each other; pass one")
    # The strategy first: a multi-worker strategy must exist before any other TF op.
    placement = (make_strategy(options.strategy, options.cpu_replicas) if strategy is None
                 else Placement(strategy, "given", True, 1))
    config = config_lib.load(options.pipeline_config_path)
    check_train_config(config.train_config)
    num_steps = resolve_num_steps(config, options.num_train_steps)
    model_dir = Path(options.model_dir)
    if not placement.is_chief:
        return _train_locked(options, config, num_steps, model_dir, placement)
    model_dir.mkdir(parents=True, exist_ok=True)
    with workdir.TrainingLock(model_dir):
        workdir.remove_leftovers(model_dir)
        return _train_locked(options, config, num_steps, model_dir, placement)


def _barrier(placement: Placement) -> None:
    """Wait until every worker got here (one all-reduce); nothing to wait for with one."""
    if placement.num_workers > 1:
        _agreement(placement.strategy)(True)


def _agreement(strategy: tf.distribute.Strategy) -> Callable[..., tuple[bool, ...]]:
    """``agree(*flags)``: each flag OR-ed over every worker (one small all-reduce).

    Workers must take every branch together: a save reads the batch-norm statistics (a
    collective), so a save or a stop decided by one worker alone (its clock, its signal)
    would leave the others waiting in a collective that never pairs up.
    """
    @tf.function
    def total(flags: tf.Tensor) -> tf.Tensor:
        per_replica = strategy.run(tf.identity, args=(flags,))
        return strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica, axis=None)

    def agree(*flags: bool) -> tuple[bool, ...]:
        values = total(tf.constant([float(flag) for flag in flags], tf.float32)).numpy()
        return tuple(bool(value > 0) for value in values)

    return agree


def _train_locked(options: TrainOptions, config, num_steps: int, model_dir: Path,
                  placement: Placement) -> TrainResult:
    train_config = config.train_config
    chief = placement.is_chief
    evaluate_at_end = options.eval_every >= 0 and chief
    _check_inputs(config, evaluate_at_end)  # fail now rather than after hours of training
    resuming = decide_resume(model_dir, config, options) if chief else True
    _barrier(placement)  # the other workers look at model_dir once the chief has decided
    resume_prefix, start_step = resume_point(str(model_dir)) if resuming else (None, 0)
    if num_steps and start_step > num_steps:
        return _below_latest(model_dir, num_steps, resume_prefix, start_step)
    if num_steps and start_step == num_steps:
        log.info("%s is at step %d, num_steps is %d: nothing to do", resume_prefix, start_step,
                 num_steps)
        return TrainResult(start_step, resume_prefix, None)
    if chief:
        log_anchor_coverage(config)  # boxes no anchor can match are never positives
    configure_determinism(options.seed, options.deterministic)
    strategy = placement.strategy
    from odflow.model import builder
    with strategy.scope():
        model = builder.build_pipeline(config, is_training=True,
                                       clip_before_nms=options.clip_before_nms)
        state = TrainingState(model, train_config.optimizer, train_config)
    if resume_prefix is not None:
        try:
            state.restore(resume_prefix)
        except tf.errors.OpError as error:  # damaged inside, past the size check
            raise OdflowError(
                f"checkpoint {resume_prefix} cannot be read ({first_line(error)}); "
                f"move {resume_prefix}.* away to resume from the previous checkpoint, or pass "
                "--restart") from None
        log.info("resumed from %s at step %d", resume_prefix, state.step)
    else:
        _restore_fine_tune(state, train_config)
        if state.ema is not None:
            state.ema.reset()
    # A resumed run continues the data stream where the checkpoint left it (it neither replays
    # the first batches nor skips any), so with a seed it ends exactly where one run would.
    dataset = _train_dataset(config, options.seed, strategy,
                             start=state.step * train_config.batch_size)
    train_step = build_train_step(state, strategy,
                                  clip_norm=train_config.gradient_clipping_by_norm,
                                  add_regularization=train_config.add_regularization_loss)
    # Workers other than the chief save into a scratch folder removed at the end (their
    # copies of the variables equal the chief's).
    scratch = None if chief else tempfile.mkdtemp(prefix="odflow-worker-")
    write_dir = model_dir if chief else Path(scratch)
    manager = checkpoints.CheckpointManager(write_dir, options.keep_checkpoint_max)
    eval_copy = None
    if evaluate_at_end and placement.num_workers > 1:
        # Reading the training model's batch-norm statistics outside a step is a collective
        # the other workers would not join: the chief evaluates a plain copy, loaded from the
        # checkpoint every worker has just helped to save.
        eval_copy = builder.build_pipeline(config, is_training=False,
                                           clip_before_nms=options.clip_before_nms)
    evaluator = (evaluation.Evaluator(eval_copy or model, config, backend=options.eval_backend,
                                      seed=options.seed) if evaluate_at_end else None)
    writer = SummaryWriter(write_dir)
    run = _Run(options, config, state, manager, evaluator, writer, num_steps)
    run.eval_copy = eval_copy
    run.best = BestCheckpoint(model_dir) if evaluator is not None else None
    if placement.num_workers > 1:
        run.agree = _agreement(strategy)
        # Batches are fetched in the loop's own thread (a background thread would run the
        # input pipeline's collectives out of step with the other workers').
        run.threaded_batches = False
    if resume_prefix is not None:  # that step is on disk already
        run.saved_step, run.last_checkpoint = state.step, resume_prefix
    record_files = evaluation.record_paths(config.train_input_reader, "train_input_reader")
    try:
        return run.loop(iter(dataset), train_step, record_files)
    finally:
        writer.close()
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)


class _Run:
    """The loop's mutable bookkeeping, so ``train`` reads as the sequence of phases."""

    def __init__(self, options: TrainOptions, config, state: TrainingState,
                 manager: checkpoints.CheckpointManager, evaluator, writer: SummaryWriter,
                 num_steps: int):
        self.options = options
        self.config = config
        self.state = state
        self.manager = manager
        self.evaluator = evaluator
        self.writer = writer
        self.num_steps = num_steps
        self.threaded_batches = True
        # Several workers: the flags every worker must decide together (see _agreement),
        # and the plain model the chief evaluates.
        self.agree: Callable[..., tuple[bool, ...]] | None = None
        self.eval_copy = None
        self.saved_step: int | None = None
        self.last_checkpoint: str | None = None
        self.metrics: dict[str, float] | None = None
        self.evaluated_step: int | None = None
        self._coco = None
        self.best: BestCheckpoint | None = None  # the best evaluation's checkpoint, kept

    def save(self) -> str:
        step = self.state.step
        if self.saved_step != step:
            self.last_checkpoint = self.manager.save(self.state.named_tensors(), step)
            self.saved_step = step
        return self.last_checkpoint

    def evaluate(self, metrics_json: str | None = None,
                 should_stop: Callable[[], bool] | None = None) -> None:
        """Evaluate the current weights (their averages if eval_config says so), once per step.

        Every worker saves (it is a collective); only the one with an evaluator evaluates.
        """
        step = self.state.step
        checkpoint = self.save()
        if self.evaluator is None:
            return
        if self.evaluated_step == step:  # already done by the periodic evaluation
            if metrics_json and self._coco is not None:
                evaluation.write_metrics_json(self._coco, metrics_json,
                                              step=step, checkpoint=checkpoint)
            return
        use_averages = (self.config.eval_config.use_moving_averages
                        and self.state.ema is not None)
        if self.eval_copy is not None:
            evaluation.load_for_eval(self.eval_copy, checkpoint, use_averages)
            self._coco = self.evaluator.run(should_stop)
        else:
            averages = self.state.ema.shadows if use_averages else {}
            with swapped_in(self.state.trainable, averages):
                self._coco = self.evaluator.run(should_stop)
        self.metrics = evaluation.report(self._coco, step=step,
                                         model_dir=self.options.model_dir,
                                         metrics_json=metrics_json, checkpoint=checkpoint)
        self.evaluated_step = step
        if self.best is not None:
            self.best.consider(step, self.metrics, checkpoint, self._coco)

    def loop(self, iterator, train_step, record_files: list[str]) -> TrainResult:
        options, state = self.options, self.state
        batch_size = self.config.train_config.batch_size
        step = state.step
        clock = _SaveClock(options.checkpoint_every_steps, options.checkpoint_every_minutes)
        console = None
        if options.console is not None:
            console = ConsoleLine(options.console, options.model_dir, step, self.num_steps,
                                  batch_size, options.console_every)
        progress = Progress(step, self.num_steps, batch_size, options.log_every,
                            options.show_progress_bar, console)
        log.info("training from step %d to %s (batch %d)", step,
                 self.num_steps or "until stopped", batch_size)
        first = True
        try:
            with stop_on_signals() as stop:
                # Several workers poll no signal while fetching: they stop together, after a
                # step, once they agree (a worker that stopped alone would hang the others).
                alone = self.agree is None
                batches = BatchSource(iterator, record_files,
                                      (lambda: stop.requested) if alone else (lambda: False),
                                      threaded=self.threaded_batches)
                stopping = False
                while not self.num_steps or step < self.num_steps:
                    try:
                        batch = batches.next_batch()
                    except StopIteration:
                        if first:
                            reader = self.config.train_input_reader
                            raise OdflowError(
                                f"the training records {', '.join(record_files)} gave no batch "
                                f"of train_config.batch_size {batch_size} (train_input_reader."
                                f"num_epochs {reader.num_epochs}); add examples, lower the "
                                "batch size, or set num_epochs to 0") from None
                        log.warning("the training records ran out at step %d "
                                    "(train_input_reader.num_epochs)", step)
                        break
                    if batch is None:  # stop requested
                        stopping = True
                        break
                    if first:
                        self._image_summary(batch, step)
                        first = False
                    losses, learning_rate, finite = train_step(batch)
                    values = {k: float(v) for k, v in losses.items()}
                    if not bool(finite):
                        raise OdflowError(
                            f"the loss became NaN or infinite at step {step + 1} "
                            f"(losses {values}); training stopped without saving this state, the "
                            f"last good checkpoint is {self.last_checkpoint or 'none'}; lower the "
                            "learning rate or set train_config.gradient_clipping_by_norm (a "
                            "changed config starts again from the fine-tune checkpoint)")
                    step = state.step
                    learning_rate = float(learning_rate)
                    if progress.update(step, values, learning_rate):
                        self.writer.scalars({**values, LEARNING_RATE: learning_rate}, step)
                    save_due, stopping = clock.due(step), stop.requested
                    if not alone:
                        save_due, stopping = self.agree(save_due, stopping)
                    if save_due:
                        self.save()
                        clock.saved()
                    if stopping:
                        break
                    if options.eval_every > 0 and step % options.eval_every == 0:
                        try:
                            self.evaluate(should_stop=lambda: stop.requested)
                        except evaluation.EvaluationAborted:
                            log.warning("evaluation at step %d abandoned", step)
                # Alone, a signal during the last step's evaluation stops the run too.
                if stopping or (alone and stop.requested):
                    progress.close()
                    checkpoint = self.save()
                    # A worker that agreed to another's signal stops as that one does.
                    raise Interrupted(stop.signum or signal.SIGTERM, checkpoint)
        finally:
            progress.close()
        checkpoint = self.save()
        if options.eval_every >= 0:
            self.evaluate(options.metrics_json)
        if self.best is not None and options.best_metrics_json:
            self.best.publish(options.best_metrics_json)
        return TrainResult(step, checkpoint, self.metrics)

    def _image_summary(self, batch, step: int) -> None:
        try:
            local = {k: _first_local(batch[k]) for k in
                     ("image", "groundtruth_boxes", "num_groundtruth_boxes")}
            self.writer.images_with_boxes(local["image"], local["groundtruth_boxes"],
                                          local["num_groundtruth_boxes"], step)
        except (tf.errors.OpError, ValueError) as error:  # a summary must never stop training
            log.warning("could not write the training image summary: %s", error)


def _first_local(value):
    """The first replica's part of a (possibly distributed) batch element."""
    values = getattr(value, "values", None)
    return values[0] if values is not None else value


def environment_note() -> None:
    """Say which devices TF sees; users otherwise discover a CPU-only run after hours."""
    gpus = tf.config.list_physical_devices("GPU")
    log.info("TensorFlow %s, %s", tf.__version__,
             f"{len(gpus)} GPU(s)" if gpus else f"CPU only ({os.cpu_count()} cores)")
