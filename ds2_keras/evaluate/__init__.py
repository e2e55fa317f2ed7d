"""`ds2 evaluate` and its outputs: scoring a manifest, the text report, the inference file, plots.

May import: core, data, model, train, decode.
"""
