"""Corpus ingest recipes: turn a corpus on disk into per-utterance transcripts and a manifest CSV.

Each recipe module only enumerates its corpus; ds2_keras.ingest.common validates, writes and reports.
The click group `ds2_keras.ingest.commands.ingest` is the command-line face (`ds2 ingest ...`).
"""
