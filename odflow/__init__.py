"""odflow: from a model-zoo tarball and a labelled dataset to an exported TF detector."""

__version__ = "0.1.0"
