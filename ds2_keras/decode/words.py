"""What every decoder returns: a Hypothesis (text, score, words with times and confidences).

Words come from the frame-level CTC path a decoder chose (greedy: the argmax of each frame;
beam search: the alignment of its best beam), segmented by `words_from_paths`, written once in
TF ops: the SavedModel runs it in its graph and Python runs the same function traced, so a
served model and `ds2 transcribe` cannot disagree about a word's time or confidence.

On a path, an emission is a run of frames holding the same non-blank symbol; a word is a run
of letter emissions between space emissions (blanks do not split words). A word starts at the
first frame of its first letter and ends at the end of the last frame of its last letter
(frames.frame_span_seconds). Its confidence is the geometric mean, over its letters, of each
letter's peak posterior: the highest probability the model gave that letter at any frame of
its emission. TensorFlow is imported on first use, as in decoding.py.
"""
from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Mapping

import numpy as np

from ds2_keras.core.alphabet import BLANK_INDEX, Alphabet
from ds2_keras.core.frames import frame_span_seconds

if TYPE_CHECKING:
    import tensorflow as tf

# Names of the word outputs, as the SavedModel's signatures name them.
WORD_OUTPUTS = ("words", "word_starts", "word_ends", "word_confidences", "word_counts")
# Times are whole frames (10 ms multiples at every preset) times a float32 step: rounding to
# milliseconds drops float32's noise (8.30999947 for frame 277 of 30 ms); confidences keep 4 decimals.
_TIME_DECIMALS = 3
_CONFIDENCE_DECIMALS = 4


@dataclass(frozen=True)
class Word:
    """One recognized word: start and end in seconds from the start of the audio, confidence in [0, 1]."""

    text: str
    start: float
    end: float
    confidence: float


@dataclass(frozen=True)
class Hypothesis:
    """A decoder's transcript of one utterance.

    score: the decoder's log score (greedy: the log-probability of its path; beam search: CTC
    plus the weighted LM score, word bonus and hotword boosts), for ranking transcripts of the
    same audio. nbest: when a beam search was asked for several, the best distinct hypotheses,
    best first (this one among them, first); empty otherwise.
    """

    text: str
    words: tuple[Word, ...]
    score: float
    nbest: tuple[Hypothesis, ...] = ()

    def as_dict(self) -> dict:
        """JSON-ready: {"text", "score", "words": [{"text", "start", "end", "confidence"}, ...]}, and
        "nbest" (a list of such dicts) when there is one."""
        result = {"text": self.text, "score": self.score, "words": [dataclasses.asdict(word) for word in self.words]}
        if self.nbest:
            result["nbest"] = [alternative.as_dict() for alternative in self.nbest]
        return result

    def shifted(self, seconds: float) -> Hypothesis:
        """The same hypothesis with every word `seconds` later (a piece cut from longer audio)."""
        return replace(self, words=tuple(
            replace(w, start=round(w.start + seconds, _TIME_DECIMALS), end=round(w.end + seconds, _TIME_DECIMALS))
            for w in self.words), nbest=tuple(alternative.shifted(seconds) for alternative in self.nbest))


def words_from_paths(paths, log_probs, lengths, frame_seconds, alphabet: Alphabet) -> dict[str, tf.Tensor]:
    """The words of a batch of CTC paths, as TF ops (graph or eager), in dense padded tensors.

    paths: int [B, T], the symbol chosen at each frame (an index of `alphabet.symbols`);
    log_probs: float [B, T, classes] scores the paths were chosen from (logits or
    log-probabilities: they are log-softmaxed here); lengths: int [B] valid frames (later frames
    are ignored); frame_seconds: output_frame_seconds(config).
    Returns WORD_OUTPUTS: words string [B, W] (padded with ""), word_starts, word_ends,
    word_confidences float32 [B, W] (padded with 0), word_counts int32 [B]; W is the most words
    in any row, so the tensors are rectangular, as TF Serving's JSON needs.
    """
    import tensorflow as tf

    log_probs = tf.nn.log_softmax(tf.convert_to_tensor(log_probs, tf.float32))
    paths = tf.cast(paths, tf.int32)
    batch, frames = tf.shape(paths)[0], tf.shape(paths)[1]
    inside = tf.sequence_mask(lengths, frames)
    paths = tf.where(inside, paths, BLANK_INDEX)  # frames past the length emit nothing
    previous = tf.pad(paths[:, :-1], [[0, 0], [1, 0]], constant_values=-1)
    emitting = tf.reshape(tf.not_equal(paths, BLANK_INDEX), [-1])
    opens = tf.reshape(tf.not_equal(paths, BLANK_INDEX) & tf.not_equal(paths, previous), [-1])
    frame = tf.reshape(tf.tile(tf.range(frames)[None], [batch, 1]), [-1])
    row = tf.reshape(tf.tile(tf.range(batch)[:, None], [1, frames]), [-1])
    chosen = tf.reshape(tf.gather(log_probs, paths, batch_dims=2), [-1])  # log p(path[t]) at frame t

    # Emissions (runs of one non-blank symbol), in order: batch row, then time.
    emission = tf.boolean_mask(tf.cumsum(tf.cast(opens, tf.int32)) - 1, emitting)
    emissions = tf.reduce_sum(tf.cast(opens, tf.int32))
    symbol, first, emission_row = (tf.boolean_mask(x, opens) for x in (tf.reshape(paths, [-1]), frame, row))
    last = tf.math.unsorted_segment_max(tf.boolean_mask(frame, emitting), emission, emissions)
    peak = tf.math.unsorted_segment_max(tf.boolean_mask(chosen, emitting), emission, emissions)

    # Words: runs of letter emissions within a row, split by space emissions.
    letter = tf.not_equal(symbol, alphabet.space_index)
    follows_letter = tf.pad(letter[:-1] & tf.equal(emission_row[1:], emission_row[:-1]), [[1, 0]])
    opens_word = letter & ~follows_letter
    word = tf.boolean_mask(tf.cumsum(tf.cast(opens_word, tf.int32)) - 1, letter)
    words = tf.reduce_sum(tf.cast(opens_word, tf.int32))
    characters = tf.gather(tf.constant(list(alphabet.symbols)), tf.boolean_mask(symbol, letter))
    starts, ends = frame_span_seconds(
        tf.cast(tf.boolean_mask(first, opens_word), tf.float32),
        tf.cast(tf.math.unsorted_segment_max(tf.boolean_mask(last, letter), word, words), tf.float32),
        tf.cast(frame_seconds, tf.float32))
    values = {
        "words": tf.strings.unsorted_segment_join(characters, word, words),
        "word_starts": starts,
        "word_ends": ends,
        "word_confidences": tf.exp(tf.math.unsorted_segment_mean(tf.boolean_mask(peak, letter), word, words)),
    }
    word_row = tf.boolean_mask(emission_row, opens_word)
    dense = {name: tf.RaggedTensor.from_value_rowids(value, word_row, nrows=batch).to_tensor()
             for name, value in values.items()}
    return {**dense, "word_counts": tf.math.bincount(word_row, minlength=batch, maxlength=batch, dtype=tf.int32)}


def greedy_hypothesis(logits: np.ndarray, frame_seconds: float, alphabet: Alphabet) -> Hypothesis:
    """The greedy Hypothesis of one utterance's [frames, classes] scores, in numpy.

    The same text, score, word times and confidences as decoding.greedy_hypotheses (TF ops, as
    the SavedModel runs them), for runtimes without TensorFlow (litert_runtime). Emissions are
    runs of one non-blank symbol; a word is a run of letter emissions between spaces, timed from
    its first emission's first frame to its last emission's last frame, its confidence the
    geometric mean of its emissions' peak probabilities.
    """
    logits = np.asarray(logits, np.float32)
    shifted = logits - logits.max(axis=-1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
    path, chosen = log_probs.argmax(axis=-1), log_probs.max(axis=-1)
    emissions: list[list] = []  # [symbol, first frame, last frame, peak log-probability]
    previous = -1
    for frame, symbol in enumerate(path.tolist()):
        if symbol != BLANK_INDEX and symbol == previous:
            emissions[-1][2:] = [frame, max(emissions[-1][3], chosen[frame])]
        elif symbol != BLANK_INDEX:
            emissions.append([symbol, frame, frame, chosen[frame]])
        previous = symbol
    words, letters = [], []
    for emission in emissions + [[alphabet.space_index, 0, 0, 0.0]]:  # a closing space ends the last word
        if emission[0] != alphabet.space_index:
            letters.append(emission)
            continue
        if letters:
            start, end = frame_span_seconds(np.float32(letters[0][1]), np.float32(letters[-1][2]),
                                            np.float32(frame_seconds))
            confidence = np.exp(np.mean(np.array([e[3] for e in letters], np.float32)))
            words.append(Word("".join(alphabet.symbols[e[0]] for e in letters), round(float(start), _TIME_DECIMALS),
                              round(float(end), _TIME_DECIMALS), round(float(confidence), _CONFIDENCE_DECIMALS)))
        letters = []
    return Hypothesis("".join(alphabet.symbols[e[0]] for e in emissions), tuple(words), float(chosen.sum()))


@functools.cache
def _traced_words_from_paths(alphabet: Alphabet):
    import tensorflow as tf

    return tf.function(functools.partial(words_from_paths, alphabet=alphabet), input_signature=[
        tf.TensorSpec([None, None], tf.int32), tf.TensorSpec([None, None, alphabet.num_classes], tf.float32),
        tf.TensorSpec([None], tf.int32), tf.TensorSpec([], tf.float32)])


def word_outputs(paths: np.ndarray, log_probs: np.ndarray, lengths: np.ndarray,
                 frame_seconds: float, alphabet: Alphabet) -> dict[str, np.ndarray]:
    """words_from_paths on numpy input, traced once per alphabet (a graph call, not dozens of eager ops)."""
    outputs = _traced_words_from_paths(alphabet)(np.asarray(paths, np.int32), np.asarray(log_probs, np.float32),
                                         np.asarray(lengths, np.int32), np.float32(frame_seconds))
    return {name: value.numpy() for name, value in outputs.items()}


def hypotheses(outputs: Mapping[str, Any]) -> list[Hypothesis]:
    """One Hypothesis per row of a batch named as the SavedModel names its outputs.

    outputs: "transcripts" (str or bytes) and "scores" [B], and WORD_OUTPUTS; tensors, arrays
    or lists. The recognizer's outputs and the beam decoder's both come through here.
    """
    values = {name: np.asarray(outputs[name]) for name in ("transcripts", "scores", *WORD_OUTPUTS)}
    return [
        Hypothesis(_text(text), tuple(
            Word(_text(values["words"][row, i]), round(float(values["word_starts"][row, i]), _TIME_DECIMALS),
                 round(float(values["word_ends"][row, i]), _TIME_DECIMALS),
                 round(float(values["word_confidences"][row, i]), _CONFIDENCE_DECIMALS))
            for i in range(int(values["word_counts"][row]))), float(values["scores"][row]))
        for row, text in enumerate(values["transcripts"])]


def _text(value: str | bytes) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)
