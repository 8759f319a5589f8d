"""Export a trained detector: frozen graph, SavedModel, checkpoint and config (``exporter``)."""

from odflow.export.exporter import ExportResult, export_inference_graph, export_model

__all__ = ["ExportResult", "export_inference_graph", "export_model"]
