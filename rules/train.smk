# Training: ckpt/model.ckpt-<num_steps>, the final metrics and the run's curves. Only the
# final checkpoint's index is declared: Snakemake deletes declared outputs before a job
# starts, and the intermediate checkpoints in ckpt/ are what an interrupted or extended run
# resumes from. One rule per run (the checkpoint is named by the run's train.num_steps):
# train for the base run, train__<experiment> for each experiment, each its own job (an
# experiment whose settings all equal an earlier run's has none: it is that run, RUN_OWNER).

for _run, _settings in OWN_RUNS.items():

    rule:
        """scripts/model_main.py: resumes from the latest ckpt/model.ckpt-N when
        ckpt/fingerprint.json says it was trained on the same inputs, else moves the old
        checkpoints to ckpt/superseded/ and fine-tunes from ckpt/model.ckpt; up to the
        config's num_steps (train.num_steps, written by pipeline_config); Ctrl+C/SIGTERM
        saves a checkpoint. Evaluates every eval_every steps and at the end, writing
        eval/metrics_last.json (the twelve COCO numbers of the final checkpoint) and
        eval/metrics_best.json (those of the best evaluation, whose checkpoint is kept in
        ckpt/best/ and linked to ckpt/best/model.ckpt), then ckpt/history.json: every scalar
        of the run's TensorBoard events (losses, learning rate, metrics by step), which the
        plots read."""
        name:
            rule_name("train", _run)
        input:
            config=run_pipeline_config(_run),
            fine_tune_checkpoint=run_fine_tune_files(_run),
            train=run_record_files(_run, "train"),
            val=run_record_files(_run, "val"),
        output:
            checkpoint=run_trained_checkpoint(_run),
            metrics=of_run(METRICS_LAST, _run),
            best_metrics=of_run(METRICS_BEST, _run),
            best_checkpoint=[of_run(BEST_CHECKPOINT, _run) + suffix
                             for suffix in (".index", ".data-00000-of-00001")],
            history=of_run(HISTORY, _run),
        params:
            script=script("model_main.py"),
            history_script=script("training_history.py"),
            model_dir=lambda w, output: os.path.dirname(output.checkpoint),
            eval_every=_settings["train"]["eval_every"],
            seed=_settings["train"]["seed"],
            clip_before_nms=str(_settings["postprocess"]["clip_before_nms"]).lower(),
            checkpoint_every=untracked(_settings["train"]["checkpoint_every_steps"]),
            keep=untracked(_settings["train"]["keep_checkpoint_max"]),
            log_every=untracked(_settings["train"]["log_every"]),
            strategy=untracked(_settings["train"]["strategy"]),
            cpu_replicas=_settings["train"]["cpu_replicas"],
            launch=train_launcher,
            progress=train_progress,
        log:
            of_run(log_path("train"), _run),
        benchmark:
            of_run(benchmark_path("train"), _run)
        threads: 8
        resources:
            mem_mb=8000,
            runtime=1440,
            gpu=1,
            **profile_train_resources(_run),
        conda:
            "../envs/odflow.yaml"
        shell:
            "({params.launch:q} python {params.script:q} --model_dir {params.model_dir:q}"
            " --pipeline_config_path {input.config:q}"
            " --eval_every {params.eval_every:q}"
            " --checkpoint_every_steps {params.checkpoint_every:q}"
            " --keep_checkpoint_max {params.keep:q} --seed {params.seed:q}"
            " --clip_before_nms {params.clip_before_nms:q}"
            " --log_every {params.log_every:q} --strategy {params.strategy:q}"
            " --cpu_replicas {params.cpu_replicas:q} {params.progress:q}"
            " --metrics_json {output.metrics:q} --best_metrics_json {output.best_metrics:q}"
            " && python {params.history_script:q} --model_dir {params.model_dir:q}"
            " --output {output.history:q}) 3>&2 > {log:q} 2>&1"
