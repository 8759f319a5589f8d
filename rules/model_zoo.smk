# The model: fetch (or build) the tarball, extract what we use, seed ckpt/ with it.

if MODEL_URL.startswith("starter:"):

    rule build_starter_model:
        """A small, randomly initialised SSD (model.starter.architecture) in the zoo's layout,
        so the offline demo flows through the same rules as the real zoo model."""
        output:
            TARBALL,
        params:
            script=script("model_zoo.py"),
            name=MODEL_NAME,
            depth_multiplier=config["model"]["starter"]["depth_multiplier"],
            image_size=config["model"]["starter"]["image_size"],
            num_classes=len(config["classes"]),
            seed=config["model"]["starter"]["seed"],
            architecture=config["model"]["starter"]["architecture"],
        log:
            log_path("build_starter_model"),
        benchmark:
            benchmark_path("build_starter_model")
        threads: 1
        resources:
            mem_mb=2000,
            runtime=10,
        conda:
            "../envs/odflow.yaml"
        shell:
            "python {params.script} starter --name {params.name} --output {output}"
            " --depth-multiplier {params.depth_multiplier} --image-size {params.image_size}"
            " --num-classes {params.num_classes} --seed {params.seed}"
            " --architecture {params.architecture} > {log} 2>&1"

else:

    rule download_model:
        """The model-zoo tarball, verified against model.sha256."""
        output:
            ensure(TARBALL, sha256=config["model"]["sha256"] or None),
        params:
            script=script("model_zoo.py"),
            url=MODEL_URL,
            sha256=config["model"]["sha256"],
        log:
            log_path("download_model"),
        benchmark:
            benchmark_path("download_model")
        # The one retry layer: the script tries once, with a 30 s socket timeout, so a
        # server that never answers fails all three attempts within two minutes.
        retries: 2
        threads: 1
        resources:
            mem_mb=500,
            runtime=30,
        conda:
            "../envs/odflow.yaml"
        shell:
            "python {params.script} download --url '{params.url}'"
            " --sha256 '{params.sha256}' --output {output} > {log} 2>&1"


rule extract_model:
    """Only the members the pipeline needs: pipeline.config and model.ckpt.*."""
    input:
        TARBALL,
    output:
        MODEL_FILES.values(),
    params:
        script=script("model_zoo.py"),
        output_dir=directory_of,
    log:
        log_path("extract_model"),
    benchmark:
        benchmark_path("extract_model")
    threads: 1
    resources:
        mem_mb=500,
        runtime=10,
    conda:
        "../envs/odflow.yaml"
    shell:
        "python {params.script} extract --tarball {input} --output-dir {params.output_dir}"
        " > {log} 2>&1"


rule fine_tune_checkpoint:
    """Copy model.ckpt.* into ckpt/ (not the zoo's 'checkpoint' state file)."""
    input:
        MODEL_FILES["index"],
        MODEL_FILES["data"],
    output:
        FINE_TUNE_FILES,
    params:
        script=script("model_zoo.py"),
        model_dir=lambda w, input: os.path.dirname(input[0]),
        ckpt_dir=directory_of,
    log:
        log_path("fine_tune_checkpoint"),
    benchmark:
        benchmark_path("fine_tune_checkpoint")
    threads: 1
    resources:
        mem_mb=500,
        runtime=10,
    conda:
        "../envs/odflow.yaml"
    shell:
        "python {params.script} copy-checkpoint --model-dir {params.model_dir}"
        " --ckpt-dir {params.ckpt_dir} > {log} 2>&1"
