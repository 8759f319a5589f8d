"""Export a trained detector: frozen graph, SavedModel, checkpoint and config (``exporter``).

The names below are imported on first use, so that ``--help`` of the command line does not
wait for TensorFlow.
"""

__all__ = ["ExportResult", "export_inference_graph", "export_model"]


def __getattr__(name: str):
    if name in __all__:
        from odflow.export import exporter

        return getattr(exporter, name)
    raise AttributeError(f"module 'odflow.export' has no attribute {name!r}")
