"""Datasets: converters from WIDER FACE, CSV, Pascal VOC and synthetic faces to the TF Object
Detection API's records, and the readers training and evaluation use.

Submodules are imported on demand (``odflow.data.records``...): TensorFlow takes seconds to
import and a ``--help`` should not wait for it.
"""
