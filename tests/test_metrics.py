import jiwer
import numpy as np
import pytest

from ds2_keras.core.metrics import cer, edit_distance, wer
from ds2_keras.evaluate.report import format_report, worst_utterances


def test_edit_distance_counts_substitutions_insertions_and_deletions():
    assert edit_distance("kitten", "sitting") == 3
    assert edit_distance("", "abc") == 3
    assert edit_distance("abc", "") == 3
    assert edit_distance(["the", "cat"], ["the", "cat", "sat"]) == 1


def test_cer_counts_spaces_as_characters():
    result = cer(["a b"], ["ab"])
    assert (result.edits, result.reference_length) == (1, 3)
    assert result.rate == pytest.approx(1 / 3)


def test_pooled_and_mean_differ_and_say_which_they_are():
    references, hypotheses = ["a b c d", "e"], ["a b c d", "f"]
    pooled, mean = wer(references, hypotheses), wer(references, hypotheses, pooling="mean")
    assert pooled.rate == pytest.approx(1 / 5)
    assert mean.rate == pytest.approx((0 / 4 + 1 / 1) / 2)
    np.testing.assert_array_equal(pooled.utterance_edits, [0, 1])
    np.testing.assert_array_equal(pooled.utterance_lengths, [4, 1])
    np.testing.assert_allclose(pooled.utterance_rates, [0.0, 1.0])
    assert str(pooled) == "WER 20.00% (1 edits / 5 reference words, pooled over the corpus)"
    assert str(mean) == "WER 50.00% (mean of 2 per-utterance rates, as the neon seed)"


def test_empty_reference_scores_its_insertions_against_length_one():
    result = wer(["", "a"], ["x y", "a"], pooling="mean")
    np.testing.assert_allclose(result.utterance_rates, [2.0, 0.0])
    assert result.rate == pytest.approx(1.0)
    assert wer(["", "a"], ["x y", "a"]).rate == pytest.approx(2.0)


def test_pooled_rates_match_jiwer_on_random_strings():
    rng = np.random.default_rng(7)

    def sentence():
        words = ["".join(rng.choice(list("abc'"), rng.integers(1, 4))) for _ in range(rng.integers(1, 6))]
        return " ".join(words)

    references = [sentence() for _ in range(200)]
    hypotheses = [sentence() if rng.random() < 0.7 else references[i] for i in range(200)]
    assert wer(references, hypotheses).rate == pytest.approx(jiwer.wer(references, hypotheses))
    assert cer(references, hypotheses).rate == pytest.approx(jiwer.cer(references, hypotheses))


@pytest.mark.parametrize("references, hypotheses, pooling, message", [
    (["a"], ["a", "b"], "pooled", "1 references but 2 hypotheses"),
    ([], [], "pooled", "zero utterances"),
    (["a"], ["a"], "median", "pooling must be one of"),
])
def test_bad_arguments_are_refused_with_the_reason(references, hypotheses, pooling, message):
    with pytest.raises(ValueError, match=message):
        cer(references, hypotheses, pooling=pooling)


def test_report_states_totals_decoder_pooling_and_worst_utterances():
    references = ["the cat sat", "a dog", "hello world", "one two three four"]
    predictions = ["the cot sat", "a dog", "hollow word", "one two three for"]
    character_errors, word_errors = cer(references, predictions), wer(references, predictions, "mean")
    report = format_report(character_errors, word_errors, references, predictions,
                           decoder="greedy (best path)", hours=1.5, worst=2)
    lines = report.splitlines()
    assert lines[:4] == [
        "evaluated 4 utterances, 1.50 hours",
        "decoder: greedy (best path)",
        "CER 11.11% (5 edits / 45 reference characters, pooled over the corpus)",
        "WER 39.58% (mean of 4 per-utterance rates, as the neon seed)",
    ]
    assert lines[4] == "2 worst utterances (by WER):"
    assert lines[5].startswith("  #2  WER 100.0%")
    assert lines[6:8] == ["    reference:  hello world", "    prediction: hollow word"]
    assert lines[8].startswith("  #0  WER 33.3%")  # ties with #3 on WER and edits; worse CER
    assert len(lines) == 11


def test_worst_utterances_orders_by_wer_then_edits():
    references = ["a b c", "a", "a b c d"]
    predictions = ["a b x", "x", "a x c x"]
    order = worst_utterances(wer(references, predictions), cer(references, predictions), 3)
    assert order.tolist() == [1, 2, 0]
