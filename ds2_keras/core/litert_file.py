"""Telling a LiteRT flatbuffer from a Keras model file, without TensorFlow or LiteRT.

It sits in core so that model loading (which refuses a .tflite file with a clear error) and the
TF-free LiteRT runtime can both ask it without either importing the other's layer.
"""
from __future__ import annotations

from pathlib import Path

TFLITE_MAGIC = b"TFL3"  # a flatbuffer's file identifier, bytes 4-8


def is_litert_file(path: str | Path) -> bool:
    """A .tflite name, or a file that starts like a flatbuffer model, whatever its name."""
    path = Path(path)
    if path.suffix == ".tflite":
        return True
    try:
        with path.open("rb") as handle:
            return handle.read(8)[4:] == TFLITE_MAGIC
    except OSError:
        return False
