"""`ds2 fit` and what it needs: the training loop, validation, fine-tuning, weight averaging, the training benchmark.

May import: core, data, model, decode.
"""
