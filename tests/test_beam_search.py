"""The prefix beam search on logits built by hand: hotwords, unknown words with an LM, N-best,
frame-by-frame feeding, and the option checks of DecoderSettings."""
from __future__ import annotations

import numpy as np
import pytest

from ds2_keras.core.alphabet import ENGLISH_ALPHABET
from ds2_keras.decode.beam_search import word_posteriors
from ds2_keras.decode.settings import DecoderSettings, read_hotwords
from ds2_keras.decode.decoders import BeamSearchDecoder, Hotword, greedy_decode
from ds2_keras.core.errors import DS2Error
from test_decoding import AMBIGUOUS, arpa, frames  # noqa: F401 (arpa is a fixture)

STEP = 0.03
# "the kat sat": the model hears k a little more than c; nothing but a hotword says "cat".
KAT = ["t", "_", "h", "e", "_", " ", {"k": 0.55, "c": 0.45}, "a", "t", "_", " ", "s", "a", "t"]


def beam(*hotwords: Hotword, **options) -> BeamSearchDecoder:
    return BeamSearchDecoder(beam_width=16, hotwords=hotwords, **options)


def test_a_hotword_recovers_what_greedy_and_plain_beam_miss():
    logits = frames(KAT)[None]
    assert greedy_decode(logits) == ["the kat sat"]
    assert beam().transcripts(logits) == ["the kat sat"]
    assert beam(Hotword("cat", 1.0)).transcripts(logits) == ["the cat sat"]
    # A phrase of several words is matched across the space.
    assert beam(Hotword("the cat", 1.0)).transcripts(logits) == ["the cat sat"]
    assert beam(Hotword("a cat", 1.0)).transcripts(logits) == ["the kat sat"]  # "the" is not "a"


def test_a_boost_is_taken_back_when_the_hypothesis_leaves_the_phrase():
    logits = frames(list("the_ cat_ sat"))
    plain = beam().decode_utterance(logits, frame_seconds=STEP)
    assert plain.text == "the cat sat"
    # "cat" spells the start of "catalog", then leaves it: no boost is kept, the score is unchanged.
    for phrase in ("catalog", "ca", "cat sits"):
        left = beam(Hotword(phrase, 2.0)).decode_utterance(logits, frame_seconds=STEP)
        assert left.text == plain.text and left.score == pytest.approx(plain.score, abs=1e-6), phrase
    kept = beam(Hotword("cat", 2.0)).decode_utterance(logits, frame_seconds=STEP)
    assert kept.text == plain.text and kept.score == pytest.approx(plain.score + 3 * 2.0, abs=1e-6)
    # A clearly heard "cats" leaves "cat" and loses the boost, so the boost does not cut it to "cat"
    # (a boost larger than the acoustic evidence would: boosts are per letter, keep them moderate).
    cats = frames(list("the_ cats_ sat"))
    assert beam(Hotword("cat", 2.0)).transcripts(cats[None]) == ["the cats sat"]
    assert beam(Hotword("cat", 5.0)).transcripts(cats[None]) == ["the cat sat"]


def test_an_out_of_vocabulary_word_is_spelled_with_the_lm_on(arpa):  # noqa: F811
    logits = frames(list("the_ zebra_ sat"))[None]  # "zebra" is not in the LM
    with_lm = BeamSearchDecoder(arpa, alpha=1.0, beta=0.5, beam_width=16)
    assert with_lm.transcripts(logits) == ["the zebra sat"]
    # The LM still corrects known words next to it; an unknown word scores unk_score instead of the LM.
    assert with_lm.transcripts(frames(AMBIGUOUS)[None]) == ["the cat sat"]
    assert "zebra" not in with_lm.with_weights(1.0, 0.5, unk_score=-200.0).transcripts(logits)[0]


def test_nbest_is_sorted_distinct_and_led_by_the_best(arpa):  # noqa: F811
    decoder = BeamSearchDecoder(arpa, alpha=1.0, beta=0.5, beam_width=16, nbest=4)
    best = decoder.decode_utterance(frames(AMBIGUOUS), frame_seconds=STEP)
    texts, scores = [h.text for h in best.nbest], [h.score for h in best.nbest]
    assert len(best.nbest) == 4 and len(set(texts)) == 4
    assert scores == sorted(scores, reverse=True)
    assert (texts[0], scores[0]) == (best.text, best.score) == ("the cat sat", best.score)
    assert "the cot sat" in texts
    assert [w["text"] for w in best.as_dict()["nbest"][0]["words"]] == ["the", "cat", "sat"]
    assert BeamSearchDecoder(beam_width=16).decode_utterance(frames(AMBIGUOUS), frame_seconds=STEP).nbest == ()


def test_feeding_frames_in_chunks_ends_where_one_call_ends(arpa):  # noqa: F811
    rng = np.random.default_rng(5)
    logits = rng.normal(size=(120, ENGLISH_ALPHABET.num_classes)).astype(np.float32) * 3
    decoder = BeamSearchDecoder(arpa, alpha=0.8, beta=0.5, beam_width=8, hotwords=[Hotword("the cat", 1.5)], nbest=3)
    whole = decoder.decode_utterance(logits, frame_seconds=STEP)
    search, position = decoder.start(), 0
    for size in (0, 1, 7, 30, 2, 80):
        search.advance(logits[position: position + size])
        position += size
    assert decoder.result(search, logits, frame_seconds=STEP) == whole
    assert whole.text.strip()


def test_decoder_settings_check_options_and_hotword_files(tmp_path):
    with pytest.raises(DS2Error, match="hotword 'r2d2': '2' not in the model's alphabet"):
        DecoderSettings("beam", hotwords=("R2D2:3",)).build(ENGLISH_ALPHABET)
    with pytest.raises(DS2Error, match="--hotword/--hotwords needs --decoder beam"):
        DecoderSettings("greedy", hotwords=("cat",)).build(ENGLISH_ALPHABET)
    with pytest.raises(DS2Error, match="--nbest needs --decoder beam"):
        DecoderSettings("greedy", nbest=3).build(ENGLISH_ALPHABET)
    listed = tmp_path / "hot.txt"
    listed.write_text("New  York:3\n# a comment\n\ncat\nratio 3:2:1.5\n", encoding="utf-8")
    assert read_hotwords(listed) == [Hotword("new york", 3.0), Hotword("cat", 2.0), Hotword("ratio 3:2", 1.5)]
    with pytest.raises(DS2Error, match="hotword 'ratio 3:2'"):
        DecoderSettings("beam", hotword_files=(listed,)).build(ENGLISH_ALPHABET)
    with pytest.raises(DS2Error, match="missing.txt: cannot read hotwords"):
        DecoderSettings("beam", hotword_files=(tmp_path / "missing.txt",)).build(ENGLISH_ALPHABET)
    built = DecoderSettings("beam", hotwords=("new york:3", "cat"), nbest=2).build(ENGLISH_ALPHABET)
    assert built.hotwords == (Hotword("new york", 3.0), Hotword("cat", 2.0)) and built.nbest == 2


def test_a_word_the_alternatives_disagree_on_has_a_lower_posterior():
    lists = [["the", "cat", "sat"], ["the", "cot", "sat"], ["a", "cat", "sat"]]
    posteriors = word_posteriors(lists, [0.0, np.log(0.5), np.log(0.5)], 2)
    assert np.allclose(posteriors[0], [0.75, 0.75, 1.0]) and np.allclose(posteriors[1], [0.75, 0.25, 1.0])
