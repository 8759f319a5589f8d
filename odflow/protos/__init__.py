"""odflow's own protos for the TF Object Detection API's config formats.

``pipeline.proto`` and ``string_int_label_map.proto`` use the API's package
(``object_detection.protos``) and field numbers, so text and binary files are
interchangeable with upstream.  The ``*_pb2.py`` modules are generated and committed;
after changing a ``.proto`` file, regenerate them with the one command

    python -m odflow.protos.regenerate

(``tests/test_protos.py`` fails while they are stale).
"""
