"""Training and evaluation runs (``scripts/model_main.py``).

``optimizers`` (TF1-exact RMSProp/momentum/Adam and the learning-rate schedules), ``ema`` (moving
averages), ``checkpoints`` (name-based ``model.ckpt-<step>`` bundles and the ``checkpoint`` state
file), ``state`` (what a checkpoint holds), ``step`` (the ``tf.function`` training step),
``loop`` (the run), ``evaluate`` (COCO metrics of a model or checkpoint), ``progress``,
``summaries`` and ``signals``; ``cli`` is the command line.  Submodules are imported where used
so that ``--help`` does not pay for importing TensorFlow.
"""
