# The tutorial's export: frozen graph, SavedModel, checkpoint, pipeline.config, label map.


rule export:
    """scripts/export_inference_graph.py on the trained checkpoint."""
    input:
        config=PIPELINE_CONFIG,
        checkpoint=f"{TRAINED_CHECKPOINT}.index",
        label_map=LABEL_MAP,
    output:
        EXPORTED_MODEL,
    params:
        script=script("export_inference_graph.py"),
        checkpoint=checkpoint_prefix,
        input_type=config["export"]["input_type"],
        output_dir=directory_of,
    log:
        log_path("export"),
    benchmark:
        benchmark_path("export")
    threads: 8
    resources:
        mem_mb=4000,
        runtime=30,
    conda:
        "../envs/odflow.yaml"
    shell:
        "python {params.script}"
        " --input_type {params.input_type} --pipeline_config_path {input.config}"
        " --trained_checkpoint_prefix {params.checkpoint}"
        " --output_directory {params.output_dir} --label_map_path {input.label_map}"
        " > {log} 2>&1"
