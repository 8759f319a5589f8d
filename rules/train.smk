# Training: ckpt/model.ckpt-<num_steps>. Only the final checkpoint's index is declared:
# Snakemake deletes declared outputs before a job starts, and the intermediate
# checkpoints in ckpt/ are what an interrupted or extended run resumes from.


rule train:
    """scripts/model_main.py: resumes from the latest ckpt/model.ckpt-N when
    ckpt/fingerprint.json says it was trained on the same inputs, else moves the old
    checkpoints to ckpt/superseded/ and fine-tunes from ckpt/model.ckpt; up to the config's
    num_steps (train.num_steps, written by pipeline_config); Ctrl+C/SIGTERM saves a checkpoint."""
    input:
        config=PIPELINE_CONFIG,
        fine_tune_checkpoint=FINE_TUNE_FILES,
        train=record_files("train"),
        val=record_files("val"),
    output:
        f"{TRAINED_CHECKPOINT}.index",
    params:
        script=script("model_main.py"),
        eval_every=config["train"]["eval_every"] or -1,
        seed=config["train"]["seed"],
        checkpoint_every=untracked(config["train"]["checkpoint_every_steps"]),
        keep=untracked(config["train"]["keep_checkpoint_max"]),
        log_every=untracked(config["train"]["log_every"]),
        strategy=untracked(config["train"]["strategy"]),
    log:
        log_path("train"),
    benchmark:
        benchmark_path("train")
    threads: 8
    resources:
        mem_mb=8000,
        runtime=1440,
        gpu=1,
    conda:
        "../envs/odflow.yaml"
    shell:
        "python {params.script} --model_dir ckpt"
        " --pipeline_config_path {input.config}"
        " --eval_every {params.eval_every} --checkpoint_every_steps {params.checkpoint_every}"
        " --keep_checkpoint_max {params.keep} --seed {params.seed}"
        " --log_every {params.log_every} --strategy {params.strategy} --progress_fd 3 3>&2"
        " > {log} 2>&1"
