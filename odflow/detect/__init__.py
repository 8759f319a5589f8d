"""Run an exported detector on images: one interface over every exported format.

``load_detector(path)`` picks the runner from the path (frozen graph, SavedModel, TFLite,
ONNX); each runner's ``detect(image)`` returns the same ``Detections`` (normalised boxes,
scores, 1-based label-map class ids), so the CLI, the metrics and the tests treat the formats
alike.
"""

from odflow.detect.runners import Detections, Detector, load_detector

__all__ = ["Detections", "Detector", "load_detector"]
