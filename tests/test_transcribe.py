"""`ds2 transcribe`: cutting long audio at pauses, batching, and one-line errors per file.

A tiny model with random weights is enough: its transcripts are arbitrary but deterministic
and non-empty, so equality between code paths is a real check.
"""
from __future__ import annotations

import importlib
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile
from click.testing import CliRunner

from ds2_keras.data.audio import load_audio
from ds2_keras.model.checkpoints import load_model_file, save_model_file
from ds2_keras.cli.main import main
from ds2_keras.core.config import preset
from ds2_keras.model.network import DS2Model
from ds2_keras.deploy.recognizer import recognizer
from ds2_keras.deploy.transcribe import (
    join_pieces, recognize_batches, split_at_pauses, transcribe, transcribe_files,
)
from ds2_keras.decode.transcript_writers import transcript_record
from ds2_keras.decode.words import Hypothesis, Word
from test_transcript_writers import parse_srt, parse_vtt

RATE = 16000


def write_tiny_model(path: Path) -> Path:
    """A freshly initialized `tiny` model saved as a ds2 model file (seeded, so reproducible)."""
    import keras

    keras.utils.set_random_seed(7)
    save_model_file(DS2Model(preset("tiny")), path)
    return path


def speechlike(seconds: float, seed: int, rate: int = RATE) -> np.ndarray:
    """Gliding harmonics under a syllable-rate envelope plus a little noise: varied spectra."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    pitch = 120 + 60 * np.sin(2 * np.pi * rng.uniform(0.3, 1.5) * t)
    phase = 2 * np.pi * np.cumsum(pitch) / rate
    voice = sum(np.sin(k * phase) / k for k in range(1, 8))
    envelope = np.clip(np.sin(2 * np.pi * rng.uniform(2, 5) * t), 0, None)
    return (0.2 * voice * envelope + 0.01 * rng.normal(size=t.size)).astype(np.float32)


@pytest.fixture(scope="module")
def model_file(tmp_path_factory) -> Path:
    return write_tiny_model(tmp_path_factory.mktemp("model") / "model.keras")


@pytest.fixture(scope="module")
def module(model_file):
    return recognizer(load_model_file(model_file, compile=False))


def test_short_audio_is_not_cut():
    samples = speechlike(2.0, 0)
    (piece,) = split_at_pauses(samples, RATE, max_seconds=2.0)
    np.testing.assert_array_equal(piece, samples)


def test_long_audio_is_cut_at_pauses_into_bounded_pieces():
    # Ten 0.9 s bursts separated by 0.3 s of silence: every cut must land in a silence.
    burst, gap = speechlike(0.9, 1), np.zeros(int(0.3 * RATE), np.float32)
    samples = np.concatenate([np.concatenate([burst, gap]) for _ in range(10)])
    pieces = split_at_pauses(samples, RATE, max_seconds=2.0, search_seconds=1.0)
    assert len(pieces) > 1
    assert all(len(p) <= 2 * RATE for p in pieces)
    np.testing.assert_array_equal(np.concatenate(pieces), samples)
    period = len(burst) + len(gap)
    cuts = np.cumsum([len(p) for p in pieces[:-1]])
    assert all(cut % period >= len(burst) for cut in cuts), cuts % period


def test_join_pieces_keeps_a_single_transcript_and_spaces_several():
    single = Hypothesis(" ab ", (Word("ab", 0.03, 0.09, 0.5),), -2.0)
    assert join_pieces([single], [0.0]) == single
    pieces = [Hypothesis("ab ", (Word("ab", 0.03, 0.09, 0.5),), -2.0), Hypothesis("", (), -1.0),
              Hypothesis(" cd", (Word("cd", 0.3, 0.36, 0.25),), -3.0)]
    assert join_pieces(pieces, [0.0, 20.0, 31.5]) == Hypothesis(
        "ab cd", (Word("ab", 0.03, 0.09, 0.5), Word("cd", 31.8, 31.86, 0.25)), -6.0)


def timed_words(hypothesis: Hypothesis) -> list[tuple[str, float, float]]:
    return [(word.text, word.start, word.end) for word in hypothesis.words]


def test_batching_does_not_change_transcripts(module):
    waveforms = [speechlike(s, seed) for seed, s in enumerate((0.4, 1.7, 0.9, 2.6, 1.2))]
    alone = [recognize_batches(module, [w], batch_size=1)[0] for w in waveforms]
    texts = [h.text for h in alone]
    assert all(texts) and len(set(texts)) == len(texts) and all(h.words for h in alone)
    for batch_size in (3, 16):
        batched = transcribe(module, waveforms, batch_size=batch_size)
        assert [h.text for h in batched] == texts
        assert [timed_words(h) for h in batched] == [timed_words(h) for h in alone]
        for together, single in zip(batched, alone):
            assert [w.confidence for w in together.words] == pytest.approx([w.confidence for w in single.words],
                                                                           abs=2e-4)


def test_audio_shorter_than_one_window_gives_an_empty_transcript(module):
    assert transcribe(module, [speechlike(0.005, 0), speechlike(1.0, 1)])[0] == Hypothesis("", (), 0.0)


def test_recognizer_never_traces_cudnn_kernels(model_file, monkeypatch):
    """Keras picks cuDNN when it sees a GPU; the recognizer must trace the generic kernels anyway."""
    monkeypatch.setattr(importlib.import_module("keras.src.backend.tensorflow.rnn"), "_is_gpu_available", lambda: True)
    graph = recognizer(load_model_file(model_file, compile=False)).recognize.get_concrete_function().graph.as_graph_def()
    ops = {node.op for node in graph.node} | {node.op for f in graph.library.function for node in f.node_def}
    assert ops & {"While", "StatelessWhile"} and not any(op.startswith("CudnnRNN") for op in ops)


def test_long_audio_transcript_joins_its_pieces_with_times_from_the_start(module):
    samples = speechlike(5.0, 3)
    pieces = split_at_pauses(samples, RATE, max_seconds=2.0)
    assert len(pieces) >= 3
    starts = np.cumsum([0] + [len(p) for p in pieces[:-1]]) / RATE
    found = recognize_batches(module, pieces, batch_size=4)
    (joined,) = transcribe(module, [samples], batch_size=4, max_seconds=2.0)
    assert joined == join_pieces(found, starts.tolist())
    assert timed_words(joined) == [(w.text, pytest.approx(w.start + start), pytest.approx(w.end + start))
                                   for piece, start in zip(found, starts) for w in piece.words]
    assert len(joined.words) > len(found[0].words) and joined.words[-1].start > starts[-1]


def test_files_of_any_format_rate_and_channels_match_waveforms(module, tmp_path):
    mono = tmp_path / "mono.wav"
    soundfile.write(mono, speechlike(1.1, 4), RATE, subtype="PCM_16")
    stereo_44k = tmp_path / "stereo.flac"
    soundfile.write(stereo_44k, np.stack([speechlike(1.6, 5, 44100)] * 2, axis=1), 44100)
    mp3_22k = tmp_path / "speech.mp3"
    soundfile.write(mp3_22k, speechlike(2.1, 6, 22050), 22050, format="MP3")
    files = [mono, stereo_44k, mp3_22k]
    expected = transcribe(module, [load_audio(path) for path in files])
    assert [hypothesis for _, hypothesis in transcribe_files(module, files)] == expected


def test_cli_reports_unreadable_files_and_transcribes_the_rest(model_file, tmp_path):
    good = tmp_path / "good.wav"
    soundfile.write(good, speechlike(1.0, 6), RATE)
    garbage = tmp_path / "garbage.wav"
    garbage.write_bytes(b"not audio" * 20)
    missing = tmp_path / "missing.flac"
    result = CliRunner().invoke(main, ["transcribe", "--model-file", str(model_file), str(garbage), str(good),
                                                     str(missing)])
    assert result.exit_code == 1
    assert result.stdout.count("\n") == 1 and result.stdout.startswith(f"{good}\t")
    assert f"Error: {garbage}: unreadable audio" in result.stderr
    assert f"Error: {missing}: file not found" in result.stderr
    assert "2 of 3 audio files could not be transcribed" in result.stderr
    assert "Traceback" not in result.output


def test_cli_single_unreadable_file_is_one_line(model_file, tmp_path):
    missing = tmp_path / "missing.wav"
    result = CliRunner().invoke(main, ["transcribe", "--model-file", str(model_file), str(missing)])
    assert result.exit_code == 1
    (line,) = result.stderr.strip().splitlines()
    assert line == f"Error: {missing}: file not found"
    assert "Traceback" not in result.output


def test_cli_missing_model_file_is_one_line(tmp_path):
    audio = tmp_path / "a.wav"
    soundfile.write(audio, speechlike(0.5, 7), RATE)
    result = CliRunner().invoke(main, ["transcribe", "--model-file", str(tmp_path / "none.keras"), str(audio)])
    assert result.exit_code == 1
    assert result.stderr.strip() == f"Error: {tmp_path / 'none.keras'}: model file not found"


def test_cli_writes_one_file_per_input_in_each_format(model_file, module, tmp_path):
    files = [tmp_path / "one.wav", tmp_path / "two.flac"]
    for seed, path in enumerate(files):
        soundfile.write(path, speechlike(1.5 + seed, seed), RATE)
    expected = transcribe(module, [load_audio(path) for path in files])
    for output_format, parse in (("json", json.loads), ("srt", parse_srt), ("vtt", parse_vtt), ("txt", str)):
        result = CliRunner().invoke(main, ["transcribe", "--model-file", str(model_file), "--format", output_format,
                                                         "--output-dir", str(tmp_path / "out"), *map(str, files)])
        assert result.exit_code == 0, result.output
        assert result.stdout == "" and "transcribing" in result.stderr  # a progress bar for several files
        for path, hypothesis in zip(files, expected):
            written = parse((tmp_path / "out" / f"{path.stem}.{output_format}").read_text())
            if output_format == "json":
                assert written == transcript_record(path, hypothesis)
            elif output_format == "txt":
                assert written == hypothesis.text + "\n"
            else:
                assert [word for _, _, lines in written for line in lines for word in line.split()] == \
                    [word.text for word in hypothesis.words]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(
        f"{stem}.{fmt}" for stem in ("one", "two") for fmt in ("json", "srt", "vtt", "txt"))


def test_cli_prints_json_lines_without_an_output_dir(model_file, module, tmp_path):
    audio = tmp_path / "a.wav"
    soundfile.write(audio, speechlike(1.2, 9), RATE)
    result = CliRunner().invoke(main, ["transcribe", "--model-file", str(model_file), "--format", "json", str(audio)])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == transcript_record(audio, transcribe(module, [load_audio(audio)])[0])


def test_cli_refuses_outputs_that_would_clash(model_file, tmp_path):
    first, second = tmp_path / "a" / "x.wav", tmp_path / "b" / "x.flac"
    for path in (first, second):
        path.parent.mkdir()
        soundfile.write(path, speechlike(0.5, 1), RATE)
    clash = CliRunner().invoke(main, ["transcribe", "--model-file", str(model_file), "--format", "srt",
                                                    "--output-dir", str(tmp_path / "out"), str(first), str(second)])
    assert clash.exit_code == 2 and f"{first} and {second} would both be written to" in clash.stderr
    mixed = CliRunner().invoke(main, ["transcribe", "--model-file", str(model_file), "--format", "vtt",
                                                    str(first), str(second)])
    assert mixed.exit_code == 2 and "vtt subtitles of several files need --output-dir" in mixed.stderr


def test_cli_unwritable_output_dir_is_one_line(model_file, tmp_path):
    audio = tmp_path / "a.wav"
    soundfile.write(audio, speechlike(0.5, 2), RATE)
    blocker = tmp_path / "file"
    blocker.write_text("")
    result = CliRunner().invoke(main, ["transcribe", "--model-file", str(model_file), "--output-dir",
                                                     str(blocker / "out"), str(audio)])
    assert result.exit_code == 1
    assert result.stderr.strip() == f"Error: {blocker / 'out'}: cannot write (not a directory)"


def test_a_hotword_the_model_cannot_spell_is_one_line_before_any_audio_is_read(model_file, tmp_path):
    result = CliRunner().invoke(main, ["transcribe", "--model-file", str(model_file), "--decoder", "beam",
                                       "--hotword", "Café au lait:3", str(tmp_path / "never-read.wav")])
    assert result.exit_code == 1
    assert result.output.startswith("Error: hotword 'café au lait': 'é' not in the model's alphabet ")
    assert len(result.output.strip().splitlines()) == 1
