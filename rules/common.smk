# Paths and input functions shared by the rules. Everything here is derived from config.

import glob

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


def record_arguments(wildcards, input):
    """The odflow.data subcommand and options that make one split's records."""
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
        args = f"wider --annotations {input.annotations} --images {input.images}"
        args += f" --class-name {config['classes'][0]} --min-size {settings['min_size']}"
        args += " --drop-invalid" if settings["drop_invalid"] else ""
        args += "" if settings["keep_empty"] else " --drop-empty"
        return f"{args}{common}"
    if SOURCE == "csv":
        return f"csv --csv {input.csv} --images {input.images}{common}"
    return f"voc --annotations {input.annotations} --images {input.images}{common}"


def script(name):
    """A tool in scripts/; each imports odflow from this checkout, installed or not."""
    return os.path.join(workflow.basedir, "scripts", name)


def directory_of(w, output):
    return os.path.dirname(output[0])


def checkpoint_prefix(w, input):
    """ckpt/model.ckpt-N from its declared ckpt/model.ckpt-N.index."""
    return input.checkpoint.removesuffix(".index")
