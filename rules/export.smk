# The tutorial's export: frozen graph, SavedModel, checkpoint, pipeline.config, label map.


rule export:
    """scripts/export_inference_graph.py on the trained checkpoint."""
    input:
        config=pipeline_config,
        checkpoint=trained_checkpoint,
        label_map=label_map,
    output:
        EXPORTED_MODEL,
    params:
        script=script("export_inference_graph.py"),
        checkpoint=checkpoint_prefix,
        input_type=setting("export", "input_type"),
        clip_before_nms=lambda w: str(setting("postprocess", "clip_before_nms")(w)).lower(),
        output_dir=directory_of,
    log:
        log_path("export"),
    benchmark:
        benchmark_path("export")
    threads: 8
    resources:
        mem_mb=4000,
        runtime=30,
    conda:
        "../envs/odflow.yaml"
    shell:
        "python {params.script}"
        " --input_type {params.input_type} --pipeline_config_path {input.config}"
        " --trained_checkpoint_prefix {params.checkpoint}"
        " --output_directory {params.output_dir} --label_map_path {input.label_map}"
        " --clip_before_nms {params.clip_before_nms:q} > {log} 2>&1"


# Deployable files made from the export (odflow convert): TFLite float32 and full-integer int8,
# with the SSD post-processing as the TFLite_Detection_PostProcess op, and ONNX. Each has its
# metadata JSON beside it. Not part of `all` (they add minutes); `snakemake -c2 deploy` builds
# them with their metrics.

rule export_tflite:
    """exported_model/model.tflite (float32) from the exported weights."""
    input:
        EXPORTED_MODEL,
    output:
        model=DEPLOYED_MODELS["tflite"],
        metadata=metadata_of(DEPLOYED_MODELS["tflite"]),
    params:
        script=script("convert_model.py"),
        export_dir=directory_of,
        use_regular_nms=lambda w: str(setting("deploy", "use_regular_nms")(w)).lower(),
    log:
        log_path("export_tflite"),
    benchmark:
        benchmark_path("export_tflite")
    threads: 2
    resources:
        mem_mb=4000,
        runtime=30,
    conda:
        "../envs/odflow.yaml"
    shell:
        "python {params.script} --format tflite --export_dir {params.export_dir}"
        " --output {output.model} --use_regular_nms {params.use_regular_nms} > {log} 2>&1"


rule export_tflite_int8:
    """exported_model/model_int8.tflite: full-integer, calibrated on training images."""
    input:
        EXPORTED_MODEL,
        records=record_files("train"),
    output:
        model=DEPLOYED_MODELS["tflite_int8"],
        metadata=metadata_of(DEPLOYED_MODELS["tflite_int8"]),
    params:
        script=script("convert_model.py"),
        export_dir=directory_of,
        use_regular_nms=lambda w: str(setting("deploy", "use_regular_nms")(w)).lower(),
        calibration_images=setting("deploy", "calibration_images"),
        per_channel=lambda w: str(setting("deploy", "int8_per_channel")(w)).lower(),
    log:
        log_path("export_tflite_int8"),
    benchmark:
        benchmark_path("export_tflite_int8")
    threads: 2
    resources:
        mem_mb=4000,
        runtime=60,
    conda:
        "../envs/odflow.yaml"
    shell:
        "python {params.script} --format tflite_int8 --export_dir {params.export_dir}"
        " --output {output.model} --use_regular_nms {params.use_regular_nms}"
        " --calibration_records {input.records}"
        " --calibration_images {params.calibration_images}"
        " --per_channel {params.per_channel} > {log} 2>&1"


rule export_onnx:
    """exported_model/model.onnx: the SavedModel through tf2onnx."""
    input:
        EXPORTED_MODEL,
    output:
        model=DEPLOYED_MODELS["onnx"],
        metadata=metadata_of(DEPLOYED_MODELS["onnx"]),
    params:
        script=script("convert_model.py"),
        export_dir=directory_of,
        opset=setting("deploy", "onnx_opset"),
    log:
        log_path("export_onnx"),
    benchmark:
        benchmark_path("export_onnx")
    threads: 2
    resources:
        mem_mb=4000,
        runtime=30,
    conda:
        "../envs/odflow.yaml"
    shell:
        "python {params.script} --format onnx --export_dir {params.export_dir}"
        " --output {output.model} --opset {params.opset} > {log} 2>&1"
