"""Deep Speech 2 on TensorFlow/Keras: ingest corpora, train CTC models, evaluate, export."""

__version__ = "0.1.0"
