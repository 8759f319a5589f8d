# The label map and the train/val records, from the configured source.


rule label_map:
    """label_map.pbtxt from config.yaml's class list (ids 1..N in order)."""
    output:
        LABEL_MAP,
    params:
        script=script("create_label_map.py"),
        classes=config["classes"],
    log:
        log_path("label_map"),
    benchmark:
        benchmark_path("label_map")
    threads: 1
    resources:
        mem_mb=500,
        runtime=5,
    conda:
        "../envs/odflow.yaml"
    shell:
        "python {params.script} --output {output} --names {params.classes:q} > {log} 2>&1"


if SOURCE != "tfrecord":

    rule records:
        """datasets/{split}.record (or its shards) and a summary, from dataset.source."""
        input:
            unpack(record_inputs),
            label_map=LABEL_MAP,
        output:
            shard_names("datasets/{split}.record"),
            summary="datasets/{split}.record.summary.json",
        params:
            script=script("create_records.py"),
            args=record_arguments,
            paths=record_paths,
            folders=record_folders,
            output="datasets/{split}.record",
            num_shards=NUM_SHARDS,
        wildcard_constraints:
            split="train|val",
        log:
            log_path("records_{split}"),
        benchmark:
            benchmark_path("records_{split}")
        threads: 1
        resources:
            mem_mb=2000,
            runtime=60,
        conda:
            "../envs/odflow.yaml"
        shell:
            "python {params.script} {params.args} {params.paths} --label-map {input.label_map}"
            " --output {params.output} --num-shards {params.num_shards} > {log} 2>&1"
