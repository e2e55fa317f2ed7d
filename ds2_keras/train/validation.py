"""Per-epoch validation: loss and greedy CER on the val manifests, added to the Keras logs.

It runs before the checkpointer and TensorBoard callbacks, so both record val_loss/val_cer.
"""
from __future__ import annotations

from dataclasses import dataclass

import keras

from ds2_keras.core import faults
from ds2_keras.data.dataset import Utterances
from ds2_keras.decode.decoders import greedy_decode_utterances
from ds2_keras.model.batch_inference import run_inference
from ds2_keras.core.interruption import StopRequests
from ds2_keras.core.metrics import ErrorRate, cer
from ds2_keras.model.network import DS2Model


@dataclass
class Validation:
    loss: float
    error: ErrorRate
    references: list[str]
    predictions: list[str]

    def report(self, heading: str) -> str:
        """The scores, and the longest utterance's transcript, which shows the most of what the model does."""
        lines = [f"{heading}: val_loss {self.loss:.3f}  val {self.error}"]
        if self.references:
            lines.append(f"  ref: {self.references[-1]}\n  hyp: {self.predictions[-1]}")
        return "\n".join(lines)


def validate(model: DS2Model, utterances: Utterances, batch_size: int, progress: bool) -> Validation:
    """Mean CTC loss and pooled greedy CER, scored as `ds2 evaluate` scores them."""
    result = run_inference(model, utterances, batch_size, progress=progress)
    faults.reached("validation")
    references = utterances.rows["text"].to_numpy()[result.indices].tolist()
    predictions = greedy_decode_utterances(result.logits, model.alphabet)
    return Validation(result.mean_loss, cer(references, predictions), references, predictions)


class ValidationCallback(keras.callbacks.Callback):
    """Scores the epoch, unless a stop request (interruption.py) ended it early: the user asked to stop."""

    def __init__(self, utterances: Utterances, batch_size: int, stops: StopRequests | None = None):
        super().__init__()
        self.utterances = utterances
        self.batch_size = batch_size
        self.stops = stops or StopRequests()

    def on_epoch_end(self, epoch, logs=None):
        if self.stops.requested and self.model.stop_training:
            return
        # A large val set takes minutes: its bar replaces the epoch's until the epoch line ends it.
        show_progress = self.params.get("verbose") in (1, "auto")  # as Keras shows the epoch's bar
        result = validate(self.model, self.utterances, self.batch_size, show_progress)
        if logs is not None:
            logs["val_loss"] = result.loss
            logs["val_cer"] = result.error.rate
        print("\n" + result.report(f"epoch {epoch + 1}"))
