# odflow: from a model-zoo tarball and a labelled dataset to an exported detector.
#
#   snakemake -c2 exported_model/frozen_inference_graph.pb     # the tutorial's result
#   snakemake -c2 all                                          # + metrics and plots
#   snakemake -c2 deploy                                       # + TFLite, ONNX and their metrics
#   snakemake -n exported_model/frozen_inference_graph.pb      # the plan, with reasons
#
# Each stage is one file in rules/; the work is done by the odflow package.

import os
import sys

import yaml
from snakemake.exceptions import WorkflowError
from snakemake.utils import min_version, validate

min_version("9.0")

# The odflow package beside this Snakefile, installed or not (as scripts/_bootstrap.py does).
if workflow.basedir not in sys.path:
    sys.path.insert(0, workflow.basedir)

from odflow.workflow.settings import ConfigTypeError, coerce_to_schema


configfile: os.path.join(workflow.basedir, "config.yaml")


# --config passes nested values as strings (train='{num_steps: 3000}'): type them first.
with open(os.path.join(workflow.basedir, "schemas/config.schema.yaml")) as schema:
    try:
        coerce_to_schema(config, yaml.safe_load(schema))
    except ConfigTypeError as error:
        raise WorkflowError(str(error)) from None


validate(config, "schemas/config.schema.yaml")


report: "report/workflow.rst"


include: "rules/common.smk"
include: "rules/model_zoo.smk"
include: "rules/datasets.smk"
include: "rules/pipeline_config.smk"
include: "rules/train.smk"
include: "rules/evaluate.smk"
include: "rules/export.smk"
include: "rules/plots.smk"
include: "rules/detect.smk"
include: "rules/report.smk"


rule all:
    default_target: True
    input:
        EXPORTED_MODEL,
        METRICS,
        METRICS_TABLE,
        PLOTS,


rule deploy:
    """TFLite (float, int8) and ONNX files beside the export, and every format's metrics."""
    input:
        list(DEPLOYED_MODELS.values()),
        DEPLOYED_METRICS,
