"""The text summary `ds2 evaluate` prints: how much was scored, how well, by which decoder."""
from __future__ import annotations

from typing import Sequence

import numpy as np

from ds2_keras.core.metrics import ErrorRate


def worst_utterances(word_errors: ErrorRate, character_errors: ErrorRate, count: int) -> np.ndarray:
    """Indices of the `count` worst utterances: highest WER first, then most word edits, then CER."""
    order = np.lexsort((-character_errors.utterance_rates, -word_errors.utterance_edits,
                        -word_errors.utterance_rates))
    return order[:count]


def format_report(character_errors: ErrorRate, word_errors: ErrorRate, references: Sequence[str],
                  predictions: Sequence[str], *, decoder: str, hours: float | None = None,
                  worst: int = 5) -> str:
    """A few lines of totals and rates, then the `worst` utterances, reference above prediction."""
    utterances = len(references)
    amount = f"{utterances} utterances" + ("" if hours is None else f", {hours:.2f} hours")
    lines = [f"evaluated {amount}", f"decoder: {decoder}", str(character_errors), str(word_errors)]
    indices = worst_utterances(word_errors, character_errors, worst)
    if len(indices):
        lines.append(f"{len(indices)} worst utterances (by WER):")
    for i in indices:
        lines += [f"  #{i}  WER {word_errors.utterance_rates[i]:.1%}  CER {character_errors.utterance_rates[i]:.1%}",
                  f"    reference:  {references[i]}",
                  f"    prediction: {predictions[i]}"]
    return "\n".join(lines)
