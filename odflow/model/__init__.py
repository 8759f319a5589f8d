"""The SSD MobileNet v1 detector, checkpoint-compatible with the TF Object Detection API's zoo.

Submodules are imported where used (``from odflow.model import builder``) so that importing
the package stays cheap and the math modules never depend on the network ones.
"""
