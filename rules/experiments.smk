# Experiments (config.yaml experiments:): every run built and compared.
#   snakemake -c2 runs/all    # each runs/<name>/ like the base run, and the summary

SUMMARY = {
    "csv": "runs/summary.csv",
    "markdown": "runs/summary.md",
    "html": "runs/summary.html",
    "plot": "plots/runs_mAP.png",
}


rule experiments_summary:
    """runs/summary.{csv,md,html} and plots/runs_mAP.png: one row (and curve) per run, best
    mAP first, with the settings each run changes."""
    input:
        metrics=each_run(METRICS),
        history=each_run(HISTORY),
        benchmark=each_run(benchmark_path("train")),
        model=each_run(EXPORTED_MODEL[0]),
        pipeline_config=each_run(PIPELINE_CONFIG),
    output:
        csv=SUMMARY["csv"],
        markdown=SUMMARY["markdown"],
        html=report(SUMMARY["html"], caption="../report/runs.rst", category="Experiments"),
        plot=report(SUMMARY["plot"], caption="../report/runs.rst", category="Experiments"),
    params:
        script=script("experiments_summary.py"),
        runs=summary_runs,
    log:
        "logs/experiments_summary.log",
    benchmark:
        "logs/benchmarks/experiments_summary.tsv"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    conda:
        "../envs/odflow.yaml"
    shell:
        "python {params.script:q} --runs {params.runs:q} --csv {output.csv:q}"
        " --markdown {output.markdown:q} --html {output.html:q} --plot {output.plot:q}"
        " > {log:q} 2>&1"


rule all_runs:
    """runs/all: every run (base and experiments) built, and the summary."""
    input:
        [path for run in OWN_RUNS for path in run_outputs(run)],
        SUMMARY.values(),
    output:
        touch("runs/all"),
