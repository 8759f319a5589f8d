# mAP, AR and loss curves over steps (the tutorial's TensorBoard screenshots, as PNG).


rule plots:
    """plots/{mAP,AR,loss}.png from ckpt/history.json (the scalars of the run's events)."""
    input:
        history=HISTORY,
    output:
        report(PLOTS, caption="../report/plots.rst", category="Training"),
    params:
        script=script("plot_metrics.py"),
        output_dir=directory_of,
    log:
        log_path("plots"),
    benchmark:
        benchmark_path("plots")
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    conda:
        "../envs/odflow.yaml"
    shell:
        "python {params.script:q} --history {input.history:q} --output_dir {params.output_dir:q}"
        " > {log:q} 2>&1"
