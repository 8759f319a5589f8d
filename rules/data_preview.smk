# A look at the data as training reads it: image grids (with and without the augmentations),
# box statistics and anchor coverage, from the records and the patched pipeline config.


rule data_preview:
    """plots/data/: training images after and before the pipeline's augmentations, the first
    val images, box statistics, anchor coverage (PNG and JSON)."""
    input:
        config=lambda w: run_pipeline_config(w.run),
        train=record_files("train"),
        val=record_files("val"),
        label_map=lambda w: of_run(LABEL_MAP, DATA_OWNER[w.run]),
    output:
        train_augmented=report("{run}plots/data/train_augmented.png",
                               caption="../report/data_images.rst", category="Data",
                               subcategory="Images"),
        train=report("{run}plots/data/train.png", caption="../report/data_images.rst",
                     category="Data", subcategory="Images"),
        val=report("{run}plots/data/val.png", caption="../report/data_images.rst",
                   category="Data", subcategory="Images"),
        box_stats=report("{run}plots/data/box_stats.png", caption="../report/data_boxes.rst",
                         category="Data", subcategory="Boxes"),
        coverage=report("{run}plots/data/anchor_coverage.png",
                        caption="../report/anchor_coverage.rst", category="Data",
                        subcategory="Boxes"),
        coverage_json="{run}plots/data/anchor_coverage.json",
    params:
        script=script("create_records.py"),
        output_dir=directory_of,
    log:
        log_path("data_preview"),
    benchmark:
        benchmark_path("data_preview")
    threads: 1
    resources:
        mem_mb=2000,
        runtime=15,
    conda:
        "../envs/odflow.yaml"
    shell:
        "python {params.script:q} preview --pipeline_config {input.config:q}"
        " --output_dir {params.output_dir:q} > {log:q} 2>&1"
