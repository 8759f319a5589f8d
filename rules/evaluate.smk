# COCO metrics of the trained checkpoints are written by training (rules/train.smk); eval/metrics.json,
# those of the exported one, by rule metrics (rules/export.smk).

# The same COCO metrics for each exported file, run through its runtime (odflow evaluate-model):
# eval/metrics_frozen_graph.json, metrics_tflite.json, metrics_tflite_int8.json, metrics_onnx.json.

rule evaluate_deployed:
    """eval/metrics_<format>.json: COCO metrics of one exported file on the val records."""
    input:
        model=deployed_model,
        label_map=label_map,
        val=record_files("val"),
    output:
        "{run}eval/metrics_{format}.json",
    wildcard_constraints:
        format="|".join(EVALUATED_FORMATS),
    params:
        script=script("evaluate_model.py"),
    log:
        log_path("evaluate_{format}"),
    benchmark:
        benchmark_path("evaluate_{format}")
    threads: 2
    resources:
        mem_mb=4000,
        runtime=60,
    conda:
        "../envs/odflow.yaml"
    shell:
        "python {params.script:q} --model={input.model:q} --records {input.val:q}"
        " --label_map {input.label_map:q} --output {output:q} > {log:q} 2>&1"
