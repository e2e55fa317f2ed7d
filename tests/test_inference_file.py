import json
import pickle

import numpy as np
import pandas as pd
import pytest

from ds2_keras.evaluate.inference_file import (
    COLUMNS, TIMING_COLUMNS, InferenceFileError, inference_table, read_inference, write_inference,
)
from ds2_keras.decode.words import Hypothesis, Word

REFERENCES = ["the cat sat", "nan", "a dog"]
PREDICTIONS = ["the cot sat", "", "a dog"]


@pytest.fixture
def table():
    return inference_table(REFERENCES, PREDICTIONS, audio_paths=["/a.wav", "/b.wav", "/c.wav"],
                           durations=[1.5, 0.25, 2.0])


def test_table_holds_per_utterance_rates(table):
    assert table.columns.tolist() == COLUMNS
    np.testing.assert_allclose(table["cer"], [1 / 11, 1.0, 0.0])
    np.testing.assert_allclose(table["wer"], [1 / 3, 1.0, 0.0])


@pytest.mark.parametrize("name", ["eval.json", "eval.csv"])
def test_tables_round_trip(tmp_path, table, name):
    written_rate = 0.25
    path = write_inference(tmp_path / "out" / name, table, written_rate)
    read, rate = read_inference(path)
    assert rate == (written_rate if name.endswith(".json") else None)
    assert read[["audio_path", "reference", "prediction"]].values.tolist() == \
        table[["audio_path", "reference", "prediction"]].values.tolist()
    np.testing.assert_allclose(read[["duration", "cer", "wer"]].to_numpy(float),
                               table[["duration", "cer", "wer"]].to_numpy(float))
    assert [p.name for p in path.parent.iterdir()] == [name]  # no temporary left behind


def test_pickle_is_the_seed_layout_and_round_trips(tmp_path, table):
    path = write_inference(tmp_path / "eval.pkl", table, 0.125)
    with open(path, "rb") as handle:
        assert pickle.load(handle) == (list(zip(PREDICTIONS, REFERENCES)), 0.125)
    read, rate = read_inference(path)
    assert rate == 0.125
    assert read["reference"].tolist() == REFERENCES and read["prediction"].tolist() == PREDICTIONS
    np.testing.assert_allclose(read["cer"], table["cer"])
    assert read["audio_path"].isna().all() and read["duration"].isna().all()


def test_unknown_paths_and_durations_stay_empty(tmp_path):
    path = write_inference(tmp_path / "eval.json", inference_table(["a"], ["b"]), 1.0)
    utterance = json.loads(path.read_text())["utterances"][0]
    assert utterance["audio_path"] is None and utterance["duration"] is None
    read, _ = read_inference(path)
    assert pd.isna(read.loc[0, "duration"])


@pytest.mark.parametrize("name, content", [
    ("eval.pkl", b"not a pickle"),
    ("eval.json", b'{"utterances": []}'),
    ("eval.csv", b"reference,prediction\na,b\n"),
])
def test_unreadable_files_name_the_file(tmp_path, name, content):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(InferenceFileError, match=name):
        read_inference(path)


def test_json_keeps_scores_and_word_timings_where_csv_and_pickle_keep_their_format(tmp_path):
    hypotheses = [Hypothesis("the cot sat", (Word("the", 0.1, 0.3, 0.9), Word("cot", 0.4, 0.6, 0.4),
                                             Word("sat", 0.7, 0.95, 0.8)), -12.5),
                  Hypothesis("", (), -3.0),
                  Hypothesis("a dog", (Word("a", 0.0, 0.06, 1.0), Word("dog", 0.2, 0.5, 0.7)), -4.0)]
    table = inference_table(REFERENCES, PREDICTIONS, hypotheses=hypotheses)
    assert table.columns.tolist() == COLUMNS + TIMING_COLUMNS
    read, _ = read_inference(write_inference(tmp_path / "eval.json", table, 0.5))
    assert read["score"].tolist() == [-12.5, -3.0, -4.0]
    assert read["words"].tolist() == [h.as_dict()["words"] for h in hypotheses]
    assert read.loc[0, "words"][1] == {"text": "cot", "start": 0.4, "end": 0.6, "confidence": 0.4}
    csv, _ = read_inference(write_inference(tmp_path / "eval.csv", table, 0.5))
    assert csv.columns.tolist() == COLUMNS
    with open(write_inference(tmp_path / "eval.pkl", table, 0.5), "rb") as handle:
        assert pickle.load(handle) == (list(zip(PREDICTIONS, REFERENCES)), 0.5)
