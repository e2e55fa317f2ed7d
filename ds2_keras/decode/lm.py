"""Word n-gram language models for beam search: build one as ARPA, and tune its weights.

build_arpa estimates an interpolated modified Kneser-Ney model (Chen & Goodman; the method of
KenLM's lmplz) with numpy, so users can make an LM from their own transcripts without compiling
KenLM. It is meant for transcript-sized corpora (millions of words); for a billion-word corpus
use lmplz. Ready ARPA or KenLM binary models (e.g. LibriSpeech's) need no building: their paths
go straight to decoding.BeamSearchDecoder.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from ds2_keras.core.alphabet import ENGLISH, ENGLISH_ALPHABET, Alphabet, UnmappableTextError, normalize_text
from ds2_keras.decode.decoders import BeamSearchDecoder
from ds2_keras.core.errors import LanguageModelError
from ds2_keras.core.fileio import atomic_path, check_writable
from ds2_keras.data.manifest import read_manifests
from ds2_keras.core.metrics import cer, wer

SENTENCE_START, SENTENCE_END, UNKNOWN = "<s>", "</s>", "<unk>"
# KenLM's --discount_fallback values, used when a small corpus gives unusable count statistics.
FALLBACK_DISCOUNTS = (0.5, 1.0, 1.5)
_LOG10_ZERO = -99.0  # ARPA convention for "never predicted" (<s>)


def read_text_corpus(path: str | Path, language: str = ENGLISH) -> tuple[list[str], int]:
    """Lines of a text file normalized as `language`'s transcripts are, and how many were skipped as unmappable."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise LanguageModelError(f"{path}: cannot read LM corpus ({error})") from None
    sentences, skipped = [], 0
    for line in lines:
        try:
            sentence = normalize_text(line, language)
        except UnmappableTextError:
            skipped += 1
            continue
        if sentence:
            sentences.append(sentence)
    return sentences, skipped


def manifest_corpus(manifests: Sequence[str | Path]) -> list[str]:
    """The (already normalized) transcripts of manifests, one sentence per utterance."""
    return [text for text in read_manifests(list(manifests))["text"] if text]


def _discounts(adjusted: np.ndarray) -> np.ndarray:
    """Modified-KN discounts [0, D1, D2, D3+] from the counts-of-counts of one order."""
    t1, t2, t3, t4 = (int(np.count_nonzero(adjusted == k)) for k in (1, 2, 3, 4))
    if min(t1, t2, t3, t4) > 0:
        y = t1 / (t1 + 2 * t2)
        d = (1 - 2 * y * t2 / t1, 2 - 3 * y * t3 / t2, 3 - 4 * y * t4 / t3)
        if all(0 < dk < k for k, dk in enumerate(d, start=1)):
            return np.array((0.0, *d))
    return np.array((0.0, *FALLBACK_DISCOUNTS))


@dataclass
class _NgramTable:
    """The distinct n-grams of one order, each as (index of its prefix in the order below, last word)."""

    context: np.ndarray
    word: np.ndarray
    counts: np.ndarray
    suffix: np.ndarray  # index of w2..wn in the order below (unused for unigrams)
    first_word: np.ndarray


def _count_ngrams(sentences: list[list[int]], vocabulary_size: int, order: int) -> list[_NgramTable]:
    """Count every order 1..N in one pass per order over the concatenated, padded sentences."""
    stream = np.concatenate([np.asarray(s, dtype=np.int64) for s in sentences])
    sentence_of = np.repeat(np.arange(len(sentences)), [len(s) for s in sentences])
    unigram_ids = np.arange(vocabulary_size)
    tables = [_NgramTable(np.zeros(vocabulary_size, np.int64), unigram_ids,
                          np.bincount(stream, minlength=vocabulary_size), unigram_ids, unigram_ids)]
    position_index = stream  # index, in the current order's table, of the n-gram starting at each position
    for n in range(2, order + 1):
        starts = np.flatnonzero(sentence_of[: len(stream) - n + 1] == sentence_of[n - 1:])
        if not len(starts):
            raise LanguageModelError(f"no sentence is long enough for {n}-grams; lower the order")
        keys = position_index[starts] * vocabulary_size + stream[starts + n - 1]
        unique, first, inverse, counts = np.unique(keys, return_index=True, return_inverse=True,
                                                   return_counts=True)
        first_position = starts[first]
        tables.append(_NgramTable(unique // vocabulary_size, unique % vocabulary_size, counts,
                                  position_index[first_position + 1], stream[first_position]))
        position_index = np.full(len(stream), -1, dtype=np.int64)
        position_index[starts] = inverse
    return tables


def _adjusted_counts(tables: list[_NgramTable], start_id: int) -> list[np.ndarray]:
    """Kneser-Ney counts: below the top order, how many distinct words precede each n-gram.

    N-grams that begin with <s> cannot be extended to the left and keep their raw counts.
    """
    adjusted = [table.counts for table in tables]
    for n in range(len(tables) - 1):
        left_extensions = np.bincount(tables[n + 1].suffix, minlength=len(tables[n].word))
        adjusted[n] = np.where(tables[n].first_word == start_id, tables[n].counts, left_extensions)
    adjusted[0] = adjusted[0].copy()
    adjusted[0][start_id] = 0  # <s> is a context only, never predicted
    return adjusted


def _interpolate(tables: list[_NgramTable], adjusted: list[np.ndarray], start_id: int):
    """Interpolated probabilities of every n-gram and backoff weights of every context but the top order."""
    probabilities, backoffs = [], []
    predictable = len(adjusted[0]) - 1  # every word but <s>, <unk> included
    for n, (table, counts) in enumerate(zip(tables, adjusted)):
        discounts = _discounts(counts)
        discounted = counts - discounts[np.minimum(counts, 3)]
        contexts = 1 if n == 0 else len(tables[n - 1].word)
        context = table.context
        total = np.bincount(context, weights=counts, minlength=contexts)
        removed = np.bincount(context, weights=discounts[np.minimum(counts, 3)], minlength=contexts)
        with np.errstate(invalid="ignore", divide="ignore"):
            gamma = np.where(total > 0, removed / total, 0.0)
        lower = np.full(len(counts), 1.0 / predictable) if n == 0 else probabilities[n - 1][table.suffix]
        probability = discounted / total[context] + gamma[context] * lower
        if n == 0:
            probability[start_id] = 0.0
        else:
            backoffs.append(np.where(total > 0, gamma, 1.0))
        probabilities.append(probability)
    return probabilities, backoffs


def build_arpa(sentences: Iterable[str], path: str | Path, order: int = 3) -> Path:
    """Estimate an interpolated modified Kneser-Ney model of `sentences` and write it as ARPA.

    Sentences are normalized transcripts (words split on spaces). The vocabulary is every word
    seen, plus <s>, </s> and <unk>; <unk> receives the interpolation mass of the uniform
    distribution, as in KenLM.
    """
    if order < 2:
        raise LanguageModelError(f"LM order must be at least 2 (KenLM loads no unigram models), not {order}")
    split = [s.split() for s in sentences]
    split = [words for words in split if words]
    if not split:
        raise LanguageModelError("no sentences to build a language model from")
    path = check_writable(path)  # now, not after the counting (the slow part)
    vocabulary = [SENTENCE_START, SENTENCE_END, UNKNOWN] + sorted({w for words in split for w in words}
                                                                   - {SENTENCE_START, SENTENCE_END, UNKNOWN})
    ids = {word: i for i, word in enumerate(vocabulary)}
    padded = [[0, *(ids[w] for w in words), 1] for words in split]
    tables = _count_ngrams(padded, len(vocabulary), order)
    probabilities, backoffs = _interpolate(tables, _adjusted_counts(tables, start_id=0), start_id=0)
    with atomic_path(path) as temporary, open(temporary, "w", encoding="utf-8") as out:
        out.write("\\data\\\n")
        for n, table in enumerate(tables, start=1):
            out.write(f"ngram {n}={len(table.word)}\n")
        texts: list[str] = vocabulary
        for n, table in enumerate(tables):
            if n > 0:
                texts = [f"{texts[c]} {vocabulary[w]}" for c, w in zip(table.context, table.word)]
            with np.errstate(divide="ignore"):
                log_probability = np.where(probabilities[n] > 0, np.log10(probabilities[n]), _LOG10_ZERO)
            out.write(f"\n\\{n + 1}-grams:\n")
            if n + 1 < len(tables):
                log_backoff = np.log10(backoffs[n])
                out.writelines(f"{p:.7f}\t{t}\t{b:.7f}\n" for p, t, b in zip(log_probability, texts, log_backoff))
            else:
                out.writelines(f"{p:.7f}\t{t}\n" for p, t in zip(log_probability, texts))
        out.write("\n\\end\\\n")
    return path


def grid_search(log_probs_list: Sequence[np.ndarray], lengths: Sequence[int], references: Sequence[str],
                lm_path: str | Path, grid: Mapping[str, Sequence[float]], beam_width: int = 64,
                *, vocabulary_path: str | Path | None = None, alphabet: Alphabet = ENGLISH_ALPHABET,
                echo: Callable[[str], None] = print) -> tuple[dict[str, float], pd.DataFrame]:
    """Decode a validation set at every combination of weights and pick the one with the lowest pooled WER.

    grid maps "alpha", "beta" and "unk_score" (BeamSearchDecoder's weights; any left out keep
    their defaults) to the values to try. log_probs_list holds one [T_i, classes] array over
    `alphabet` per utterance (logits work too) and lengths their valid frame counts. The LM is
    loaded once. Each result is echoed as it is found; the table (one column per weight, then
    wer and cer, pooled over the corpus) is returned sorted best first, with the best weights.
    """
    if not (len(log_probs_list) == len(lengths) == len(references)):
        raise ValueError(f"{len(log_probs_list)} score arrays, {len(lengths)} lengths and "
                         f"{len(references)} references: one of each per utterance is needed")
    base = BeamSearchDecoder(lm_path, beam_width=beam_width, vocabulary_path=vocabulary_path, alphabet=alphabet)
    names = [name for name in ("alpha", "beta", "unk_score") if name in grid]
    combinations = [dict(zip(names, values)) for values in itertools.product(*(grid[name] for name in names))]
    echo(f"grid search over {len(combinations)} ({', '.join(names)}) combinations, {len(references)} utterances, "
         f"beam width {beam_width}; WER and CER pooled over the corpus")
    rows = []
    for number, weights in enumerate(combinations, start=1):
        decoder = base.with_weights(**{"alpha": base.alpha, "beta": base.beta, **weights})
        predictions = [decoder.transcripts(scores[None, :length])[0] for scores, length in zip(log_probs_list, lengths)]
        row = {**weights, "wer": wer(references, predictions).rate, "cer": cer(references, predictions).rate}
        rows.append(row)
        echo(f"[{number}/{len(combinations)}] {_weights_text(weights)}  WER {row['wer']:7.2%}  CER {row['cer']:7.2%}")
    table = pd.DataFrame(rows).sort_values(["wer", "cer"], kind="stable").reset_index(drop=True)
    best = {name: float(table.iloc[0][name]) for name in names}
    echo(f"best: {_weights_text(best)} (WER {table.iloc[0].wer:.2%}, CER {table.iloc[0].cer:.2%})")
    return best, table


def _weights_text(weights: Mapping[str, float]) -> str:
    return " ".join(f"{name} {value:<6g}" for name, value in weights.items()).rstrip()
