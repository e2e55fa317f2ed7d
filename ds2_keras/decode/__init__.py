"""Logits to hypotheses: greedy and beam-search decoders, language models, decoder settings, timed words and transcript writers.

May import: core, data.
"""
