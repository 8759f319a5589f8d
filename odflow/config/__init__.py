"""Pipeline configs in the TF Object Detection API's text format: load, check, patch, write.

    from odflow import config
    cfg = config.load("ssd_mobilenet_v1_coco.config")
    cfg = config.patch_config(cfg, num_classes=1, overrides=["train_config.batch_size=8"])
    config.save(cfg, "ckpt/ssd_mobilenet_v1_coco.config")

CLI: ``python -m odflow.config {patch,check,show} --help``.
"""

from odflow.config.loader import (
    OTHER_META_ARCHITECTURES,
    TrainEvalPipelineConfig,
    dumps,
    load,
    loads,
    meta_architecture,
    save,
)
from odflow.config.overrides import apply_override, apply_overrides
from odflow.config.patch import (
    FINE_TUNE_CHECKPOINT_TYPES,
    check_num_classes,
    patch_config,
    patch_file,
)
from odflow.config.summary import problems, summarize

__all__ = [
    "FINE_TUNE_CHECKPOINT_TYPES",
    "OTHER_META_ARCHITECTURES",
    "TrainEvalPipelineConfig",
    "apply_override",
    "apply_overrides",
    "check_num_classes",
    "dumps",
    "load",
    "loads",
    "meta_architecture",
    "patch_config",
    "patch_file",
    "problems",
    "save",
    "summarize",
]
