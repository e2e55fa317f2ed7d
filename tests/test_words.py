"""Hypotheses with timed words from greedy and beam decoding, on logits whose spikes sit at known frames."""
from __future__ import annotations

import numpy as np
import pytest

from ds2_keras.core.alphabet import ENGLISH_ALPHABET
from ds2_keras.core.config import preset
from ds2_keras.decode.decoders import BeamSearchDecoder, GreedyDecoder, Hypothesis, Word, greedy_decode, greedy_hypotheses
from ds2_keras.core.frames import output_frame_seconds
from ds2_keras.decode.words import WORD_OUTPUTS, words_from_paths
from test_decoding import AMBIGUOUS, arpa, batch, frames  # noqa: F401 (arpa is a fixture)

SYMBOLS = ENGLISH_ALPHABET.symbols
STEP = output_frame_seconds(preset("small"))  # 0.03 s: 10 ms hop, time stride 3
# "hi you": h at frames 1-2, i at 4; y at 9, o at 10 (unsure: 0.5 against u's 0.3), u at 12.
HI_YOU = ["_", "h", "h", "_", "i", "_", " ", "_", "_", "y", {"o": 0.5, "u": 0.3}, "_", "u", "_"]


def posterior(spec, frame, symbol):
    """The probability the constructed logits give `symbol` at `frame`."""
    return float(np.exp(frames(spec)[frame, SYMBOLS.index(symbol)]))


def confidence(spec, emissions):
    """Geometric mean of the posteriors at each letter's (single-frame) peak."""
    return float(np.exp(np.mean([np.log(posterior(spec, f, s)) for f, s in emissions])))


def test_greedy_words_start_at_the_first_frame_and_end_after_the_last():
    (hypothesis,) = greedy_hypotheses(frames(HI_YOU)[None], frame_seconds=STEP)
    assert STEP == 0.03
    assert hypothesis.text == "hi you"
    assert [(w.text, w.start, w.end) for w in hypothesis.words] == [("hi", 0.03, 0.15), ("you", 0.27, 0.39)]
    hi, you = hypothesis.words
    assert hi.confidence == pytest.approx(confidence(HI_YOU, [(1, "h"), (4, "i")]), abs=1e-4)
    assert you.confidence == pytest.approx(confidence(HI_YOU, [(9, "y"), (10, "o"), (12, "u")]), abs=1e-4)
    assert 0 < you.confidence < hi.confidence < 1
    best = frames(HI_YOU).max(axis=-1)  # the path's log-probability: each frame's best symbol
    assert hypothesis.score == pytest.approx(float(best.sum()), abs=1e-4)


def test_greedy_hypotheses_agree_with_greedy_text_and_ignore_frames_past_the_length():
    logits, lengths = batch(HI_YOU, list("a_b c"), [], list("__"), list(" ab  "))
    found = greedy_hypotheses(logits, lengths, frame_seconds=STEP)
    assert [h.text for h in found] == greedy_decode(logits, lengths)
    assert [[w.text for w in h.words] for h in found] == [["hi", "you"], ["ab", "c"], [], [], ["ab"]]
    assert found[1].words == (Word("ab", 0.0, 0.09, found[1].words[0].confidence),
                              Word("c", 0.12, 0.15, found[1].words[1].confidence))
    alone = [greedy_hypotheses(logits[i:i + 1, :n], frame_seconds=STEP)[0] for i, n in enumerate(lengths)]
    assert [h.words for h in alone] == [h.words for h in found]


def test_beam_without_lm_times_words_like_greedy_on_peaked_logits():
    (beam,) = BeamSearchDecoder(beam_width=8).decode(frames(HI_YOU)[None], frame_seconds=STEP)
    (greedy,) = GreedyDecoder().decode(frames(HI_YOU)[None], frame_seconds=STEP)
    assert beam.text == greedy.text == "hi you"
    assert [(w.text, w.start, w.end) for w in beam.words] == [(w.text, w.start, w.end) for w in greedy.words]
    # The beam's confidence is the frame confidence times the word's posterior among alternatives.
    assert all(0 < b.confidence <= g.confidence for b, g in zip(beam.words, greedy.words))


def test_beam_with_lm_times_the_words_of_its_own_path(arpa):  # noqa: F811
    decoder = BeamSearchDecoder(arpa, alpha=1.0, beta=0.5, beam_width=16)
    hypothesis = decoder.decode_utterance(frames(AMBIGUOUS), frame_seconds=STEP)
    # the: t 0, h 2, e 3; cat: c 6, a 7 (where "o" scored higher), t 8; sat: s 11, a 12, t 13.
    assert hypothesis.text == "the cat sat" == " ".join(w.text for w in hypothesis.words)
    assert [(w.text, w.start, w.end) for w in hypothesis.words] == [
        ("the", 0.0, 0.12), ("cat", 0.18, 0.27), ("sat", 0.33, 0.42)]
    cat = hypothesis.words[1]
    assert 0.9 * confidence(AMBIGUOUS, [(6, "c"), (7, "a"), (8, "t")]) < cat.confidence <= confidence(
        AMBIGUOUS, [(6, "c"), (7, "a"), (8, "t")])
    assert cat.confidence < min(hypothesis.words[0].confidence, hypothesis.words[2].confidence)
    assert decoder.transcripts(frames(AMBIGUOUS)[None]) == [hypothesis.text]


def test_no_frames_give_no_words():
    outputs = words_from_paths(np.zeros((2, 0), np.int32), np.zeros((2, 0, 29), np.float32), [0, 0], STEP,
                               ENGLISH_ALPHABET)
    assert set(outputs) == set(WORD_OUTPUTS)
    assert outputs["words"].shape == (2, 0) and outputs["word_counts"].numpy().tolist() == [0, 0]
    assert greedy_hypotheses(np.zeros((1, 0, 29)), frame_seconds=STEP) == [Hypothesis("", (), 0.0)]
    assert BeamSearchDecoder().decode(np.zeros((1, 0, 29)), frame_seconds=STEP)[0].words == ()


def test_shifted_moves_every_word():
    hypothesis = Hypothesis("a b", (Word("a", 0.0, 0.03, 0.5), Word("b", 0.06, 0.09, 0.25)), -1.5)
    assert hypothesis.shifted(20.01) == Hypothesis(
        "a b", (Word("a", 20.01, 20.04, 0.5), Word("b", 20.07, 20.1, 0.25)), -1.5)
