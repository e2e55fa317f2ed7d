"""CTC prefix beam search: word LM with unknown words, hotwords, N-best, fed frame by frame.

One search serves evaluation, transcription, streaming and rescoring served logits. It is
frame-synchronous: `PrefixSearch.advance` takes any number of new frames and `finish` closes
the utterance, so a stream fed chunk by chunk ends exactly where one call over all frames ends.

A hypothesis' score is log p_ctc(prefix) + alpha ln p_lm(words) + beta (number of words) +
unk_score per word the LM does not know + the hotword boosts it holds. Words are scored by the
LM when complete (a space, or the end); a partial word that no LM word starts with pays
unk_score at once, so junk spellings cannot outrun real words while waiting for their space.

Hotwords (shallow-fusion contextual biasing, as in Zhao et al. 2019 and Le et al. 2021): a trie
over the phrases' characters; each letter a hypothesis spells along a phrase earns that
phrase's boost, held as pending; a finished phrase keeps it, a hypothesis that leaves the
phrase (a wrong letter, or a longer word) gives it all back, so no unrelated word keeps a boost.

Pruning keeps it fast in Python: per frame only the tokens within the top `token_mass` of the
probability and above `token_min_prob` extend a prefix (blank-dominated frames extend nothing),
beams more than `beam_threshold` below the best are dropped, and LM states are cached per
word-complete prefix.
"""
from __future__ import annotations

import heapq
import math
from dataclasses import dataclass
from typing import NamedTuple, Sequence

import numpy as np
from rapidfuzz.distance import Levenshtein
from scipy.special import log_softmax

from ds2_keras.core.alphabet import BLANK_INDEX, Alphabet

_NEG_INF = -math.inf
_NO_MATCH = -1  # hotword trie position of a word that cannot belong to any phrase
_ROOT = 0
_CONTEXT_CACHE = 200_000  # prefixes whose context is kept before the cache starts over


@dataclass(frozen=True)
class Hotword:
    """A phrase to favour (lower case, single spaces) and its boost per letter (natural log units)."""

    phrase: str
    boost: float


class HotwordTrie:
    """The phrases' characters as a trie: node 0 is the root; each node knows its best boost and
    whether a phrase ends there."""

    def __init__(self, hotwords: Sequence[Hotword]):
        self.children: list[dict[str, int]] = [{}]
        self.boost: list[float] = [0.0]
        self.terminal: list[bool] = [False]
        for hotword in hotwords:
            node = _ROOT
            for character in hotword.phrase:
                if character not in self.children[node]:
                    self.children[node][character] = len(self.children)
                    self.children.append({})
                    self.boost.append(hotword.boost)
                    self.terminal.append(False)
                node = self.children[node][character]
                self.boost[node] = max(self.boost[node], hotword.boost)
            self.terminal[node] = True


class WordLM(NamedTuple):
    """A KenLM model through flashlight's wrapper, with the words it knows (lower case)."""

    model: object  # flashlight KenLM
    index: dict[str, int]  # word -> the model's user-token index
    prefixes: frozenset[str]  # every beginning of a known word
    unknown: int  # index of <unk>


class _Context(NamedTuple):
    """What a prefix's text alone determines (so it is computed once per prefix): LM and hotword state."""

    word_start: int  # where the word being spelled starts in the prefix
    lm_state: object
    lm_score: float  # alpha ln p + beta per word + unk_score per unknown word, complete words only
    partial_penalty: float  # unk_score while the partial word starts no known word
    hot_node: int
    hot_pending: float  # boost of the phrase being spelled, taken back if it is left
    hot_kept: float  # boosts of finished phrases

    @property
    def bonus(self) -> float:
        return self.lm_score + self.partial_penalty + self.hot_pending + self.hot_kept


class _Beam:
    __slots__ = ("blank", "nonblank", "context", "frames")

    def __init__(self, context: _Context, frames: tuple[int, ...]):
        self.blank, self.nonblank, self.context, self.frames = _NEG_INF, _NEG_INF, context, frames

    @property
    def acoustic(self) -> float:
        return _logadd(self.blank, self.nonblank)


def _logadd(a: float, b: float) -> float:
    if a < b:
        a, b = b, a
    if b == _NEG_INF:
        return a
    return a + math.log1p(math.exp(b - a))


@dataclass(frozen=True)
class SearchResult:
    """One finished hypothesis: text, total score, and the frame at which each character of
    `prefix` (text before stripping; spaces included) was emitted."""

    text: str
    score: float
    prefix: str
    frames: tuple[int, ...]


@dataclass(frozen=True)
class SearchSettings:
    """Weights and pruning of a prefix beam search (see the module docstring)."""

    beam_width: int = 64
    alpha: float = 0.5
    beta: float = 1.0
    # An unknown word scores this in place of alpha ln p_LM: -10 beat -6 on held-out LibriSpeech
    # (tuned on speaker 1898) and on make demo's test voices (docs/benchmarks.md).
    unk_score: float = -10.0
    beam_threshold: float = 25.0
    token_min_prob: float = math.exp(-5.0)  # pyctcdecode's token_min_logp
    token_mass: float = 0.999


class PrefixSearch:
    """One utterance's search: `advance(log_probs)` as frames arrive, then `finish(n)`."""

    def __init__(self, alphabet: Alphabet, settings: SearchSettings, lm: WordLM | None = None,
                 hotwords: HotwordTrie | None = None):
        self.alphabet, self.settings, self.lm, self.hotwords = alphabet, settings, lm, hotwords
        self._space = alphabet.space_index
        self._symbols = alphabet.symbols
        self._log_min = math.log(settings.token_min_prob)
        self._lm_cache: dict[str, tuple[object, float]] = {}
        self._contexts: dict[str, _Context] = {}  # prefix -> its context, computed once
        start = _Context(0, lm.model.start(False) if lm else None, 0.0, 0.0, _ROOT, 0.0, 0.0)
        root = _Beam(start, ())
        root.blank = 0.0
        self.beams: dict[str, _Beam] = {"": root}
        self.frames = 0

    def advance(self, log_probs: np.ndarray) -> None:
        """Consume [T, classes] scores (logits or log-probabilities) of the next T frames."""
        log_probs = log_softmax(np.asarray(log_probs, dtype=np.float64), axis=-1)
        for row in log_probs:
            self._step(row)
            self.frames += 1

    def _candidates(self, row: np.ndarray) -> list[int]:
        order = np.argsort(-row)
        mass, chosen = 0.0, []
        for token in order:
            value = row[token]
            if value < self._log_min or mass >= self.settings.token_mass:
                break
            if token != BLANK_INDEX:
                chosen.append(int(token))
            mass += math.exp(value)
        return chosen

    def _step(self, row: np.ndarray) -> None:
        tokens = self._candidates(row)
        blank_score = float(row[BLANK_INDEX])
        frame = self.frames
        following: dict[str, _Beam] = {}
        if len(self._contexts) > _CONTEXT_CACHE:
            self._contexts = {prefix: beam.context for prefix, beam in self.beams.items()}
        contexts = self._contexts

        def entry(prefix: str, context: _Context, frames: tuple[int, ...]) -> _Beam:
            beam = following.get(prefix)
            if beam is None:
                beam = following[prefix] = _Beam(context, frames)
            return beam

        for prefix, beam in self.beams.items():
            total = beam.acoustic
            same = entry(prefix, beam.context, beam.frames)
            same.blank = _logadd(same.blank, total + blank_score)
            last = self._symbols.index(prefix[-1]) if prefix else None
            if last is not None:  # the last character held for another frame
                same.nonblank = _logadd(same.nonblank, beam.nonblank + float(row[last]))
            for token in tokens:
                score = float(row[token])
                if token == self._space and not prefix:
                    same.blank = _logadd(same.blank, total + score)  # a leading space starts nothing
                    continue
                if token == last == self._space:  # a second space after a blank: still one word break
                    same.nonblank = _logadd(same.nonblank, beam.blank + score)
                    continue
                extended_prefix = prefix + self._symbols[token]
                extended = following.get(extended_prefix)
                if extended is None:
                    context = contexts.get(extended_prefix)
                    if context is None:
                        context = contexts[extended_prefix] = self._extend(prefix, beam.context, token)
                    extended = following[extended_prefix] = _Beam(context, beam.frames + (frame,))
                # A repeated character needs a blank between its two emissions.
                source = beam.blank if token == last else total
                extended.nonblank = _logadd(extended.nonblank, source + score)
        self.beams = self._prune(following)

    def _prune(self, beams: dict[str, _Beam]) -> dict[str, _Beam]:
        scored = [(beam.acoustic + beam.context.bonus, prefix) for prefix, beam in beams.items()]
        best = heapq.nlargest(self.settings.beam_width, scored)
        floor = best[0][0] - self.settings.beam_threshold
        return {prefix: beams[prefix] for score, prefix in best if score >= floor}

    def _extend(self, prefix: str, context: _Context, token: int) -> _Context:
        """The context of prefix + the character `token`."""
        if token == self._space:
            return self._close_word(prefix, context)
        character = self._symbols[token]
        word = prefix[context.word_start:] + character
        penalty = 0.0
        if self.lm is not None and word not in self.lm.prefixes:
            penalty = self.settings.unk_score
        node, pending = self._spell(context, character, at_word_start=len(word) == 1)
        return _Context(context.word_start, context.lm_state, context.lm_score, penalty, node, pending,
                        context.hot_kept)

    def _spell(self, context: _Context, character: str, at_word_start: bool) -> tuple[int, float]:
        """Hotword trie position and pending boost after one more letter."""
        trie = self.hotwords
        if trie is None or context.hot_node == _NO_MATCH:
            return _NO_MATCH if trie is not None else _ROOT, 0.0
        child = trie.children[context.hot_node].get(character)
        pending = context.hot_pending
        if child is None and at_word_start and context.hot_node != _ROOT:
            child, pending = trie.children[_ROOT].get(character), 0.0  # a phrase left; maybe another starts
        if child is None:
            return _NO_MATCH, 0.0  # left the phrase: its boost is taken back
        return child, pending + trie.boost[child]

    def _close_word(self, prefix: str, context: _Context) -> _Context:
        """The context once the word being spelled at the end of `prefix` is complete."""
        word = prefix[context.word_start:]
        lm_state, lm_score = context.lm_state, context.lm_score
        if self.lm is not None:
            lm_state, lm_score = self._score_word(prefix, word, context)
        node, pending, kept = _ROOT, 0.0, context.hot_kept
        trie = self.hotwords
        if trie is not None and context.hot_node not in (_NO_MATCH, _ROOT):
            if trie.terminal[context.hot_node]:
                kept += context.hot_pending
            else:
                pending = context.hot_pending
            node = trie.children[context.hot_node].get(" ", _ROOT)
            if node == _ROOT:
                pending = 0.0  # an unfinished phrase ended here: its boost is taken back
        return _Context(len(prefix) + 1, lm_state, lm_score, 0.0, node, pending, kept)

    def _score_word(self, prefix: str, word: str, context: _Context) -> tuple[object, float]:
        key = prefix + " "
        cached = self._lm_cache.get(key)
        if cached is None:
            index = self.lm.index.get(word)
            state, log10 = self.lm.model.score(context.lm_state, self.lm.unknown if index is None else index)
            gain = self.settings.unk_score if index is None else self.settings.alpha * log10 * math.log(10)
            cached = self._lm_cache[key] = (state, context.lm_score + gain + self.settings.beta)
        return cached

    def best_text(self) -> str:
        """The best prefix so far (for partial results), without its trailing space."""
        beam_prefix = max(self.beams.items(), key=lambda item: item[1].acoustic + item[1].context.bonus)[0]
        return " ".join(beam_prefix.split())

    def finish(self, count: int = 1) -> list[SearchResult]:
        """The `count` best distinct hypotheses, best first, once the last word is closed and scored."""
        results: dict[str, SearchResult] = {}
        for prefix, beam in self.beams.items():
            context = beam.context
            if prefix and prefix[-1] != " ":
                context = self._close_word(prefix, context)
            score = beam.acoustic + context.lm_score + context.hot_kept
            if self.lm is not None:
                score += self.settings.alpha * self.lm.model.finish(context.lm_state)[1] * math.log(10)
            text = " ".join(prefix.split())
            if text not in results or results[text].score < score:
                results[text] = SearchResult(text, score, prefix, beam.frames)
        return sorted(results.values(), key=lambda result: -result.score)[:count]


def search_path(result: SearchResult, log_probs: np.ndarray, alphabet: Alphabet) -> np.ndarray:
    """A frame-level CTC path [T] for a result, so its words get times and confidences as greedy's do.

    The search records the frame where each character was first emitted, often its onset, where
    its posterior is still low. Each character is placed instead on the frame of its highest
    posterior before the next character's emission (a frame earlier when the next is the same
    character, so the two stay apart), widened to the run of frames around it where it is the
    frame's best symbol.
    """
    frames = len(log_probs)
    path = np.full(frames, BLANK_INDEX, dtype=np.int32)
    log_probs = np.asarray(log_probs)
    best = log_probs.argmax(axis=-1) if frames else np.zeros(0, np.int64)
    emissions = [(start, alphabet.symbols.index(c)) for start, c in zip(result.frames, result.prefix)]
    for number, (start, symbol) in enumerate(emissions):
        stop = frames
        if number + 1 < len(emissions):
            stop = emissions[number + 1][0] - (emissions[number + 1][1] == symbol)
        stop = max(stop, start + 1)
        peak = start + int(np.argmax(log_probs[start:stop, symbol]))
        first, last = peak, peak
        while first > start and best[first - 1] == symbol:
            first -= 1
        while last + 1 < stop and best[last + 1] == symbol:
            last += 1
        path[first:last + 1] = symbol
    return path


def word_posteriors(word_lists: Sequence[Sequence[str]], scores: Sequence[float], count: int) -> list[list[float]]:
    """For each of the first `count` hypotheses, each word's posterior over all of them: the summed
    softmax weight (of the scores) of the hypotheses a word-level alignment finds holding it too."""
    weights = np.exp(np.asarray(scores, dtype=np.float64) - max(scores))
    weights /= weights.sum()
    posteriors = []
    for words in word_lists[:count]:
        support = np.zeros(len(words))
        for other, weight in zip(word_lists, weights):
            for tag, first, last, _, _ in Levenshtein.opcodes(list(words), list(other)):
                if tag == "equal":
                    support[first:last] += weight
        posteriors.append(support.tolist())
    return posteriors
