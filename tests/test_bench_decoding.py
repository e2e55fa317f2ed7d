"""scripts/bench_decoding.py: its error attribution and biasing lists on words made up here, and one
small run end to end on the session's tiny model."""
from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

from ds2_keras.data.manifest import read_manifest

SCRIPTS = Path(__file__).resolve().parent.parent / "scripts"


@pytest.fixture(scope="module")
def bench():
    sys.path.insert(0, str(SCRIPTS))  # it imports bench_word_timings beside it
    try:
        spec = importlib.util.spec_from_file_location("bench_decoding", SCRIPTS / "bench_decoding.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.path.remove(str(SCRIPTS))


def test_errors_are_attributed_to_biased_and_other_words(bench):
    reference = "the king met lagree at the gate".split()
    hypothesis = "the kin met la gree at gate".split()
    # king -> kin (other), lagree -> la + gree (biased substitution, then insertion of "gree": other),
    # the deleted "the" (other).
    assert bench.attributed_errors(reference, hypothesis, {"lagree"}) == (1, 3)
    assert bench.attributed_errors(reference, reference, {"lagree"}) == (0, 0)
    assert bench.attributed_errors(["a"], ["a", "lagree"], {"lagree"}) == (1, 0)  # an inserted listed word
    biased, other = bench.biasing_wer([" ".join(reference)], [" ".join(hypothesis)], [{"lagree"}])
    assert (biased, other) == (1.0, 3 / 6)


def test_biasing_lists_hold_own_rare_words_and_distractors(bench):
    references = ["the cat sat", "the zebra ran", "a quokka smiled"]
    lists = bench.biasing_lists(references, common={"the", "a", "cat", "sat", "ran"}, distractors=1, seed=0)
    assert lists[0] <= {"zebra", "quokka", "smiled"} and len(lists[0]) == 1  # nothing rare of its own
    assert "zebra" in lists[1] and len(lists[1]) == 2
    assert {"quokka", "smiled"} <= lists[2] and len(lists[2]) == 3


def test_oov_recall_counts_kept_words_missing_from_the_vocabulary(bench):
    recall, count = bench.oov_recall(["the zebra ran", "a quokka smiled"], ["the zebra ran", "a quoka smiled"],
                                     vocabulary={"the", "ran", "a"})
    assert count == 3 and recall == pytest.approx(2 / 3)


def test_a_small_run_writes_every_figure(bench, trained_model, corpus, tmp_path, monkeypatch):
    out = tmp_path / "bench"
    monkeypatch.setattr(sys, "argv", ["bench_decoding.py", "--model-file", str(trained_model), "--train",
                                      str(corpus["train"]), "--test", str(corpus["val"]), "--out", str(out),
                                      "--order", "2", "--beam-width", "4", "--common", "20", "--distractors", "3"])
    bench.main()
    results = json.loads((out / "results.json").read_text())
    rows = read_manifest(corpus["val"])
    assert results["utterances"] == len(rows) and results["audio_seconds"] == pytest.approx(rows["duration"].sum())
    for name in ("greedy", "beam", "beam + LM"):
        assert set(results[name]) == {"wer", "cer", "oov_recall", "oov_words", "rtf", "confidence_auc"}
        assert results[name]["oov_words"] == results["greedy"]["oov_words"]  # the same references
    assert set(results["biasing"]["with_hotwords"]) == {"biased_wer", "other_wer"}
    assert (out / "reliability.png").read_bytes()[:4] == b"\x89PNG"
