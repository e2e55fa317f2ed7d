"""Batch inference over a set of utterances: the one code path behind validation and evaluation.

It uses the same evaluation pipeline (features in the graph) as training, shortest utterances
first so batches carry little padding, and returns per-utterance logits for any decoder.
"""
from __future__ import annotations

import weakref
from dataclasses import dataclass, field
from typing import Callable

import keras
import numpy as np
import tensorflow as tf

from ds2_keras.data.dataset import Utterances, batches_per_epoch, evaluation_dataset
from ds2_keras.model.network import DS2Model, ctc_loss


@dataclass
class Inference:
    """Per-utterance results, in the order of `indices` (rows of the Utterances)."""

    indices: np.ndarray
    logits: list[np.ndarray]  # [frames, classes] each, trimmed to the utterance's length
    losses: np.ndarray
    failures: dict[str, str] = field(default_factory=dict)  # audio path -> why it was skipped

    @property
    def mean_loss(self) -> float:
        finite = self.losses[np.isfinite(self.losses)]
        return float(finite.mean()) if finite.size else float("nan")


_FORWARDS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # model -> its traced forward pass


def forward_pass(model: DS2Model) -> Callable:
    """The model's traced log-probabilities, lengths and CTC losses, one per model, so that
    validating after every epoch reuses the traces of the first validation instead of retracing."""
    if model not in _FORWARDS:
        reference = weakref.ref(model)  # the cache must not keep the model alive

        @tf.function(reduce_retracing=True)
        def forward(inputs, targets):
            logits, lengths = reference()(inputs, training=False)
            losses = ctc_loss(targets["labels"], targets["label_lengths"], logits, lengths)
            return tf.nn.log_softmax(logits), lengths, losses

        _FORWARDS[model] = forward
    return _FORWARDS[model]


def run_inference(model: DS2Model, utterances: Utterances, batch_size: int, progress: bool = True) -> Inference:
    dataset, loader = evaluation_dataset(utterances, model.ds2_config, batch_size)
    forward = forward_pass(model)
    bar = keras.utils.Progbar(batches_per_epoch(utterances, batch_size), unit_name="batch") if progress else None
    if bar is not None:
        bar.update(0)  # shown at once: the first batch waits for tf.function's trace
    paths = utterances.rows["audio_path"].tolist()
    indices, logits, losses = [], [], []
    for batch, (inputs, targets, batch_indices) in enumerate(dataset):
        log_probs, lengths, batch_losses = (t.numpy() for t in forward(inputs, targets))
        for row, index in enumerate(batch_indices.numpy()):
            if paths[index] in loader.failures:  # decoded as silence stand-in: not a real result
                continue
            indices.append(index)
            logits.append(log_probs[row, : lengths[row]])
            losses.append(batch_losses[row])
        if bar is not None:
            bar.update(batch + 1)
    return Inference(np.array(indices, dtype=np.int64), logits, np.array(losses, dtype=np.float64),
                     dict(loader.failures))
