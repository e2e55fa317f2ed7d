"""Audio holding NaN or Inf samples (a float WAV can) is bad audio wherever it is decoded.

The model is a freshly initialized `tiny` one: what is checked is which files are used and
what the user is told, not what the model predicts.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import soundfile
from click.testing import CliRunner

from corpus_fixtures import tone, write_nonfinite_wav, write_tone
from ds2_keras.data.audio import AudioError, load_audio
from ds2_keras.cli.main import main
from ds2_keras.data.manifest import REQUIRED_COLUMNS, write_manifest
from test_transcribe import write_tiny_model

NON_FINITE = "non-finite samples (NaN or Inf)"


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    return write_tiny_model(tmp_path_factory.mktemp("model") / "model.keras")


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_load_audio_refuses_non_finite_samples(tmp_path, value):
    path = write_nonfinite_wav(tmp_path / "bad.wav", value)
    with pytest.raises(AudioError) as raised:
        load_audio(path)
    assert str(raised.value) == f"{path}: {NON_FINITE}"


def test_finite_float_audio_still_loads(tmp_path):
    path = tmp_path / "loud.wav"
    soundfile.write(path, 1.5 * tone(0.5).astype(np.float32), 16000, subtype="FLOAT")  # out of [-1, 1], finite
    assert np.isfinite(load_audio(path)).all()


def test_evaluate_skips_counts_and_names_a_non_finite_file(model_file, tmp_path):
    rows = []
    for name in ("one", "two"):
        audio = tmp_path / f"{name}.wav"
        rows.append((str(audio), str(tmp_path / f"{name}.txt"), name, write_tone(audio, 0.5)))
    bad = write_nonfinite_wav(tmp_path / "nan.wav")
    rows.append((str(bad), str(tmp_path / "nan.txt"), "three", 0.5))
    manifest = write_manifest(pd.DataFrame(rows, columns=REQUIRED_COLUMNS), tmp_path / "manifest.csv")
    result = CliRunner().invoke(main, ["evaluate", "--manifest", f"val:{manifest}", "--model-file", str(model_file)],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "evaluated 2 utterances" in result.output
    assert f"skipped 1 utterances:\n  {bad}: {NON_FINITE}" in result.output


def test_transcribe_reports_a_non_finite_file_in_one_line(model_file, tmp_path):
    bad = write_nonfinite_wav(tmp_path / "inf.wav", np.inf)
    result = CliRunner().invoke(main, ["transcribe", "--model-file", str(model_file), str(bad)])
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == f"Error: {bad}: {NON_FINITE}\n"
