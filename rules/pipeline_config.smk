# The tutorial's seven edits (and any overrides) applied to the template pipeline.config.


rule pipeline_config:
    """ckpt/<config_name>.config: num_classes, fine-tune checkpoint, record and label-map
    paths, eval num_examples (counted from the val records unless set), num_steps (and a
    schedule tied to it), overrides."""
    input:
        template=template_config,
        label_map=LABEL_MAP,
        val=record_files("val"),
    output:
        PIPELINE_CONFIG,
    params:
        script=script("patch_pipeline_config.py"),
        train=record_files("train"),
        fine_tune_checkpoint=FINE_TUNE_CHECKPOINT,
        fine_tune_checkpoint_type=config["pipeline"]["fine_tune_checkpoint_type"],
        num_examples=config["pipeline"]["num_examples"],
        num_steps=NUM_STEPS,
        overrides=config["pipeline"]["overrides"],
    log:
        log_path("pipeline_config"),
    benchmark:
        benchmark_path("pipeline_config")
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    conda:
        "../envs/odflow.yaml"
    shell:
        "python {params.script} --template {input.template} --output {output}"
        " --label-map {input.label_map} --train-input {params.train:q} --eval-input {input.val:q}"
        " --fine-tune-checkpoint {params.fine_tune_checkpoint}"
        " --fine-tune-checkpoint-type {params.fine_tune_checkpoint_type}"
        " --num-examples {params.num_examples} --num-steps {params.num_steps}"
        " --set {params.overrides:q} > {log} 2>&1"
