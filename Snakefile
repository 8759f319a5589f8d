# odflow: from a model-zoo tarball and a labelled dataset to an exported detector.
#
#   snakemake -c2 exported_model/frozen_inference_graph.pb     # the tutorial's result
#   snakemake -c2 all                                          # + metrics and plots
#   snakemake -c2 deploy                                       # + TFLite, ONNX and their metrics
#   snakemake -n exported_model/frozen_inference_graph.pb      # the plan, with reasons
#   snakemake -c2 runs/all                                     # + every experiment, compared
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

from odflow import experiments
from odflow.errors import OdflowError
from odflow.experiments import ExperimentError, run_configs
from odflow.workflow.config_files import check_config_file
from odflow.workflow.settings import ConfigTypeError, coerce_to_schema

# Snakemake's own message for a YAML typo names neither file nor line: say where it is.
try:
    for _configfile in [os.path.join(workflow.basedir, "config.yaml"), *workflow.configfiles]:
        check_config_file(_configfile)
except OdflowError as error:
    raise WorkflowError(str(error)) from None


configfile: os.path.join(workflow.basedir, "config.yaml")


# --config passes nested values as strings (train='{num_steps: 3000}'): type them first.
with open(os.path.join(workflow.basedir, "schemas/config.schema.yaml")) as schema:
    CONFIG_SCHEMA = yaml.safe_load(schema)
try:
    coerce_to_schema(config, CONFIG_SCHEMA)
except ConfigTypeError as error:
    raise WorkflowError(str(error)) from None


validate(config, "schemas/config.schema.yaml")


report: "report/workflow.rst"


onstart:
    # SIGINT/SIGTERM to snakemake alone stop training at a saved step (odflow.workflow.stopping);
    # a training that has written its final checkpoint is left to end.
    from odflow.workflow import stopping

    stopping.forward_stop_signals(finished=training_finished)


include: "rules/common.smk"
include: "rules/model_zoo.smk"
include: "rules/datasets.smk"
include: "rules/pipeline_config.smk"
include: "rules/data_preview.smk"
include: "rules/train.smk"
include: "rules/evaluate.smk"
include: "rules/export.smk"
include: "rules/plots.smk"
include: "rules/detect.smk"
include: "rules/report.smk"
include: "rules/experiments.smk"


rule all:
    default_target: True
    input:
        run_outputs(BASE_RUN),


rule deploy:
    """TFLite (float, int8) and ONNX files beside the export, and every format's metrics."""
    input:
        [of_run(path, BASE_RUN) for path in DEPLOYED_MODELS.values()],
        DEPLOYED_METRICS,
