"""Per-epoch validation: loss and greedy CER on the val manifests, added to the Keras logs.

It runs before the checkpointer and TensorBoard callbacks, so both record val_loss/val_cer.
"""
from __future__ import annotations

import keras

from .data import Utterances
from .decoding import greedy_decode_utterances
from .inference import run_inference
from .metrics import cer


class ValidationCallback(keras.callbacks.Callback):
    def __init__(self, utterances: Utterances, batch_size: int):
        super().__init__()
        self.utterances = utterances
        self.batch_size = batch_size

    def on_epoch_end(self, epoch, logs=None):
        # A large val set takes minutes: its bar replaces the epoch's until the epoch line ends it.
        show_progress = self.params.get("verbose") in (1, "auto")  # as Keras shows the epoch's bar
        result = run_inference(self.model, self.utterances, self.batch_size, progress=show_progress)
        references = self.utterances.rows["text"].to_numpy()[result.indices].tolist()
        predictions = greedy_decode_utterances(result.logits, self.model.alphabet)
        error = cer(references, predictions)
        if logs is not None:
            logs["val_loss"] = result.mean_loss
            logs["val_cer"] = error.rate
        print(f"\nepoch {epoch + 1}: val_loss {result.mean_loss:.3f}  val {error}")
        if references:  # the longest utterance shows the most of what the model does
            print(f"  ref: {references[-1]}\n  hyp: {predictions[-1]}")
