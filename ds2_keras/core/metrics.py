"""Character and word error rates, pooled over the corpus or averaged per utterance.

The standard figure (and jiwer's) is corpus-pooled: total edits / total reference length, so
long utterances weigh more. The neon seed printed the mean of per-utterance rates instead,
which lets short utterances dominate; both are offered, and every ErrorRate says which it is.
Edit distances come from rapidfuzz (C++, microseconds per utterance).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
from rapidfuzz.distance import Levenshtein

POOLINGS = ("pooled", "mean")
_UNITS = {"CER": "characters", "WER": "words"}


def edit_distance(reference: Sequence, hypothesis: Sequence) -> int:
    """Levenshtein distance (substitutions, insertions, deletions) between two sequences."""
    return Levenshtein.distance(reference, hypothesis)


@dataclass(frozen=True)
class ErrorRate:
    """One error-rate figure, kept as the per-utterance numbers it is computed from.

    `rate` is edits / reference_length when pooling is "pooled", and the mean of
    `utterance_rates` when it is "mean". An empty reference counts as length 1 in its own
    per-utterance rate, so an utterance with nothing to say but a hypothesis still scores.
    """

    name: str  # "CER" or "WER"
    pooling: str  # "pooled" or "mean"
    utterance_edits: np.ndarray
    utterance_lengths: np.ndarray  # reference lengths

    @property
    def edits(self) -> int:
        return int(self.utterance_edits.sum())

    @property
    def reference_length(self) -> int:
        return int(self.utterance_lengths.sum())

    @property
    def utterance_rates(self) -> np.ndarray:
        return self.utterance_edits / np.maximum(self.utterance_lengths, 1)

    @property
    def rate(self) -> float:
        if self.pooling == "pooled":
            return self.edits / max(self.reference_length, 1)
        return float(self.utterance_rates.mean())

    @property
    def basis(self) -> str:
        """What the rate is computed from, so no printed figure leaves its pooling unsaid."""
        if self.pooling == "pooled":
            return f"{self.edits} edits / {self.reference_length} reference {_UNITS[self.name]}, pooled over the corpus"
        return f"mean of {len(self.utterance_edits)} per-utterance rates, as the neon seed"

    def __str__(self) -> str:
        return f"{self.name} {self.rate:.2%} ({self.basis})"


def _error_rate(name: str, references: Sequence[Sequence], hypotheses: Sequence[Sequence],
                pooling: str) -> ErrorRate:
    if pooling not in POOLINGS:
        raise ValueError(f"pooling must be one of {POOLINGS}, not {pooling!r}")
    if len(references) != len(hypotheses):
        raise ValueError(f"{len(references)} references but {len(hypotheses)} hypotheses")
    if len(references) == 0:
        raise ValueError(f"cannot compute {name} of zero utterances")
    edits = np.array([edit_distance(r, h) for r, h in zip(references, hypotheses)], dtype=np.int64)
    lengths = np.array([len(r) for r in references], dtype=np.int64)
    return ErrorRate(name, pooling, edits, lengths)


def cer(references: Sequence[str], hypotheses: Sequence[str], pooling: str = "pooled") -> ErrorRate:
    """Character error rate; spaces are characters too."""
    return _error_rate("CER", references, hypotheses, pooling)


def wer(references: Sequence[str], hypotheses: Sequence[str], pooling: str = "pooled") -> ErrorRate:
    """Word error rate over whitespace-separated words."""
    return _error_rate("WER", [r.split() for r in references], [h.split() for h in hypotheses], pooling)
