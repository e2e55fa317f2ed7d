import gzip

import numpy as np
import pytest
import tensorflow as tf

from ds2_keras.core.alphabet import BLANK_INDEX, ENGLISH_ALPHABET
from ds2_keras.core.errors import LanguageModelError
from ds2_keras.decode.decoders import BeamSearchDecoder, greedy_decode, greedy_decode_tf, read_lm_vocabulary
from ds2_keras.decode.lm import build_arpa, grid_search

SYMBOLS = ENGLISH_ALPHABET.symbols


def reference_greedy(logits, length):
    """The textbook definition, one frame at a time."""
    text, previous = "", None
    for frame in logits[:length]:
        best = int(np.argmax(frame))
        if best != previous and best != BLANK_INDEX:
            text += SYMBOLS[best]
        previous = best
    return text


def frames(spec, floor=1e-3):
    """[T, 29] log-probabilities: each frame is one symbol ("_" = blank) or a {symbol: weight} mix."""
    rows = []
    for item in spec:
        weights = np.full(len(SYMBOLS), floor)
        for symbol, weight in ({item: 1.0} if isinstance(item, str) else item).items():
            weights[SYMBOLS.index(symbol)] = weight
        rows.append(np.log(weights / weights.sum()))
    return np.array(rows, dtype=np.float32)


def batch(*specs):
    """Pad utterances to one [B, T, 29] batch with noise frames, returning it and the lengths."""
    longest = max(len(s) for s in specs)
    padding = frames(["z"] * longest)
    logits = np.stack([np.vstack([frames(s), padding[len(s):]]) if s else padding for s in specs])
    return logits, np.array([len(s) for s in specs])


CRAFTED = [
    list("hhee_ll_lo"),       # repeats collapse, a blank keeps the double l
    list("a_a"),              # blank between repeats: two letters
    list("aa"),               # no blank: one letter
    list("____"),             # all blank
    [],                       # no frames at all
    list(" a  b "),           # spaces are characters: kept as the seed kept them
]


def test_numpy_and_tf_greedy_match_the_reference_on_crafted_logits():
    logits, lengths = batch(*CRAFTED)
    expected = ["hello", "aa", "a", "", "", " a b "]
    assert [reference_greedy(x, n) for x, n in zip(logits, lengths)] == expected
    assert greedy_decode(logits, lengths) == expected
    decoded = greedy_decode_tf(tf.constant(logits), tf.constant(lengths, tf.int32))
    assert [s.decode() for s in decoded.numpy()] == expected


def test_frames_past_the_length_are_ignored():
    logits = frames(list("ab_cd"))[None]
    assert greedy_decode(logits, [2]) == ["ab"]
    assert greedy_decode(logits) == ["abcd"]
    assert greedy_decode_tf(logits, [2]).numpy().tolist() == [b"ab"]
    # A repeat across the cut is not merged with a frame that is ignored.
    assert greedy_decode(frames(list("aab"))[None], [1]) == ["a"]


def test_numpy_and_tf_greedy_agree_on_random_logits_in_a_traced_graph():
    rng = np.random.default_rng(3)
    logits = rng.normal(size=(8, 40, len(SYMBOLS))).astype(np.float32)
    logits[:, :, BLANK_INDEX] += 1.0  # realistic: blanks common
    lengths = rng.integers(0, 41, size=8)
    traced = tf.function(greedy_decode_tf, input_signature=[
        tf.TensorSpec([None, None, len(SYMBOLS)], tf.float32), tf.TensorSpec([None], tf.int32)])
    decoded = [s.decode() for s in traced(logits, lengths.astype(np.int32)).numpy()]
    assert decoded == greedy_decode(logits, lengths) == [reference_greedy(x, n) for x, n in zip(logits, lengths)]


def test_greedy_rejects_lengths_the_batch_cannot_hold():
    with pytest.raises(ValueError, match="within 0..3"):
        greedy_decode(np.zeros((1, 3, len(SYMBOLS))), [4])


def test_beam_without_lm_agrees_with_greedy_on_peaked_logits():
    logits, lengths = batch(*CRAFTED[:4])
    assert BeamSearchDecoder(beam_width=8).transcripts(logits, lengths) == greedy_decode(logits, lengths)


def test_beam_without_lm_sums_alignments_where_greedy_takes_one_path():
    # Blank wins each frame (0.6), but "a" has 0.4*0.6 + 0.6*0.4 + 0.4*0.4 = 0.64 over its paths.
    logits = frames([{"_": 0.6, "a": 0.4}] * 2, floor=1e-6)[None]
    assert greedy_decode(logits) == [""]
    assert BeamSearchDecoder(beam_width=8).transcripts(logits) == ["a"]


SENTENCES = ["the cat sat on the mat"] * 20 + ["a cot is a small bed"] * 3 + ["the dog sat"] * 5
# Acoustically "cot" is slightly ahead of "cat"; the LM knows cats sit and cots do not.
AMBIGUOUS = ["t", "_", "h", "e", "_", " ", "c", {"o": 0.55, "a": 0.45}, "t", "_", " ", "s", "a", "t"]


@pytest.fixture(scope="module")
def arpa(tmp_path_factory):
    return build_arpa(SENTENCES, tmp_path_factory.mktemp("lm") / "words.arpa", order=3)


def test_lm_fixes_what_greedy_gets_wrong(arpa):
    logits = frames(AMBIGUOUS)[None]
    assert greedy_decode(logits) == ["the cot sat"]
    assert BeamSearchDecoder(beam_width=16).transcripts(logits) == ["the cot sat"]
    with_lm = BeamSearchDecoder(arpa, alpha=1.0, beta=0.5, beam_width=16)
    assert with_lm.transcripts(logits) == ["the cat sat"]
    assert with_lm.with_weights(0.0, 0.0).transcripts(logits) == ["the cot sat"]
    assert with_lm.description == "beam search (width 16, LM words.arpa, alpha 1, beta 0.5, unk -10)"


def test_lm_words_are_matched_lower_case_and_gzipped_arpa_loads(tmp_path):
    upper = build_arpa([s.upper() for s in SENTENCES], tmp_path / "upper.arpa", order=2)
    packed = tmp_path / "upper.arpa.gz"
    packed.write_bytes(gzip.compress(upper.read_bytes()))
    assert "CAT" in read_lm_vocabulary(packed)
    decoder = BeamSearchDecoder(packed, alpha=1.0, beta=0.5, beam_width=16)
    assert decoder.transcripts(frames(AMBIGUOUS)[None]) == ["the cat sat"]


def test_lm_problems_name_the_file(tmp_path, arpa):
    with pytest.raises(LanguageModelError, match="missing.arpa"):
        BeamSearchDecoder(tmp_path / "missing.arpa")
    binary = tmp_path / "model.binary"
    binary.write_bytes(b"mmap lm http://kheafield.com/code format version 5\n")
    with pytest.raises(ValueError, match="model.binary: a KenLM binary does not list its words"):
        BeamSearchDecoder(binary)
    broken = tmp_path / "broken.arpa"
    broken.write_text("hello\n")
    with pytest.raises(ValueError, match="broken.arpa: not an ARPA file"):
        BeamSearchDecoder(broken)
    vocabulary = tmp_path / "vocab.txt"
    vocabulary.write_text("the\ncat\n")
    assert read_lm_vocabulary(arpa, vocabulary) == ["the", "cat"]


def test_grid_search_prefers_weights_that_use_the_lm(arpa):
    logits = [frames(AMBIGUOUS), frames(list("the dog sat"))]
    messages = []
    best, table = grid_search(logits, [len(x) for x in logits], ["the cat sat", "the dog sat"],
                              arpa, {"alpha": [0.0, 1.0], "beta": [0.5]}, beam_width=16, echo=messages.append)
    assert best == {"alpha": 1.0, "beta": 0.5}
    assert table[["alpha", "wer"]].values.tolist() == [[1.0, 0.0], [0.0, 1 / 6]]
    assert len(messages) == 4 and messages[1].startswith("[1/2] alpha 0") and messages[-1].startswith("best:")


def test_tf_greedy_survives_a_savedmodel_round_trip(tmp_path):
    module = tf.Module()
    module.decode = tf.function(lambda logits, lengths: greedy_decode_tf(logits, lengths, ENGLISH_ALPHABET),
                                input_signature=[tf.TensorSpec([None, None, len(SYMBOLS)], tf.float32),
                                                 tf.TensorSpec([None], tf.int32)])
    tf.saved_model.save(module, str(tmp_path / "saved"))
    logits, lengths = batch(*CRAFTED)
    decoded = tf.saved_model.load(str(tmp_path / "saved")).decode(logits, lengths.astype(np.int32))
    assert [s.decode() for s in decoded.numpy()] == greedy_decode(logits, lengths)
