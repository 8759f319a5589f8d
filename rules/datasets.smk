# The label map and the train/val records, from the configured source. A run whose data
# settings (dataset and classes) equal an earlier run's uses that run's files (DATA_OWNER).


rule label_map:
    """label_map.pbtxt from config.yaml's class list (ids 1..N in order)."""
    output:
        LABEL_MAP,
    params:
        script=script("create_label_map.py"),
        # One JSON argument: every name arrives exactly (spaces, quotes, a leading '-').
        classes=lambda w: json.dumps(run_config(w)["classes"]),
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
        "python {params.script:q} --output {output:q} --names-json={params.classes:q}"
        " > {log:q} 2>&1"


# One rule per shard count among the runs that make records (the outputs' names depend on
# it); the base run's is `records`.
_RECORD_RUNS = {}
for _run in RUNS:
    if DATA_OWNER[_run] == _run and RUNS[_run]["dataset"]["source"] != "tfrecord":
        _RECORD_RUNS.setdefault(RUNS[_run]["dataset"]["num_shards"], []).append(_run)
_BASE_SHARDS = RUNS[BASE_RUN]["dataset"]["num_shards"]

for _shards, _runs in _RECORD_RUNS.items():

    rule:
        """datasets/{split}.record (or its shards) and a summary, from dataset.source."""
        name:
            "records" if _shards == _BASE_SHARDS else f"records_{_shards}_shards"
        input:
            unpack(record_inputs),
            label_map=LABEL_MAP,
        output:
            shard_names("{run}datasets/{split}.record", _shards),
            summary="{run}datasets/{split}.record.summary.json",
        params:
            script=script("create_records.py"),
            args=record_arguments,
            paths=record_paths,
            folders=record_folders,
            output="{run}datasets/{split}.record",
            num_shards=_shards,
        wildcard_constraints:
            run=f"(?:{_one_of(_runs)})",
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
            "python {params.script:q} {params.args:q} {params.paths:q}"
            " --label-map {input.label_map:q} --output {params.output:q}"
            " --num-shards {params.num_shards:q} > {log:q} 2>&1"
