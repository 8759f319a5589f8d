"""Evaluation metrics for detections (COCO box metrics, as the TF Object Detection API reports them)."""

from odflow.evaluation.coco import METRIC_KEYS, CocoEvaluator, format_summary

__all__ = ["METRIC_KEYS", "CocoEvaluator", "format_summary"]
