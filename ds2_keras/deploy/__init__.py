"""Running a trained model outside training: the recognizer graph, offline transcription, streaming, SavedModel/TF Serving export, LiteRT export and runtime.

May import: core, data, model, train, decode.
"""
