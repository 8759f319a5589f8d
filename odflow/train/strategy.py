"""Which ``tf.distribute`` strategy a training run uses: ``train.strategy`` in config.yaml.

``auto`` keeps the behaviour of a plain run: ``MirroredStrategy`` over the GPUs when there are
several, the default (one-device) strategy otherwise, and ``multi_worker`` when the process is
one task of a multi-task job (``TF_CONFIG`` names several workers, or SLURM started it as one
of several tasks with ``srun -n N``).  Training across machines uses
``MultiWorkerMirroredStrategy``: every worker runs the same step on its slice of the global
batch and gradients are all-reduced, so N workers at a global batch B train like one worker
with N replicas at B.  Only the chief writes checkpoints and logs events; every worker
restores from the same ``model_dir`` (a shared file system, as on a cluster), so a requeued
job resumes as a single worker would.

On a machine without GPUs, ``train.cpu_replicas: N`` splits the CPU into N logical devices and
trains N replicas in sync, each with 1/N of the cores (``MirroredStrategy``).  A small model's
ops are too small to keep two threads busy each (the demo's step on 2 cores: 1.28x its
one-thread speed), while two one-thread replicas run side by side: the demo trains 1.13-1.20x
faster (``benchmarks/train_step.md``).  Each replica normalises batch norm over its own
``batch_size / N`` images, so N is part of what is learned: the workflow tracks it and the
training fingerprint includes it.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from dataclasses import dataclass

import tensorflow as tf

from odflow.errors import OdflowError

log = logging.getLogger(__name__)

STRATEGIES = ("auto", "one_device", "mirrored", "multi_worker")
# The port workers of one SLURM job listen on (TF's SlurmClusterResolver default is 8888).
SLURM_PORT_BASE = 8888


@dataclass(frozen=True)
class Placement:
    """The strategy and this process's role in it."""

    strategy: tf.distribute.Strategy
    kind: str
    is_chief: bool
    num_workers: int


def _tf_config_workers() -> int:
    try:
        cluster = json.loads(os.environ.get("TF_CONFIG", "{}")).get("cluster", {})
    except json.JSONDecodeError as error:
        raise OdflowError(f"TF_CONFIG is not valid JSON ({error}); unset it or fix it") from None
    return len(cluster.get("worker", [])) + len(cluster.get("chief", []))


def _slurm_tasks() -> int:
    """Tasks of the current SLURM job step (1 outside SLURM or for a plain sbatch script)."""
    if "SLURM_STEP_ID" not in os.environ and "SLURM_JOB_ID" not in os.environ:
        return 1
    return int(os.environ.get("SLURM_STEP_NUM_TASKS", os.environ.get("SLURM_NTASKS", "1")))


def _usable_gpus() -> int:
    """GPUs this process may use (listing them does not start TensorFlow's runtime)."""
    if os.environ.get("CUDA_VISIBLE_DEVICES", "unset").strip() in ("", "-1"):
        return 0
    if not shutil.which("nvidia-smi"):  # what the resolver counts GPUs with
        return 0
    return len(tf.config.list_physical_devices("GPU"))


def _cluster_resolver() -> tf.distribute.cluster_resolver.ClusterResolver:
    """``TF_CONFIG`` when it is set, else the SLURM job's task list."""
    if _tf_config_workers() > 0:
        return tf.distribute.cluster_resolver.TFConfigClusterResolver()
    if _slurm_tasks() > 1:
        port = SLURM_PORT_BASE + int(os.environ.get("SLURM_JOB_ID", "0")) % 1000
        if _usable_gpus() > 0:
            # The resolver gives each task its own GPU(s) (CUDA_VISIBLE_DEVICES).
            return tf.distribute.cluster_resolver.SlurmClusterResolver(port_base=port)
        # Without GPUs (none on the node, or hidden with CUDA_VISIBLE_DEVICES="") the
        # resolver would count 0 GPU "slots" per node and list no worker: give it one slot
        # per task, and set no devices.
        tasks = _slurm_tasks()
        return tf.distribute.cluster_resolver.SlurmClusterResolver(
            port_base=port, gpus_per_node=tasks, gpus_per_task=1, auto_set_gpu=False)
    raise OdflowError(
        "train.strategy is multi_worker but this process is not part of a multi-worker job: "
        "set TF_CONFIG (cluster.worker = host:port of each worker, task.index = this one), "
        "or start the workers as SLURM tasks (srun -n N, or the profile's train tasks)")


def _is_multi_worker_job() -> bool:
    return _tf_config_workers() > 1 or _slurm_tasks() > 1


def usable_cores() -> int:
    """Cores this process may run on (a SLURM allocation or ``taskset`` narrows them)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def split_cpu(replicas: int) -> None:
    """Make ``replicas`` logical CPU devices, each op on one of them using 1/N of the cores.

    Must run before TensorFlow starts its runtime (the first op or logical-device query).
    """
    cpu = tf.config.list_physical_devices("CPU")[0]
    try:
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(replicas)])
        tf.config.threading.set_intra_op_parallelism_threads(
            max(1, usable_cores() // replicas))
        tf.config.threading.set_inter_op_parallelism_threads(replicas)
    except RuntimeError as error:  # TF's message: "... cannot be modified after ... initialized"
        raise OdflowError(f"train.cpu_replicas: the CPU must be split before TensorFlow starts "
                          f"({error}); call make_strategy first") from None


def make_strategy(kind: str = "auto", cpu_replicas: int = 1) -> Placement:
    """Build the strategy; call it before any other TensorFlow op (collectives need that).

    ``cpu_replicas`` > 1 trains that many replicas on a GPU-less machine (module docstring);
    with GPUs, or as one worker of several, the replicas are the devices or the workers and
    ``cpu_replicas`` is not used (a log line says so).
    """
    if kind not in STRATEGIES:
        raise OdflowError(f"train.strategy: {kind!r} is not one of {', '.join(STRATEGIES)}")
    if cpu_replicas < 1:
        raise OdflowError(f"train.cpu_replicas must be at least 1, not {cpu_replicas}")
    if kind == "auto":
        kind = "multi_worker" if _is_multi_worker_job() else "local"
    if cpu_replicas > 1:
        if kind == "multi_worker" or tf.config.list_physical_devices("GPU"):
            log.info("train.cpu_replicas %d is not used: %s", cpu_replicas,
                     "the workers are the replicas" if kind == "multi_worker"
                     else "the GPUs are the replicas")
        elif kind == "one_device":
            raise OdflowError(f"train.strategy one_device contradicts train.cpu_replicas "
                              f"{cpu_replicas}: set cpu_replicas to 1 or strategy to auto")
        else:
            split_cpu(cpu_replicas)
            kind = "mirrored"
    if kind == "multi_worker":
        resolver = _cluster_resolver()
        strategy = tf.distribute.MultiWorkerMirroredStrategy(cluster_resolver=resolver)
        task_type, task_id = resolver.task_type, resolver.task_id
        chief = task_type == "chief" or (task_type == "worker" and task_id == 0 and
                                         "chief" not in resolver.cluster_spec().as_dict())
        workers = strategy.extended._num_workers  # private: TF has no public accessor
        log.info("multi-worker training: %s %s of %d workers, %d replicas in sync", task_type,
                 task_id, workers, strategy.num_replicas_in_sync)
        return Placement(strategy, "multi_worker", chief, workers)
    gpus = tf.config.list_logical_devices("GPU")
    if kind == "mirrored" or (kind == "local" and len(gpus) > 1):
        devices = [d.name for d in gpus] or [d.name for d in tf.config.list_logical_devices("CPU")]
        strategy = tf.distribute.MirroredStrategy(devices)
        per_op = tf.config.threading.get_intra_op_parallelism_threads() or usable_cores()
        threads = "" if gpus else f", {per_op} thread(s) per op"
        log.info("training with MirroredStrategy on %s%s", ", ".join(devices), threads)
        return Placement(strategy, "mirrored", True, 1)
    device = gpus[0].name if gpus else tf.config.list_logical_devices("CPU")[0].name
    log.info("training on one device: %s", device)
    if kind == "one_device":
        return Placement(tf.distribute.OneDeviceStrategy(device), "one_device", True, 1)
    return Placement(tf.distribute.get_strategy(), "one_device", True, 1)
