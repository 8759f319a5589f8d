# The model: fetch (or build) the tarball, extract what we use, seed ckpt/ with it.
# A run whose model settings equal an earlier run's uses that run's tarball and extracted
# files (MODEL_OWNER); only the owners' are built.

# One rule per run that owns its model files (the base's keep the plain rule names); their
# paths name the model (downloads/<name>.tar.gz, <name>/), which is the run's own setting.
MODEL_OWNERS = [run for run in RUNS if MODEL_OWNER[run] == run]


for _run in MODEL_OWNERS:
    _model = RUNS[_run]["model"]
    _files = model_files(_run)
    _tarball = of_run(TARBALL, _run, model_name=_model["name"])

    if _model["url"].startswith("starter:"):

        rule:
            """A small, randomly initialised SSD (model.starter.architecture) in the zoo's
            layout, so the offline demo flows through the same rules as the real zoo model."""
            name:
                rule_name("build_starter_model", _run)
            output:
                _tarball,
            params:
                script=script("model_zoo.py"),
                name=_model["name"],
                depth_multiplier=_model["starter"]["depth_multiplier"],
                image_size=_model["starter"]["image_size"],
                num_classes=len(RUNS[_run]["classes"]),
                seed=_model["starter"]["seed"],
                architecture=_model["starter"]["architecture"],
            log:
                of_run(log_path("build_starter_model"), _run),
            benchmark:
                of_run(benchmark_path("build_starter_model"), _run)
            threads: 1
            resources:
                mem_mb=2000,
                runtime=10,
            conda:
                "../envs/odflow.yaml"
            shell:
                "python {params.script:q} starter --name {params.name:q} --output {output:q}"
                " --depth-multiplier {params.depth_multiplier:q} --image-size {params.image_size:q}"
                " --num-classes {params.num_classes:q} --seed {params.seed:q}"
                " --architecture {params.architecture:q} > {log:q} 2>&1"

    else:

        rule:
            """The model-zoo tarball, verified against model.sha256."""
            name:
                rule_name("download_model", _run)
            output:
                ensure(_tarball, sha256=_model["sha256"] or None),
            params:
                script=script("model_zoo.py"),
                url=_model["url"],
                sha256=_model["sha256"],
            log:
                of_run(log_path("download_model"), _run),
            benchmark:
                of_run(benchmark_path("download_model"), _run)
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
                "python {params.script:q} download --url={params.url:q}"
                " --sha256={params.sha256:q} --output {output:q} > {log:q} 2>&1"

    rule:
        """Only the members the pipeline needs: pipeline.config and the checkpoint,
        model.ckpt.* (TF1 layout) or checkpoint/ckpt-0.* (TF2 layout); never a state file."""
        name:
            rule_name("extract_model", _run)
        input:
            _tarball,
        output:
            _files.values(),
        params:
            script=script("model_zoo.py"),
            output_dir=directory_of,
            layout=run_layout(_run).name,
        log:
            of_run(log_path("extract_model"), _run),
        benchmark:
            of_run(benchmark_path("extract_model"), _run)
        threads: 1
        resources:
            mem_mb=500,
            runtime=10,
        conda:
            "../envs/odflow.yaml"
        shell:
            "python {params.script:q} extract --tarball {input:q} --output-dir {params.output_dir:q}"
            " --layout {params.layout:q} > {log:q} 2>&1"


# One rule per layout (their outputs differ by name): fine_tune_checkpoint copies the TF1
# zoo's model.ckpt.* as they are; fine_tune_checkpoint_tf2 the TF2 zoo's checkpoint/ckpt-0.*
# into ckpt/ckpt-0.*. Neither ever copies the zoo's 'checkpoint' state file.
for _layout in LAYOUTS.values():

    rule:
        """Copy the extracted checkpoint into the run's ckpt/ (never the zoo's 'checkpoint'
        state file): ckpt/model.ckpt.* (TF1 layout) or ckpt/ckpt-0.* (TF2 layout)."""
        name:
            fine_tune_rule_name(_layout)
        input:
            fine_tune_source(_layout, "index"),
            fine_tune_source(_layout, "data"),
        output:
            fine_tune_patterns(_layout),
        params:
            script=script("model_zoo.py"),
            model_dir=lambda w: os.path.dirname(model_files(w.run)["pipeline_config"]),
            ckpt_dir=directory_of,
            layout=_layout.name,
        log:
            log_path(fine_tune_rule_name(_layout)),
        benchmark:
            benchmark_path(fine_tune_rule_name(_layout))
        threads: 1
        resources:
            mem_mb=500,
            runtime=10,
        conda:
            "../envs/odflow.yaml"
        shell:
            "python {params.script:q} copy-checkpoint --model-dir {params.model_dir:q}"
            " --ckpt-dir {params.ckpt_dir:q} --layout {params.layout:q} > {log:q} 2>&1"
