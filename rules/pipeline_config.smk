# The tutorial's seven edits (and any overrides) applied to the template pipeline.config.
# One rule per run (the file is named by the run's pipeline.config_name): pipeline_config
# for the base run, pipeline_config__<experiment> for each experiment.

for _run, _settings in OWN_RUNS.items():

    rule:
        """ckpt/<config_name>.config: num_classes, fine-tune checkpoint, record and label-map
        paths, eval num_examples (counted from the val records unless set), num_steps (and a
        schedule tied to it), overrides; with anchors.fit, anchors fitted to the train boxes."""
        name:
            rule_name("pipeline_config", _run)
        input:
            template=(_settings["pipeline"]["template"]
                      or model_files(_run)["pipeline_config"]),
            label_map=of_run(LABEL_MAP, DATA_OWNER[_run]),
            val=run_record_files(_run, "val"),
            # anchors.fit reads the train boxes: then their content is an input too.
            fit_records=(run_record_files(_run, "train")
                         if _settings["anchors"]["fit"] else []),
        output:
            run_pipeline_config(_run),
        params:
            script=script("patch_pipeline_config.py"),
            train=run_record_files(_run, "train"),
            fine_tune_checkpoint=run_fine_tune_checkpoint(_run),
            fine_tune_checkpoint_version=run_layout(_run).checkpoint_version,
            fine_tune_checkpoint_type=_settings["pipeline"]["fine_tune_checkpoint_type"],
            num_examples=_settings["pipeline"]["num_examples"],
            num_steps=_settings["train"]["num_steps"],
            overrides=_settings["pipeline"]["overrides"],
            fit_anchors="true" if _settings["anchors"]["fit"] else "false",
        log:
            of_run(log_path("pipeline_config"), _run),
        benchmark:
            of_run(benchmark_path("pipeline_config"), _run)
        threads: 1
        resources:
            mem_mb=1000,
            runtime=5,
        conda:
            "../envs/odflow.yaml"
        shell:
            "python {params.script:q} --template={input.template:q} --output {output:q}"
            " --label-map {input.label_map:q} --train-input {params.train:q}"
            " --eval-input {input.val:q}"
            " --fine-tune-checkpoint {params.fine_tune_checkpoint:q}"
            " --fine-tune-checkpoint-type {params.fine_tune_checkpoint_type:q}"
            " --fine-tune-checkpoint-version {params.fine_tune_checkpoint_version:q}"
            " --num-examples {params.num_examples:q} --num-steps {params.num_steps:q}"
            " --set {params.overrides:q} --fit-anchors {params.fit_anchors:q} > {log:q} 2>&1"
