# Detection on the images named in config.yaml (detect.images): annotated JPEGs, COCO-results
# JSON and a CSV in detections/, with detections/done written last (odflow detect).


rule detect:
    """detections/{done, detections.json, detections.csv, images/} for detect.images."""
    input:
        model=DETECT["model"],
        images=detect_images,
    output:
        json="detections/detections.json",
        csv="detections/detections.csv",
        annotated=directory("detections/images"),
        done="detections/done",
    params:
        script=script("detect.py"),
        images=DETECT["images"],
        min_score=DETECT["min_score"],
        output_dir=directory_of,
    log:
        "logs/detect.log",
    benchmark:
        "logs/benchmarks/detect.tsv"
    threads: 2
    resources:
        mem_mb=4000,
        runtime=60,
    conda:
        "../envs/odflow.yaml"
    shell:
        "python {params.script:q} --model={input.model:q} --images={params.images:q}"
        " --min-score {params.min_score:q} --output {params.output_dir:q} > {log:q} 2>&1"
