"""Can the model's anchors match the data's boxes?  Coverage, and anchors fitted to the data.

SSD learns a box only through the anchors the matcher pairs it with: a ground-truth box whose
best anchor IoU stays below ``matched_threshold`` is never a positive (unless the matcher
forces one match per box, and then at an IoU the regression cannot bridge well).  These
modules answer that question from the records, before training:

- ``odflow.anchors.groundtruth``: the boxes of record files (boxes only, images not decoded);
- ``odflow.anchors.model``: the model's anchors and matcher threshold from a pipeline config;
- ``odflow.anchors.coverage``: best-anchor IoU per box and the covered fraction by COCO size;
- ``odflow.anchors.fit``: the generator's own fields searched for a higher coverage;
- ``odflow.anchors.cli``: ``odflow anchors coverage`` and ``odflow anchors fit``.
"""
