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
