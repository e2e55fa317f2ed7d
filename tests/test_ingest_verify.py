"""`ds2 ingest ... --verify-audio`: every audio file decoded in full, damaged ones skipped by cause.

A header check passes a FLAC truncated to a third of its bytes (its header still promises
every frame) and a float WAV holding NaN; only a full decode finds them.
"""
from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from corpus_fixtures import LIBRISPEECH, make_librispeech, write_nonfinite_wav, write_tone
from ds2_keras.data.audio import AudioError, verify_audio
from ds2_keras.data.manifest import read_manifest
from ds2_keras.ingest import common
from ds2_keras.ingest.commands import ingest


def truncate(path: Path, fraction: float = 1 / 3) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * fraction)])
    return path


def make_damaged_folder(root: Path) -> dict[str, Path]:
    """Two good clips, a truncated FLAC and a WAV with a NaN sample, each with its transcript."""
    files = {"good": root / "good.wav", "also good": root / "sub" / "fine.flac"}
    for path in files.values():
        write_tone(path, 0.5)
    write_tone(root / "cut.flac", 1.0)
    files["truncated"] = truncate(root / "cut.flac")
    files["nan"] = write_nonfinite_wav(root / "nan.wav")
    for path in files.values():
        path.with_suffix(".txt").write_text(f"the {path.stem} clip", encoding="utf-8")
    return files


def run(tmp_path: Path, *options: str):
    result = CliRunner().invoke(ingest, ["folder", str(tmp_path / "corpus"), str(tmp_path / "tx"),
                                         str(tmp_path / "manifest.csv"), *options], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result, read_manifest(tmp_path / "manifest.csv")


def test_header_check_passes_damaged_audio_that_verification_skips(tmp_path):
    files = make_damaged_folder(tmp_path / "corpus")

    plain, rows = run(tmp_path, "--no-progress")
    assert sorted(rows["audio_path"]) == sorted(str(path) for path in files.values())
    assert "skipped 0 items" in plain.stdout

    verified, rows = run(tmp_path, "--no-progress", "--verify-audio")
    assert sorted(rows["audio_path"]) == sorted([str(files["good"]), str(files["also good"])])
    assert verified.stdout.startswith("wrote 2 utterances")
    assert "skipped 2 items:\n" in verified.stdout
    assert "  incomplete audio: 1\n" in verified.stdout and "  non-finite samples: 1\n" in verified.stdout
    assert f"    {files['truncated']}: incomplete audio (decoded 0 of 16000 frames" in verified.stdout
    assert f"    {files['nan']}: non-finite samples (NaN or Inf)\n" in verified.stdout


def test_verification_keeps_a_sound_corpus_whole(tmp_path):
    make_librispeech(tmp_path / "dev-clean")
    manifests = []
    for options in ([], ["--verify-audio"]):
        manifest = tmp_path / f"manifest{len(manifests)}.csv"
        result = CliRunner().invoke(ingest, ["librispeech", str(tmp_path / "dev-clean"), str(tmp_path / "tx"),
                                             str(manifest), "--no-progress", *options])
        assert result.exit_code == 0, result.output
        manifests.append(read_manifest(manifest))
    assert len(manifests[1]) == len(LIBRISPEECH) and manifests[1].equals(manifests[0])


def test_progress_bar_says_audio_is_decoded(tmp_path):
    make_damaged_folder(tmp_path / "corpus")
    result, _ = run(tmp_path, "--verify-audio")
    assert f"decoding and ingesting {tmp_path / 'corpus'}" in result.stderr


@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_verify_audio_finds_non_finite_samples(tmp_path, value):
    path = write_nonfinite_wav(tmp_path / "bad.wav", value)
    with pytest.raises(AudioError, match=r"bad.wav: non-finite samples \(NaN or Inf\)$"):
        verify_audio(path)


def test_verify_audio_returns_the_header_of_sound_audio(tmp_path):
    write_tone(tmp_path / "long.flac", 5.0)  # more than one decoding block
    info = verify_audio(tmp_path / "long.flac")
    assert (info.frames, info.sample_rate, info.channels) == (80000, 16000, 1)


def test_parallel_map_keeps_order_and_runs_only_a_window_ahead():
    started = []
    lock = threading.Lock()

    def square(number: int) -> int:
        with lock:
            started.append(number)
        time.sleep(0.001 * (number % 3))  # finish out of order
        return number * number

    results = common._in_parallel(square, range(1000))
    assert next(results) == 0
    time.sleep(0.2)  # an unbounded pool would run everything now
    assert len(started) <= 4 * (os.cpu_count() or 1)
    assert list(results) == [n * n for n in range(1, 1000)]
