# Paths and input functions shared by the rules. Everything here is derived from config.

import glob
import shlex

from odflow.workflow.fingerprint import folder_digest

MODEL_NAME = config["model"]["name"]
MODEL_URL = config["model"]["url"]
TARBALL = f"downloads/{MODEL_NAME}.tar.gz"
MODEL_FILES = {
    "pipeline_config": f"{MODEL_NAME}/pipeline.config",
    "index": f"{MODEL_NAME}/model.ckpt.index",
    "data": f"{MODEL_NAME}/model.ckpt.data-00000-of-00001",
}
FINE_TUNE_CHECKPOINT = "ckpt/model.ckpt"
FINE_TUNE_FILES = [
    f"{FINE_TUNE_CHECKPOINT}.index",
    f"{FINE_TUNE_CHECKPOINT}.data-00000-of-00001",
]
LABEL_MAP = "datasets/label_map.pbtxt"
PIPELINE_CONFIG = f"ckpt/{config['pipeline']['config_name']}.config"
NUM_STEPS = config["train"]["num_steps"]
TRAINED_CHECKPOINT = f"ckpt/model.ckpt-{NUM_STEPS}"
METRICS = "eval/metrics.json"
METRICS_TABLE = "eval/metrics.html"
EXPORTED_MODEL = [
    "exported_model/frozen_inference_graph.pb",
    "exported_model/saved_model/saved_model.pb",
    "exported_model/model.ckpt.index",
    "exported_model/model.ckpt.data-00000-of-00001",
    "exported_model/checkpoint",
    "exported_model/pipeline.config",
    "exported_model/label_map.pbtxt",
]
PLOTS = expand("plots/{name}.png", name=["mAP", "AR", "loss"])
DATASET = config["dataset"]
SOURCE = DATASET["source"]
NUM_SHARDS = DATASET["num_shards"]


def shard_names(path):
    """The API's shard naming: train.record-00000-of-00004 (one file when unsharded)."""
    if NUM_SHARDS == 1:
        return [path]
    return [f"{path}-{i:05d}-of-{NUM_SHARDS:05d}" for i in range(NUM_SHARDS)]


def record_files(split):
    """The record files of a split: ours under datasets/, or the user's existing ones."""
    if SOURCE == "tfrecord":
        files = sorted(f for pattern in DATASET["tfrecord"][split] for f in glob.glob(pattern))
        if not files:
            raise ValueError(
                f"config.yaml dataset.tfrecord.{split}: no record files match "
                f"{DATASET['tfrecord'][split]!r}"
            )
        return files
    return shard_names(f"datasets/{split}.record")


def template_config(wildcards):
    """The pipeline.config to patch: the user's template, else the tarball's own."""
    return config["pipeline"]["template"] or MODEL_FILES["pipeline_config"]


def log_path(name):
    return f"logs/{name}.log"


def benchmark_path(name):
    return f"logs/benchmarks/{name}.tsv"


def record_inputs(wildcards):
    """Input files of the records rule for one split, by dataset.source."""
    split = wildcards.split
    if SOURCE == "wider_face":
        root = DATASET["wider_face"]["root"]
        return {
            "annotations": f"{root}/wider_face_split/wider_face_{split}_bbx_gt.txt",
            "images": f"{root}/WIDER_{split}/images",
        }
    if SOURCE in ("csv", "voc"):
        settings = DATASET[SOURCE]
        key = "csv" if SOURCE == "csv" else "annotations"
        return {key: settings[f"{split}_{key}"], "images": settings[f"{split}_images"]}
    return {}


def record_arguments(wildcards):
    """The odflow.data subcommand and its settings for one split. From config only, so
    Snakemake tracks every setting as a param; the paths come from input (record_paths)."""
    split = wildcards.split
    common = " --skip-bad" if DATASET["skip_bad"] else ""
    if SOURCE == "synthetic":
        settings = DATASET["synthetic"]
        return (
            f"synthetic --split {split} --num-images {settings[f'{split}_images']}"
            f" --seed {settings['seed']} --class-name {config['classes'][0]}"
        )
    if SOURCE == "wider_face":
        settings = DATASET["wider_face"]
        args = f"wider --class-name {config['classes'][0]} --min-size {settings['min_size']}"
        args += " --drop-invalid" if settings["drop_invalid"] else ""
        args += "" if settings["keep_empty"] else " --drop-empty"
        return f"{args}{common}"
    return f"{SOURCE}{common}"


def record_paths(wildcards, input):
    """--annotations/--csv/--images options from the records rule's input (record_inputs)."""
    return " ".join(
        f"--{name} {shlex.quote(input[name])}"
        for name in ("annotations", "csv", "images")
        if name in input.keys()
    )


def record_folders(wildcards):
    """A digest of the files under the split's image and annotation folders: Snakemake sees
    a folder change only when an entry is added or removed, not an image edited in place."""
    return folder_digest(p for p in record_inputs(wildcards).values() if os.path.isdir(p))


def script(name):
    """A tool in scripts/; each imports odflow from this checkout, installed or not."""
    return os.path.join(workflow.basedir, "scripts", name)


def untracked(value):
    """A param whose change reruns nothing, for settings that change no output (how often to
    log or save, how many checkpoints to keep). Snakemake compares params between runs
    except those computed from a job's output paths: this one takes them, unused."""
    return lambda wildcards, output: value


def directory_of(w, output):
    return os.path.dirname(output[0])


def checkpoint_prefix(w, input):
    """ckpt/model.ckpt-N from its declared ckpt/model.ckpt-N.index."""
    return input.checkpoint.removesuffix(".index")


# -- deployable files, their metrics, and detection (rules/export.smk, evaluate.smk, detect.smk)

DEPLOY = config["deploy"]
DEPLOYED_MODELS = {
    "tflite": "exported_model/model.tflite",
    "tflite_int8": "exported_model/model_int8.tflite",
    "onnx": "exported_model/model.onnx",
}


def metadata_of(path):
    return f"{path}.json"


EVALUATED_FORMATS = ["frozen_graph", "tflite", "tflite_int8", "onnx"]
DEPLOYED_METRICS = expand("eval/metrics_{format}.json", format=EVALUATED_FORMATS)


def deployed_model(wildcards):
    """The file a format's metrics measure (the frozen graph, or a converted file)."""
    if wildcards.format == "frozen_graph":
        return "exported_model/frozen_inference_graph.pb"
    return DEPLOYED_MODELS[wildcards.format]


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
