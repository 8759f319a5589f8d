# Pages for Snakemake's HTML report: snakemake --report report.html


rule metrics_table:
    """eval/metrics.html: the twelve COCO numbers of eval/metrics.json as a table."""
    input:
        metrics=METRICS,
    output:
        report(METRICS_TABLE, caption="../report/metrics.rst", category="Evaluation"),
    params:
        script=script("report_tables.py"),
        metrics=lambda w, input: f"trained checkpoint={input.metrics}",
    log:
        log_path("metrics_table"),
    benchmark:
        benchmark_path("metrics_table")
    threads: 1
    resources:
        mem_mb=500,
        runtime=5,
    conda:
        "../envs/odflow.yaml"
    shell:
        "python {params.script:q} --metrics {params.metrics:q}"
        " --output {output:q} > {log:q} 2>&1"
