# COCO box metrics of the trained checkpoint on the val records.


rule evaluate:
    """eval/metrics.json (the twelve COCO numbers) and ckpt/eval_0 TensorBoard events."""
    input:
        config=PIPELINE_CONFIG,
        checkpoint=f"{TRAINED_CHECKPOINT}.index",
        val=record_files("val"),
    output:
        METRICS,
    params:
        script=script("model_main.py"),
        checkpoint=checkpoint_prefix,
    log:
        log_path("evaluate"),
    benchmark:
        benchmark_path("evaluate")
    threads: 8
    resources:
        mem_mb=8000,
        runtime=120,
    conda:
        "../envs/odflow.yaml"
    shell:
        "python {params.script} --model_dir ckpt --run_once"
        " --pipeline_config_path {input.config} --checkpoint_dir ckpt"
        " --checkpoint_path {params.checkpoint} --metrics_json {output} > {log} 2>&1"


# The same COCO metrics for each exported file, run through its runtime (odflow evaluate-model):
# eval/metrics_frozen_graph.json, metrics_tflite.json, metrics_tflite_int8.json, metrics_onnx.json.

rule evaluate_deployed:
    """eval/metrics_<format>.json: COCO metrics of one exported file on the val records."""
    input:
        model=deployed_model,
        label_map=LABEL_MAP,
        val=record_files("val"),
    output:
        "eval/metrics_{format}.json",
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
        "python {params.script} --model {input.model} --records {input.val}"
        " --label_map {input.label_map} --output {output} > {log} 2>&1"
