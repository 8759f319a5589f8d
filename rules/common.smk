# Paths and input functions shared by the rules. Everything here is derived from config.

import glob
import json
import re

from odflow.data.yolo_source import split_inputs as yolo_split_inputs
from odflow.errors import OdflowError
from odflow.workflow.fingerprint import folder_digest
from odflow.workflow.layout import LAYOUTS, TF1, get_layout, resolve_layout

# -- runs: the base ("" prefix) and each experiment (runs/<name>/), see odflow/experiments.py.
# Every path starts with the run prefix. Rules whose output names depend on settings (model
# name, config_name, num_steps) are defined once per run with its settings as params; the
# others take {run} as a wildcard and read the run's settings (run_config, setting), so each
# run's settings are tracked as its jobs' params.


def validate_run(settings):
    """An experiment's merged settings, checked against the schema as config.yaml is."""
    try:
        validate(settings, os.path.join(workflow.basedir, "schemas/config.schema.yaml"))
    except WorkflowError as error:
        raise ValueError(str(error)) from None


try:
    RUNS = run_configs(config, CONFIG_SCHEMA, validate_run)
except ExperimentError as error:
    raise WorkflowError(str(error)) from None
BASE_RUN = experiments.BASE
# The run whose label map and records (DATA_OWNER), or model tarball and extracted files
# (MODEL_OWNER), a run uses: the first with the same settings, so equal stages are shared.
DATA_OWNER = experiments.owners(RUNS, experiments.data_settings)
MODEL_OWNER = experiments.owners(RUNS, experiments.model_settings)
# The run whose files (pipeline config, training, metrics, export, plots) a run is: itself,
# or the first run whose settings are all equal (a duplicate trains nothing of its own).
RUN_OWNER = experiments.owners(RUNS, experiments.run_settings)
OWN_RUNS = {run: settings for run, settings in RUNS.items() if RUN_OWNER[run] == run}


def _one_of(values):
    return "|".join(re.escape(value) for value in sorted(set(values)))


wildcard_constraints:
    run=f"(?:{_one_of(OWN_RUNS)})",
    split="train|val",


def run_config(wildcards):
    """The settings of the job's run (the base config or an experiment merged over it)."""
    return RUNS[wildcards.run]


def setting(*keys):
    """A param: the run's value of config key keys[0].keys[1]... (tracked per run)."""

    def value(wildcards):
        node = run_config(wildcards)
        for key in keys:
            node = node[key]
        return node

    return value


def run_layout(run):
    """The run's tarball layout (odflow.workflow.layout): TF1 (model.ckpt.*) or TF2
    (checkpoint/ckpt-0.*), model.layout with auto decided from the URL or the starter."""
    model = RUNS[run]["model"]
    return get_layout(resolve_layout(model["layout"], model["url"],
                                     model["starter"]["architecture"]))


def model_files(run):
    """The extracted pipeline.config and checkpoint a run uses (its model owner's):
    <name>/model.ckpt.* (TF1) or <name>/checkpoint/ckpt-0.* (TF2)."""
    name = RUNS[run]["model"]["name"]
    owner = MODEL_OWNER[run]
    index, data = run_layout(run).checkpoint_members
    return {
        "pipeline_config": f"{owner}{name}/pipeline.config",
        "index": f"{owner}{name}/{index}",
        "data": f"{owner}{name}/{data}",
    }


TARBALL = "{run}downloads/{model_name}.tar.gz"
# The fine-tune checkpoint in ckpt/: model.ckpt (TF1 layout) or ckpt-0 (TF2 layout).
FINE_TUNE_CHECKPOINT = "{run}ckpt/{fine_tune}"
FINE_TUNE_FILES = [
    f"{FINE_TUNE_CHECKPOINT}.index",
    f"{FINE_TUNE_CHECKPOINT}.data-00000-of-00001",
]


def fine_tune_patterns(layout):
    """The fine-tune checkpoint files of a layout, as {run} patterns (a rule's outputs)."""
    return [path.replace("{fine_tune}", layout.fine_tune_prefix) for path in FINE_TUNE_FILES]


def fine_tune_rule_name(layout):
    """fine_tune_checkpoint (TF1, as always) or fine_tune_checkpoint_tf2."""
    return "fine_tune_checkpoint" + ("" if layout == TF1 else f"_{layout.name}")


def run_fine_tune_checkpoint(run):
    """A run's fine-tune checkpoint prefix: ckpt/model.ckpt or ckpt/ckpt-0."""
    return of_run(FINE_TUNE_CHECKPOINT, run, fine_tune=run_layout(run).fine_tune_prefix)


def run_fine_tune_files(run):
    """The run's fine-tune checkpoint files (ckpt/<prefix>.{index,data-00000-of-00001})."""
    return [of_run(path, run, fine_tune=run_layout(run).fine_tune_prefix)
            for path in FINE_TUNE_FILES]
LABEL_MAP = "{run}datasets/label_map.pbtxt"
PIPELINE_CONFIG = "{run}ckpt/{config_name}.config"
TRAINED_CHECKPOINT = "{run}ckpt/model.ckpt-{steps}"
METRICS = "{run}eval/metrics.json"
# The final and the best evaluation of training (odflow.train.best); eval/metrics.json is the
# one export.checkpoint exports. The best checkpoint is linked to ckpt/best/model.ckpt.
METRICS_LAST = "{run}eval/metrics_last.json"
METRICS_BEST = "{run}eval/metrics_best.json"
BEST_CHECKPOINT = "{run}ckpt/best/model.ckpt"
METRICS_TABLE = "{run}eval/metrics.html"
HISTORY = "{run}ckpt/history.json"
EXPORTED_MODEL = [
    "{run}exported_model/frozen_inference_graph.pb",
    "{run}exported_model/saved_model/saved_model.pb",
    "{run}exported_model/model.ckpt.index",
    "{run}exported_model/model.ckpt.data-00000-of-00001",
    "{run}exported_model/checkpoint",
    "{run}exported_model/pipeline.config",
    "{run}exported_model/label_map.pbtxt",
]
PLOTS = ["{run}plots/mAP.png", "{run}plots/AR.png", "{run}plots/loss.png"]
#: odflow data preview's files (odflow.data.preview.FILES), built by data_preview.
DATA_PREVIEW = [f"{{run}}plots/data/{name}" for name in (
    "train_augmented.png", "train.png", "val.png", "box_stats.png", "anchor_coverage.png",
    "anchor_coverage.json")]


def fine_tune_source(layout, kind):
    """The extracted checkpoint file (index or data) that the run's ckpt/ copy is made from;
    a run whose model has the other layout has no job here."""

    def source(w):
        if run_layout(w.run) != layout:
            raise WorkflowError(
                f"{w.run}ckpt/{layout.fine_tune_prefix}.*: this run's model has the "
                f"{run_layout(w.run).name} layout (model.layout), whose fine-tune checkpoint is "
                f"{run_fine_tune_checkpoint(w.run)}")
        return model_files(w.run)[kind]

    return source


def of_run(pattern, run, **wildcards):
    """A path pattern filled in for one run ("" = the base)."""
    return pattern.format(run=run, **wildcards)


def run_pipeline_config(run):
    """A run's patched pipeline.config (ckpt/<config_name>.config)."""
    return of_run(PIPELINE_CONFIG, run, config_name=RUNS[run]["pipeline"]["config_name"])


def run_trained_checkpoint(run):
    """A run's final checkpoint index, ckpt/model.ckpt-<num_steps>.index."""
    return of_run(TRAINED_CHECKPOINT, run, steps=RUNS[run]["train"]["num_steps"]) + ".index"


def exported_checkpoint(wildcards):
    """The index of the checkpoint export.checkpoint names: the final or the best one."""
    if run_config(wildcards)["export"]["checkpoint"] == "best":
        return of_run(BEST_CHECKPOINT, wildcards.run) + ".index"
    return trained_checkpoint(wildcards)


def pipeline_config(wildcards):
    return run_pipeline_config(wildcards.run)


def trained_checkpoint(wildcards):
    return run_trained_checkpoint(wildcards.run)


def label_map(wildcards):
    """The label map a run uses (its data owner's)."""
    return of_run(LABEL_MAP, DATA_OWNER[wildcards.run])


def run_outputs(run):
    """What `all` builds for one run: the export, the metrics (and table), the plots and the
    data preview."""
    return [of_run(pattern, run)
            for pattern in EXPORTED_MODEL + PLOTS + DATA_PREVIEW + [METRICS, METRICS_TABLE]]


def shard_names(path, num_shards):
    """The API's shard naming: train.record-00000-of-00004 (one file when unsharded)."""
    if num_shards == 1:
        return [path]
    return [f"{path}-{i:05d}-of-{num_shards:05d}" for i in range(num_shards)]


def run_record_files(run, split):
    """The record files of a run's split: its data owner's under datasets/, or the user's."""
    dataset = RUNS[run]["dataset"]
    if dataset["source"] == "tfrecord":
        files = sorted(f for pattern in dataset["tfrecord"][split] for f in glob.glob(pattern))
        if not files:
            raise ValueError(
                f"config dataset.tfrecord.{split} (run {experiments.label_of(run)}): no record "
                f"files match {dataset['tfrecord'][split]!r}"
            )
        return files
    return shard_names(f"{DATA_OWNER[run]}datasets/{split}.record", dataset["num_shards"])


def record_files(split):
    """Input function: the record files of the job's run for one split."""
    return lambda wildcards: run_record_files(wildcards.run, split)


def rule_name(name, run):
    """The base run's rule keeps ``name``; an experiment's is ``name__<experiment>``."""
    if run == BASE_RUN:
        return name
    return f"{name}__{experiments.label_of(run)}"


def log_path(name):
    """The job's log, under its run's logs/ (logs/<name>.log for the base run)."""
    return f"{{run}}logs/{name}.log"


def benchmark_path(name):
    return f"{{run}}logs/benchmarks/{name}.tsv"


def record_inputs(wildcards):
    """Input files of the records rule for one split, by dataset.source."""
    split = wildcards.split
    dataset = run_config(wildcards)["dataset"]
    source = dataset["source"]
    if source == "wider_face":
        root = dataset["wider_face"]["root"]
        return {
            "annotations": f"{root}/wider_face_split/wider_face_{split}_bbx_gt.txt",
            "images": f"{root}/WIDER_{split}/images",
        }
    if source in ("csv", "voc"):
        settings = dataset[source]
        key = "csv" if source == "csv" else "annotations"
        return {key: settings[f"{split}_{key}"], "images": settings[f"{split}_images"]}
    if source == "coco":
        settings = dataset["coco"]
        json_file = settings[f"{split}_json"]
        if not json_file:
            raise WorkflowError(f"dataset.coco.{split}_json is not set: give the {split} "
                                "split's COCO JSON file (e.g. valid/_annotations.coco.json)")
        # Roboflow's layout: the images beside the JSON when no folder is set.
        return {"json": json_file,
                "images": settings[f"{split}_images"] or os.path.dirname(json_file) or "."}
    if source == "yolo":
        settings = dataset["yolo"]
        if not settings["data"] and not settings[f"{split}_images"]:
            raise WorkflowError(f"dataset.yolo: set data (an Ultralytics data.yaml) or "
                                f"{split}_images (a folder of images beside a labels folder)")
        try:
            return yolo_split_inputs(settings["data"], settings[f"{split}_images"], split)
        except OdflowError as error:
            raise WorkflowError(f"dataset.yolo ({split}): {error}") from None
    return {}


def record_arguments(wildcards):
    """The odflow.data subcommand and its settings for one split, as a list of arguments
    (each reaches the shell quoted, so a class name is data, never shell code). From config
    only, so Snakemake tracks every setting as a param; the paths come from input
    (record_paths)."""
    split = wildcards.split
    run = run_config(wildcards)
    dataset = run["dataset"]
    source = dataset["source"]
    common = ["--skip-bad"] if dataset["skip_bad"] else []
    if source == "synthetic":
        settings = dataset["synthetic"]
        return ["synthetic", "--split", split,
                "--num-images", str(settings[f"{split}_images"]),
                "--seed", str(settings["seed"]), f"--class-name={run['classes'][0]}"]
    if source == "wider_face":
        settings = dataset["wider_face"]
        args = ["wider", f"--class-name={run['classes'][0]}",
                "--min-size", str(settings["min_size"])]
        args += ["--drop-invalid"] if settings["drop_invalid"] else []
        args += [] if settings["keep_empty"] else ["--drop-empty"]
        return args + common
    if source in ("coco", "yolo"):
        args = [source] if source == "coco" else ["yolo", "--split", split]
        if dataset[source]["skip_unknown_classes"]:
            args += ["--skip-unknown-classes"]
        return args + common
    return [source] + common


def record_paths(wildcards, input):
    """--annotations/--csv/--json/--data/--images options from the records rule's input
    (record_inputs), as a list of arguments the rule quotes one by one. A YOLO data.yaml
    names its own folders (they are inputs to be watched)."""
    names = ("data",) if "data" in input.keys() else ("annotations", "csv", "json", "images")
    words = []
    for name in names:
        if name in input.keys():
            values = input[name]
            for value in [values] if isinstance(values, str) else list(values):
                words += [f"--{name}", value]
    return words


def record_folders(wildcards):
    """A digest of the files under the split's image and annotation folders: Snakemake sees
    a folder change only when an entry is added or removed, not an image edited in place."""
    paths = []
    for value in record_inputs(wildcards).values():
        paths += [value] if isinstance(value, str) else list(value)
    return folder_digest(p for p in paths if os.path.isdir(p))


def script(name):
    """A param: the tool in scripts/ (each imports odflow from this checkout, installed or
    not). Untracked: its absolute path says where the workflow is, not what it makes, so a
    project copied or moved elsewhere (or run from another checkout) reruns nothing."""
    return untracked(os.path.join(workflow.basedir, "scripts", name))


def untracked(value):
    """A param whose change reruns nothing, for settings that change no output (how often to
    log or save, how many checkpoints to keep). Snakemake compares params between runs
    except those computed from a job's output paths: this one takes them, unused."""
    return lambda wildcards, output: value


def train_launcher(wildcards, output, resources):
    """How the job starts training: one process, or one worker per SLURM task.

    A profile gives training N > 1 tasks (resources ``tasks`` = N and ``mpi`` = "srun"; the
    SLURM executor then leaves the launching to the job's shell instead of wrapping it in
    ``srun -n1``); each task is one worker of train.strategy multi_worker (``auto`` finds
    them). ``--label`` prefixes each line of the shared log with its task number. Untracked
    (takes ``output``): how many workers train a model changes no output, a run resumes
    across it."""
    tasks = int(getattr(resources, "tasks", 1) or 1)
    if tasks <= 1:
        return []
    launcher = getattr(resources, "mpi", None)
    if launcher != "srun":
        raise WorkflowError(
            f"resources tasks={tasks} needs mpi=\"srun\" (got {launcher!r}): odflow starts "
            "one training worker per SLURM task with srun; run it with --profile "
            "profiles/slurm and set both, or set tasks=1")
    # The job's shell runs without the allocation's SLURM_* defaults (the executor strips
    # them), so the step says how many CPUs each worker gets, or it would get one.
    cpus = getattr(resources, "cpus_per_task", None)
    cpus = [f"--cpus-per-task={cpus}"] if cpus else []
    return ["srun", f"--ntasks={tasks}", *cpus, "--kill-on-bad-exit=1", "--label"]


def train_progress(wildcards, output, resources):
    """The console progress line goes to descriptor 3, which srun does not pass to its
    tasks: workers started by srun write their progress to the log only."""
    return [] if train_launcher(wildcards, output, resources) else ["--progress_fd", "3"]


def profile_train_resources(run):
    """The resources the profile sets for rule ``train``, for an experiment's train rule too
    (``set-resources`` names rules, and experiments' rules are named by the user); a
    profile entry for ``train__<experiment>`` still takes precedence."""
    if run == BASE_RUN:
        return {}
    chosen = workflow.resource_settings.overwrite_resources.get("train", {})
    return {name: getattr(value, "raw", value) for name, value in chosen.items()}


def training_finished(model_dir):
    """Whether the run training in ``model_dir`` (as its command line names it) has written
    its final checkpoint, the train job's declared output (odflow.workflow.stopping)."""
    finals = {os.path.normpath(os.path.dirname(run_trained_checkpoint(run))):
              run_trained_checkpoint(run) for run in OWN_RUNS}
    final = finals.get(os.path.normpath(model_dir))
    return final is not None and os.path.exists(final)


def directory_of(w, output):
    return os.path.dirname(output[0])


def checkpoint_prefix(w, input):
    """ckpt/model.ckpt-N from its declared ckpt/model.ckpt-N.index."""
    return input.checkpoint.removesuffix(".index")


# -- deployable files, their metrics, and detection (rules/export.smk, evaluate.smk, detect.smk)

DEPLOYED_MODELS = {
    "tflite": "{run}exported_model/model.tflite",
    "tflite_int8": "{run}exported_model/model_int8.tflite",
    "onnx": "{run}exported_model/model.onnx",
}


def metadata_of(path):
    return f"{path}.json"


EVALUATED_FORMATS = ["frozen_graph", "tflite", "tflite_int8", "onnx"]
DEPLOYED_METRICS = expand("eval/metrics_{format}.json", format=EVALUATED_FORMATS)


def deployed_model(wildcards):
    """The file a format's metrics measure (the frozen graph, or a converted file)."""
    if wildcards.format == "frozen_graph":
        return of_run("{run}exported_model/frozen_inference_graph.pb", wildcards.run)
    return of_run(DEPLOYED_MODELS[wildcards.format], wildcards.run)


DETECT = config["detect"]


DETECT_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp")


def detect_images(wildcards):
    """The files detect.images names, so that a new or changed image reruns detection: a
    folder's images (recursively, as odflow detect reads them), a glob's matches, or one file
    (e.g. the val records, which a rule may still have to make)."""
    spec = DETECT["images"]
    if os.path.isdir(spec):
        pattern = os.path.join(spec, "**", "*")
        return sorted(f for f in glob.glob(pattern, recursive=True)
                      if f.lower().endswith(DETECT_IMAGE_SUFFIXES))
    if glob.has_magic(spec):
        return sorted(f for f in glob.glob(spec, recursive=True) if os.path.isfile(f))
    return [spec]


# -- experiments' summary (rules/experiments.smk)


def summary_runs(wildcards, input):
    """Each run's label, its declared files (from input) and its settings that differ from
    the base, as the JSON list scripts/experiments_summary.py reads."""
    runs = []
    for index, run in enumerate(RUNS):
        runs.append({
            "label": experiments.label_of(run),
            **{kind: input[kind][index]
               for kind in ("metrics", "history", "benchmark", "model", "pipeline_config")},
            "differences": experiments.differences(RUNS[BASE_RUN], RUNS[run]),
        })
    return json.dumps(runs)


def each_run(pattern):
    """``pattern`` for every run, base first (the order summary_runs reads them in); a run
    that duplicates an earlier one's settings reads that run's files (RUN_OWNER)."""
    return [
        of_run(pattern, RUN_OWNER[run], steps=RUNS[run]["train"]["num_steps"],
               config_name=RUNS[run]["pipeline"]["config_name"])
        for run in RUNS
    ]
