"""Turn per-frame character scores [B, T, classes] into Hypotheses: text, score, and timed words.

Greedy decoding is the neon seed's: argmax per frame, collapse repeats, drop blanks. Its text
exists twice, in numpy (fast, for per-epoch validation) and in TF ops (for the exported
SavedModel), and tests keep the two identical; its Hypotheses come from the TF ops. Beam search
is beam_search.PrefixSearch, with a word n-gram LM (ARPA, gzipped ARPA or KenLM binary, read by
flashlight-text's KenLM wrapper), unknown words, hotwords and N-best. Both decoders hand their frame-level
path to words.words_from_paths, so word times and confidences are computed one way. Every
decoder reads the scores through the model's Alphabet (config.alphabet), and refuses scores
with another number of classes.
"""
from __future__ import annotations

import copy
import dataclasses
import functools
import gzip
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np
from flashlight.lib.text.decoder.kenlm import KenLM
from flashlight.lib.text.dictionary import Dictionary

from ds2_keras.core.alphabet import BLANK_INDEX, ENGLISH_ALPHABET, Alphabet
from ds2_keras.decode.beam_search import Hotword, HotwordTrie, PrefixSearch, SearchSettings, WordLM, search_path, word_posteriors
from ds2_keras.core.errors import LanguageModelError
from ds2_keras.decode.words import Hypothesis, Word, hypotheses, word_outputs, words_from_paths

if TYPE_CHECKING:
    import tensorflow as tf

__all__ = ["BeamSearchDecoder", "Decoder", "GreedyDecoder", "Hotword", "Hypothesis", "Word", "greedy_decode",
           "greedy_decode_tf", "greedy_decode_utterances", "greedy_hypotheses", "greedy_outputs_tf",
           "read_lm_vocabulary", "words_from_paths"]

CONFIDENCE_ALTERNATIVES = 16  # distinct hypotheses whose agreement weighs a beam word's confidence
_UNKNOWN = "<unk>"  # the word KenLM maps every out-of-vocabulary word to
_KENLM_BINARY_MAGIC = b"mmap lm "


def _valid_frames(log_probs: np.ndarray, lengths: Sequence[int] | None, alphabet: Alphabet) -> np.ndarray:
    """[B] frame counts, all T when lengths is None; rejects lengths the batch cannot hold, and
    scores over another number of symbols than the alphabet's."""
    if log_probs.ndim != 3 or log_probs.shape[2] != alphabet.num_classes:
        raise ValueError(f"expected [batch, frames, {alphabet.num_classes}] scores for the alphabet "
                         f"{alphabet.characters!r}, got shape {log_probs.shape}")
    batch, frames = log_probs.shape[:2]
    if lengths is None:
        return np.full(batch, frames)
    lengths = np.asarray(lengths, dtype=np.int64)
    if lengths.shape != (batch,) or (lengths < 0).any() or (lengths > frames).any():
        raise ValueError(f"lengths must be {batch} frame counts within 0..{frames}, got {lengths.tolist()}")
    return lengths


def greedy_decode(logits: np.ndarray, lengths: Sequence[int] | None = None,
                  alphabet: Alphabet = ENGLISH_ALPHABET) -> list[str]:
    """Best-path texts of a [B, T, classes] batch; frames at or past lengths[b] are ignored."""
    logits = np.asarray(logits)
    lengths = _valid_frames(logits, lengths, alphabet)
    best = logits.argmax(axis=-1)
    previous = np.pad(best[:, :-1], ((0, 0), (1, 0)), constant_values=-1)
    inside = np.arange(best.shape[1])[None, :] < lengths[:, None]
    keep = (best != previous) & (best != BLANK_INDEX) & inside
    return [alphabet.decode(row[mask]) for row, mask in zip(best, keep)]


def greedy_decode_utterances(logits: Sequence[np.ndarray], alphabet: Alphabet = ENGLISH_ALPHABET) -> list[str]:
    """greedy_decode for utterances of different lengths, one [T_i, classes] array each."""
    return [greedy_decode(scores[None], alphabet=alphabet)[0] for scores in logits]


def greedy_decode_tf(logits, lengths, alphabet: Alphabet = ENGLISH_ALPHABET):
    """greedy_decode as TF ops ([B, T, classes] float, [B] int -> [B] tf.string), for graphs and exports.

    Written with argmax rather than tf.nn.ctc_greedy_decoder so that ties break exactly as in
    numpy (lowest index wins). TensorFlow is imported here, not at module level, so numpy-only
    users (LM building, reports) do not pay for importing it.
    """
    import tensorflow as tf

    return _collapse_tf(tf.argmax(logits, axis=-1, output_type=tf.int32), lengths, alphabet)


def _collapse_tf(paths, lengths, alphabet: Alphabet):
    """[B] texts of [B, T] CTC paths: repeats collapsed, blanks and frames past lengths dropped."""
    import tensorflow as tf

    previous = tf.pad(paths[:, :-1], [[0, 0], [1, 0]], constant_values=-1)
    inside = tf.sequence_mask(lengths, maxlen=tf.shape(paths)[1])
    keep = tf.not_equal(paths, previous) & tf.not_equal(paths, BLANK_INDEX) & inside
    characters = tf.gather(tf.constant(list(alphabet.symbols)), tf.ragged.boolean_mask(paths, keep))
    return tf.strings.reduce_join(characters, axis=-1)


def greedy_outputs_tf(logits, lengths, frame_seconds, alphabet: Alphabet) -> dict[str, tf.Tensor]:
    """Greedy decoding with words, as TF ops: what the SavedModel answers besides the logits.

    Returns transcripts string [B], scores float32 [B] (the log-probability of the path, the
    sum of each valid frame's best log-probability) and words.WORD_OUTPUTS.
    """
    import tensorflow as tf

    log_probs = tf.nn.log_softmax(tf.convert_to_tensor(logits, tf.float32))
    paths = tf.argmax(log_probs, axis=-1, output_type=tf.int32)
    inside = tf.sequence_mask(lengths, maxlen=tf.shape(paths)[1])
    scores = tf.reduce_sum(tf.where(inside, tf.reduce_max(log_probs, axis=-1), 0.0), axis=-1)
    return {"transcripts": _collapse_tf(paths, lengths, alphabet), "scores": scores,
            **words_from_paths(paths, log_probs, lengths, frame_seconds, alphabet)}


@functools.cache
def _traced_greedy_outputs(alphabet: Alphabet):
    import tensorflow as tf

    return tf.function(functools.partial(greedy_outputs_tf, alphabet=alphabet), input_signature=[
        tf.TensorSpec([None, None, alphabet.num_classes], tf.float32), tf.TensorSpec([None], tf.int32),
        tf.TensorSpec([], tf.float32)])


def greedy_hypotheses(logits: np.ndarray, lengths: Sequence[int] | None = None, *,
                      frame_seconds: float, alphabet: Alphabet = ENGLISH_ALPHABET) -> list[Hypothesis]:
    """Greedy Hypotheses of a [B, T, classes] batch, from the very ops the SavedModel runs.

    frame_seconds is frames.output_frame_seconds(config) of the model that made the logits.
    """
    logits = np.asarray(logits, np.float32)
    lengths = _valid_frames(logits, lengths, alphabet).astype(np.int32)
    return hypotheses(_traced_greedy_outputs(alphabet)(logits, lengths, np.float32(frame_seconds)))


class Decoder:
    """What evaluation needs of a decoder: a description, and Hypotheses of a batch or utterance."""

    description: str
    alphabet: Alphabet

    def decode(self, log_probs: np.ndarray, lengths: Sequence[int] | None = None, *,
               frame_seconds: float) -> list[Hypothesis]:
        """Hypotheses of a [B, T, classes] batch; frames at or past lengths[b] are ignored."""
        raise NotImplementedError

    def decode_utterance(self, log_probs: np.ndarray, *, frame_seconds: float) -> Hypothesis:
        """The Hypothesis of one utterance's [T, classes] scores (logits or log-probabilities)."""
        return self.decode(np.asarray(log_probs)[None], frame_seconds=frame_seconds)[0]


class GreedyDecoder(Decoder):
    """The seed's decoder, and the SavedModel's: argmax per frame, collapse repeats, drop blanks."""

    description = "greedy (argmax, collapse repeats, drop blanks)"

    def __init__(self, alphabet: Alphabet = ENGLISH_ALPHABET):
        self.alphabet = alphabet

    def decode(self, log_probs: np.ndarray, lengths: Sequence[int] | None = None, *,
               frame_seconds: float) -> list[Hypothesis]:
        return greedy_hypotheses(log_probs, lengths, frame_seconds=frame_seconds, alphabet=self.alphabet)


def read_lm_vocabulary(lm_path: Path, vocabulary_path: Path | None = None) -> list[str]:
    """The words a beam search may output: a vocabulary file's first column, else the ARPA unigrams.

    KenLM binaries do not expose their words, so they need `vocabulary_path` (LibriSpeech ships
    librispeech-vocab.txt and librispeech-lexicon.txt; either works).
    """
    if vocabulary_path is not None:
        lines = Path(vocabulary_path).read_text(encoding="utf-8", errors="replace").splitlines()
        return [line.split()[0] for line in lines if line.strip()]
    with open(lm_path, "rb") as handle:
        head = handle.read(len(_KENLM_BINARY_MAGIC))
    if head == _KENLM_BINARY_MAGIC:
        raise LanguageModelError(f"{lm_path}: a KenLM binary does not list its words; pass a vocabulary file too")
    opener = gzip.open if head[:2] == b"\x1f\x8b" else open
    words, inside = [], False
    with opener(lm_path, "rt", encoding="utf-8", errors="replace") as arpa:
        for line in arpa:
            line = line.strip()
            if line == "\\1-grams:":
                inside = True
            elif inside and (not line or line.startswith("\\")):
                return words
            elif inside:
                words.append(line.split()[1])
    raise LanguageModelError(f"{lm_path}: not an ARPA file (no complete \\1-grams: section)")


class BeamSearchDecoder(Decoder):
    """CTC prefix beam search (beam_search.PrefixSearch), optionally with a word n-gram LM and hotwords.

    score = log p_ctc + alpha ln p_lm + beta words + unk_score per word the LM does not know +
    hotword boosts. alpha weighs the LM's natural-log probability (KenLM's log10 is converted)
    and beta is a bonus per word, as in the Deep Speech 2 paper; without an LM alpha, beta and
    unk_score are unused. LM words needing characters outside the alphabet are left out, and
    upper-case LM words are matched lower-case. `nbest` > 1 attaches the best distinct
    hypotheses to each result (Hypothesis.nbest).

    A word's confidence is its frame confidence (words.py: the geometric mean of its letters'
    peak posteriors along the chosen path) times its posterior among the CONFIDENCE_ALTERNATIVES
    best distinct hypotheses (the softmax weight of those that hold it too, aligned by words),
    so a word the LM or a hotword chose over strong competitors is flagged as doubtful.
    """

    def __init__(self, lm_path: str | Path | None = None, alpha: float = SearchSettings.alpha,
                 beta: float = SearchSettings.beta, beam_width: int = SearchSettings.beam_width, *,
                 vocabulary_path: str | Path | None = None, unk_score: float = SearchSettings.unk_score,
                 hotwords: Sequence[Hotword] = (), nbest: int = 1, alphabet: Alphabet = ENGLISH_ALPHABET,
                 weights_note: str = ""):
        self.lm_path = None if lm_path is None else Path(lm_path)
        self.alphabet, self.nbest, self.weights_note = alphabet, nbest, weights_note
        self.settings = SearchSettings(beam_width=beam_width, alpha=alpha, beta=beta, unk_score=unk_score)
        self.hotwords = tuple(hotwords)
        self._trie = HotwordTrie(self.hotwords) if self.hotwords else None
        self._lm = None if self.lm_path is None else load_word_lm(
            self.lm_path, Path(vocabulary_path) if vocabulary_path else None, alphabet)

    @property
    def alpha(self) -> float:
        return self.settings.alpha

    @property
    def beta(self) -> float:
        return self.settings.beta

    @property
    def beam_width(self) -> int:
        return self.settings.beam_width

    def with_weights(self, alpha: float, beta: float, unk_score: float | None = None) -> BeamSearchDecoder:
        """A decoder sharing this one's loaded LM, with other weights (for grid search)."""
        other = copy.copy(self)
        other.settings = dataclasses.replace(self.settings, alpha=alpha, beta=beta, unk_score=(
            self.settings.unk_score if unk_score is None else unk_score))
        return other

    def with_hotwords(self, hotwords: Sequence[Hotword]) -> BeamSearchDecoder:
        """A decoder sharing this one's loaded LM and weights, favouring other phrases (per-utterance lists)."""
        other = copy.copy(self)
        other.hotwords = tuple(hotwords)
        other._trie = HotwordTrie(other.hotwords) if other.hotwords else None
        return other

    @property
    def description(self) -> str:
        extras = f", {len(self.hotwords)} hotwords" if self.hotwords else ""
        if self.lm_path is None:
            return f"beam search (width {self.beam_width}, no LM{extras})"
        note = f", {self.weights_note}" if self.weights_note else ""
        return (f"beam search (width {self.beam_width}, LM {self.lm_path.name}, alpha {self.alpha:g}, "
                f"beta {self.beta:g}, unk {self.settings.unk_score:g}{note}{extras})")

    def start(self) -> PrefixSearch:
        """A search to feed frame by frame (streaming); end it with `result`."""
        return PrefixSearch(self.alphabet, self.settings, self._lm, self._trie)

    def result(self, search: PrefixSearch, log_probs: np.ndarray, *, frame_seconds: float) -> Hypothesis:
        """The Hypothesis (with its N-best when asked) of a search fed `log_probs` [T, classes], all of them."""
        log_probs = np.asarray(log_probs, dtype=np.float32).reshape(-1, self.alphabet.num_classes)
        found = search.finish(max(self.nbest, CONFIDENCE_ALTERNATIVES))
        kept = found[:self.nbest]
        paths = np.stack([search_path(result, log_probs, self.alphabet) for result in kept])
        outputs = word_outputs(paths, np.repeat(log_probs[None], len(kept), axis=0), np.full(len(kept), len(log_probs)),
                               frame_seconds, self.alphabet)
        ranked = hypotheses({"transcripts": [r.text for r in kept], "scores": [r.score for r in kept], **outputs})
        posteriors = word_posteriors([r.text.split() for r in found], [r.score for r in found], len(kept))
        ranked = [dataclasses.replace(h, words=tuple(
            dataclasses.replace(w, confidence=round(w.confidence * posterior, 4))
            for w, posterior in zip(h.words, word_posterior))) for h, word_posterior in zip(ranked, posteriors)]
        return dataclasses.replace(ranked[0], nbest=tuple(ranked) if self.nbest > 1 else ())

    def decode(self, log_probs: np.ndarray, lengths: Sequence[int] | None = None, *,
               frame_seconds: float) -> list[Hypothesis]:
        log_probs = np.asarray(log_probs, dtype=np.float32)
        results = []
        for utterance, length in zip(log_probs, _valid_frames(log_probs, lengths, self.alphabet)):
            search = self.start()
            search.advance(utterance[:length])
            results.append(self.result(search, utterance[:length], frame_seconds=frame_seconds))
        return results

    def transcripts(self, log_probs: np.ndarray, lengths: Sequence[int] | None = None) -> list[str]:
        """Texts only of a [B, T, classes] batch (no word timings), for callers that score texts."""
        log_probs = np.asarray(log_probs, dtype=np.float32)
        texts = []
        for utterance, length in zip(log_probs, _valid_frames(log_probs, lengths, self.alphabet)):
            search = self.start()
            search.advance(utterance[:length])
            texts.append(search.finish()[0].text)
        return texts


def load_word_lm(lm_path: Path, vocabulary_path: Path | None, alphabet: Alphabet) -> WordLM:
    """The LM through flashlight's KenLM wrapper, with its words the alphabet can spell (lower case)."""
    if not lm_path.is_file():
        raise LanguageModelError(f"{lm_path}: language model not found")
    words = [w for w in dict.fromkeys(read_lm_vocabulary(lm_path, vocabulary_path))
             if w != _UNKNOWN and set(w.lower()) <= alphabet.letters]
    if not words:
        raise LanguageModelError(f"{lm_path}: no LM word can be spelled with the model's alphabet "
                                 f"{alphabet.characters!r}")
    try:
        model = KenLM(str(lm_path), Dictionary(words + [_UNKNOWN]))
    except RuntimeError as error:
        raise LanguageModelError(f"{lm_path}: KenLM cannot load it ({error})") from None
    index = {word.lower(): i for i, word in enumerate(words)}
    prefixes = frozenset(word[:end] for word in index for end in range(1, len(word) + 1))
    return WordLM(model, index, prefixes, len(words))
