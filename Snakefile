# odflow: from a model-zoo tarball and a labelled dataset to an exported detector.
#
#   snakemake -c2 exported_model/frozen_inference_graph.pb     # the tutorial's result
#   snakemake -c2 all                                          # + metrics and plots
#   snakemake -n exported_model/frozen_inference_graph.pb      # the plan, with reasons
#
# Each stage is one file in rules/; the work is done by the odflow package.

import os

from snakemake.utils import min_version, validate

min_version("9.0")


configfile: os.path.join(workflow.basedir, "config.yaml")


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
include: "rules/report.smk"


rule all:
    default_target: True
    input:
        EXPORTED_MODEL,
        METRICS,
        METRICS_TABLE,
        PLOTS,
