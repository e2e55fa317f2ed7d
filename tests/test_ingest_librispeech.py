"""The LibriSpeech recipe and the shared ingest machinery, on a tiny LibriSpeech-layout tree."""
from __future__ import annotations

import contextlib
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from corpus_fixtures import (
    LIBRISPEECH, add_librispeech_line, librispeech_audio, librispeech_transcript, make_librispeech,
    write_garbage, write_tone,
)
from ds2_keras.core.alphabet import normalize_text
from ds2_keras.data.manifest import COLUMNS, read_manifest
from ds2_keras.ingest import common
from ds2_keras.ingest.commands import ingest
from ds2_keras.ingest.common import IngestError
from ds2_keras.ingest.librispeech import ingest_librispeech


def run(source: Path, tmp_path: Path):
    return ingest_librispeech(source, tmp_path / "transcripts", tmp_path / "out" / "manifest.csv")


def test_manifest_row_by_row(tmp_path):
    split = tmp_path / "LibriSpeech" / "dev-clean"
    durations = make_librispeech(split)
    summary = run(split, tmp_path)

    rows = pd.read_csv(summary.manifest, keep_default_na=False)
    assert list(rows.columns) == COLUMNS
    assert sorted(Path(p).stem for p in rows["audio_path"]) == sorted(LIBRISPEECH)
    for row in rows.itertuples():
        uid = Path(row.audio_path).stem
        assert Path(row.audio_path).is_absolute() and Path(row.transcript_path).is_absolute()
        assert Path(row.audio_path) == librispeech_audio(split, uid)
        assert row.text == normalize_text(LIBRISPEECH[uid][0]) and row.text == row.text.lower()
        assert row.duration == pytest.approx(durations[uid], abs=1e-4)
        assert Path(row.transcript_path) == tmp_path / "transcripts" / f"{uid}.txt"
        assert Path(row.transcript_path).read_text(encoding="utf-8") == row.text
    assert rows.set_index(rows["audio_path"].map(lambda p: Path(p).stem)).loc["26-495-0000", "text"] == (
        "it's the mother's duty"
    )
    assert summary.utterances == len(LIBRISPEECH)
    assert summary.hours == pytest.approx(sum(durations.values()) / 3600)
    assert summary.skipped == {}
    assert read_manifest(summary.manifest).equals(rows.astype({"duration": float}))


@pytest.mark.parametrize("level", ["split", "LibriSpeech", "parent"])
def test_source_may_be_a_split_the_librispeech_dir_or_its_parent(tmp_path, level):
    corpus = tmp_path / "corpus"
    make_librispeech(corpus / "LibriSpeech" / "dev-clean")
    make_librispeech(corpus / "LibriSpeech" / "test-clean", {"7-70-0000": ("ANOTHER SPLIT", 0.5)})
    source = {"split": corpus / "LibriSpeech" / "dev-clean", "LibriSpeech": corpus / "LibriSpeech",
              "parent": corpus}[level]
    expected = len(LIBRISPEECH) + (level != "split")
    assert run(source, tmp_path).utterances == expected


def _drop_audio(split: Path) -> Path:
    path = librispeech_audio(split, "19-198-0001")
    path.unlink()
    return path


def _extra_audio(split: Path) -> Path:
    path = librispeech_audio(split, "19-198-0002")
    write_tone(path, 0.5)
    return path


def _garbage_audio(split: Path) -> Path:
    path = librispeech_audio(split, "19-198-0001")
    write_garbage(path)
    return path


def _line(uid: str, text: str, seconds: float = 0.5, **audio):
    def damage(split: Path) -> Path:
        path = librispeech_audio(split, uid)
        write_tone(path, seconds, **audio)
        add_librispeech_line(split, uid, text)
        return path
    return damage


BAD_INPUT = {
    "transcript line with no audio": (_drop_audio, "missing audio"),
    "audio with no transcript line": (_extra_audio, "no transcript"),
    "unreadable audio": (_garbage_audio, "unreadable audio"),
    "empty text": (_line("26-495-0002", ""), "empty text"),
    "punctuation only": (_line("26-495-0002", "-- ... --"), "empty text"),
    "characters outside the alphabet": (_line("26-495-0002", "ÆTHELRED ÞE UNREADY"), "characters outside the alphabet"),
    "8 kHz audio": (_line("26-495-0002", "TOO FEW SAMPLES", sample_rate=8000), "wrong sample rate"),
    "stereo audio": (_line("26-495-0002", "TWO CHANNELS", channels=2), "not mono"),
}


@pytest.mark.parametrize("case", BAD_INPUT)
def test_bad_input_is_skipped_counted_and_named(tmp_path, case):
    damage, cause = BAD_INPUT[case]
    split = tmp_path / "train-clean-100"
    make_librispeech(split)
    named = damage(split)

    summary = run(split, tmp_path)

    assert summary.skipped == {cause: 1}
    report = summary.format()
    assert f"{cause}: 1" in report and str(named) in report
    rows = read_manifest(summary.manifest)
    good = set(LIBRISPEECH) - {named.stem}
    assert set(rows["audio_path"].map(lambda p: Path(p).stem)) == good
    assert summary.utterances == len(good)


def test_repeated_utterance_id_keeps_the_first(tmp_path):
    split = tmp_path / "dev-clean"
    make_librispeech(split)
    add_librispeech_line(split, "26-495-0000", "SAID TWICE")
    summary = run(split, tmp_path)
    assert summary.skipped == {"duplicate utterance id": 1}
    assert (tmp_path / "transcripts" / "26-495-0000.txt").read_text() == "it's the mother's duty"
    assert summary.utterances == len(LIBRISPEECH)


def test_every_skip_is_counted_by_cause(tmp_path):
    split = tmp_path / "dev-clean"
    make_librispeech(split)
    _drop_audio(split)
    _extra_audio(split)
    _line("26-495-0002", "")(split)
    _line("26-495-0003", "SAMPLED TOO FAST", sample_rate=44100)(split)
    summary = run(split, tmp_path)
    assert summary.skipped == {"missing audio": 1, "no transcript": 1, "empty text": 1, "wrong sample rate": 1}
    assert summary.utterances == len(LIBRISPEECH) - 1
    assert "skipped 4 items" in summary.format()


def test_missing_source_directory(tmp_path):
    with pytest.raises(IngestError, match="directory not found"):
        run(tmp_path / "nowhere", tmp_path)


def test_directory_without_a_corpus(tmp_path):
    (tmp_path / "empty" / "some" / "thing").mkdir(parents=True)
    with pytest.raises(IngestError, match="no LibriSpeech split found"):
        run(tmp_path / "empty", tmp_path)
    assert not (tmp_path / "out" / "manifest.csv").exists()


def test_nothing_usable_writes_no_manifest(tmp_path):
    split = tmp_path / "dev-clean"
    make_librispeech(split, {"19-198-0000": ("ALONE", 0.5)})
    librispeech_audio(split, "19-198-0000").unlink()
    with pytest.raises(IngestError, match="no usable utterances.*1 missing audio"):
        run(split, tmp_path)
    assert not (tmp_path / "out" / "manifest.csv").exists()


def test_exception_mid_ingest_leaves_no_manifest(tmp_path, monkeypatch):
    split = tmp_path / "dev-clean"
    make_librispeech(split)
    calls = []

    def failing_audio_info(path):
        calls.append(path)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real_audio_info(path)

    real_audio_info = common.audio_info
    monkeypatch.setattr(common, "audio_info", failing_audio_info)
    with pytest.raises(KeyboardInterrupt):
        run(split, tmp_path)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_non_utf8_transcript_file_is_a_clear_error(tmp_path):
    split = tmp_path / "dev-clean"
    make_librispeech(split)
    librispeech_transcript(split, "19-227-0000").write_bytes(b"19-227-0000 CAF\xe9\n")
    with pytest.raises(IngestError, match="19-227.trans.txt: not UTF-8"):
        run(split, tmp_path)


def test_cli_ingests_and_prints_the_summary(tmp_path):
    split = tmp_path / "dev-clean"
    make_librispeech(split)
    _drop_audio(split)
    manifest = tmp_path / "manifest.csv"
    result = CliRunner().invoke(ingest, ["librispeech", str(split), str(tmp_path / "tx"), str(manifest)])
    assert result.exit_code == 0, result.output
    assert f"wrote {len(LIBRISPEECH) - 1} utterances" in result.stdout
    assert "missing audio: 1" in result.stdout
    assert f"ingesting {split}" in result.stderr and "ingesting" not in result.stdout  # the bar, on stderr
    assert len(read_manifest(manifest)) == len(LIBRISPEECH) - 1


def test_library_call_shows_no_progress_unless_given_a_display(tmp_path, capsys):
    split = tmp_path / "dev-clean"
    make_librispeech(split)
    run(split, tmp_path)
    assert capsys.readouterr() == ("", "")
    advanced = []

    @contextlib.contextmanager
    def display(length, label):
        yield advanced.append
        advanced.append((length, label))

    ingest_librispeech(split, tmp_path / "again", tmp_path / "again.csv", progress=display)
    assert advanced == [1] * len(LIBRISPEECH) + [(len(LIBRISPEECH), f"ingesting {split}")]


@pytest.mark.parametrize("make_source", [lambda tmp: tmp / "nowhere", lambda tmp: tmp])
def test_cli_error_is_one_line_without_traceback(tmp_path, make_source):
    source = make_source(tmp_path)
    result = CliRunner().invoke(ingest, ["librispeech", str(source), str(tmp_path / "tx"), str(tmp_path / "m.csv")])
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [result.output.strip()]
    assert result.output.startswith(f"Error: {source}: ")
    assert "Traceback" not in result.output
