"""The LJSpeech, Common Voice and folder recipes: any readable audio, skips counted by cause."""
from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from corpus_fixtures import make_commonvoice, make_ljspeech, write_garbage, write_tone
from ds2_keras.data.manifest import read_manifest
from ds2_keras.ingest.commands import ingest
from ds2_keras.ingest.common import IngestError
from ds2_keras.ingest.commonvoice import ingest_commonvoice
from ds2_keras.ingest.folder import ingest_folder
from ds2_keras.ingest.ljspeech import ingest_ljspeech

LJ_ROWS = {
    "LJ001-0001": ("Printing, in 1640.", "Printing, in sixteen forty.", 0.6),
    "LJ001-0002": ("Mr. Smith & co.", "Mister Smith and co.", 0.4),
}
CV_ROWS = {
    "common_voice_en_1.mp3": ("“Hello,” she said — it’s late.", 0.7),
    "common_voice_en_2.mp3": ("Où est la gare ?", 0.5),
}


def stem_of(path: str) -> str:
    return Path(path).stem


def outputs(tmp_path: Path) -> tuple[Path, Path]:
    return tmp_path / "transcripts", tmp_path / "manifest.csv"


def test_ljspeech_uses_the_normalized_column_at_any_rate(tmp_path):
    durations = make_ljspeech(tmp_path / "LJSpeech-1.1", LJ_ROWS)
    summary = ingest_ljspeech(tmp_path / "LJSpeech-1.1", *outputs(tmp_path))
    rows = read_manifest(summary.manifest)
    texts = dict(zip(rows["audio_path"].map(stem_of), rows["text"]))
    assert texts == {"LJ001-0001": "printing in sixteen forty", "LJ001-0002": "mister smith and co"}
    for row in rows.itertuples():
        assert Path(row.audio_path) == tmp_path / "LJSpeech-1.1" / "wavs" / f"{stem_of(row.audio_path)}.wav"
        assert row.duration == pytest.approx(durations[stem_of(row.audio_path)], abs=1e-4)
        assert Path(row.transcript_path).read_text(encoding="utf-8") == row.text
    assert summary.skipped == {}


def test_ljspeech_bad_input(tmp_path):
    root = tmp_path / "LJSpeech-1.1"
    make_ljspeech(root, {**LJ_ROWS, "LJ001-0003": ("x", "Gone.", 0.3), "LJ001-0004": ("y", "", 0.3),
                         "sub/LJ001-0006": ("z", "Not a file name.", 0.3)})
    (root / "wavs" / "LJ001-0003.wav").unlink()  # listed, no audio
    write_tone(root / "wavs" / "LJ009-0009.wav", 0.3)  # audio, not listed
    write_garbage(root / "wavs" / "LJ001-0001.wav")
    with (root / "metadata.csv").open("a", encoding="utf-8") as metadata:
        metadata.write("LJ001-0005|only two fields\n")
    summary = ingest_ljspeech(root, *outputs(tmp_path))
    assert summary.skipped == {
        "missing audio": 1, "no transcript": 1, "unreadable audio": 1, "empty text": 1,
        "malformed transcript entry": 2,
    }
    assert summary.utterances == 1
    report = summary.format()
    for named in ("LJ001-0003.wav", "LJ009-0009.wav", "LJ001-0001.wav", f"{root / 'metadata.csv'}: line 6",
                  "'sub/LJ001-0006' cannot name a transcript file"):
        assert named in report


def test_ljspeech_without_metadata(tmp_path):
    (tmp_path / "LJSpeech-1.1" / "wavs").mkdir(parents=True)
    with pytest.raises(IngestError, match="no metadata.csv"):
        ingest_ljspeech(tmp_path / "LJSpeech-1.1", *outputs(tmp_path))


def test_commonvoice_split_of_mp3_clips(tmp_path):
    root = tmp_path / "cv" / "en"
    durations = make_commonvoice(root, "dev", CV_ROWS)
    make_commonvoice(root, "train", {"common_voice_en_9.mp3": ("Not this split.", 0.4)})
    summary = ingest_commonvoice(root, *outputs(tmp_path), split="dev")
    rows = read_manifest(summary.manifest)
    assert dict(zip(rows["audio_path"].map(stem_of), rows["text"])) == {
        "common_voice_en_1": "hello she said it's late", "common_voice_en_2": "ou est la gare",
    }
    for row in rows.itertuples():
        assert row.duration == pytest.approx(durations[Path(row.audio_path).name], abs=0.05)
    assert summary.skipped == {}


def test_commonvoice_bad_input(tmp_path):
    root = tmp_path / "en"
    make_commonvoice(root, "train", {**CV_ROWS, "gone.mp3": ("Nobody recorded this.", 0.3),
                                     "kanji.mp3": ("日本語", 0.3)})
    (root / "clips" / "gone.mp3").unlink()
    with (root / "train.tsv").open("a", encoding="utf-8") as table:
        table.write("c0ffee\t\tno clip path\t0\t0\t\t\t\n")
    summary = ingest_commonvoice(root, *outputs(tmp_path))
    assert summary.skipped == {
        "missing audio": 1, "characters outside the alphabet": 1, "malformed transcript entry": 1,
    }
    assert f"{root / 'train.tsv'}: line 6: no clip path" in summary.format()


def test_commonvoice_missing_split_names_the_ones_present(tmp_path):
    make_commonvoice(tmp_path / "en", "dev", CV_ROWS)
    with pytest.raises(IngestError, match=r"no train.tsv \(splits found: dev\)"):
        ingest_commonvoice(tmp_path / "en", *outputs(tmp_path))


def test_commonvoice_table_without_the_columns(tmp_path):
    root = tmp_path / "en"
    (root / "clips").mkdir(parents=True)
    (root / "train.tsv").write_text("file\ttext\na.mp3\thello\n", encoding="utf-8")
    with pytest.raises(IngestError, match=r"train.tsv: missing columns \['path', 'sentence'\]"):
        ingest_commonvoice(root, *outputs(tmp_path))


def test_folder_of_mixed_formats(tmp_path):
    root = tmp_path / "recordings"
    durations = {}
    for relative, rate, channels in (("a/one.wav", 8000, 1), ("a/b/two.flac", 16000, 2), ("three.ogg", 44100, 1),
                                     ("b/one.mp3", 24000, 1), ("c/four.sph", 16000, 1)):
        path = root / relative
        durations[path] = write_tone(path, 0.5, rate, channels)
        path.with_suffix(".txt").write_text(f"Recording {path.stem.upper()}!\n", encoding="utf-8")
    summary = ingest_folder(root, *outputs(tmp_path))
    rows = read_manifest(summary.manifest)
    assert sorted(Path(p).name for p in rows["transcript_path"]) == [
        "a__b__two.txt", "a__one.txt", "b__one.txt", "c__four.txt", "three.txt",
    ]
    for row in rows.itertuples():
        assert row.text == f"recording {Path(row.audio_path).stem}"
        assert row.duration == pytest.approx(durations[Path(row.audio_path)], abs=0.05)
    assert summary.skipped == {}


def test_folder_bad_input(tmp_path):
    root = tmp_path / "recordings"
    write_tone(root / "good.wav", 0.5)
    (root / "good.txt").write_text("fine", encoding="utf-8")
    write_tone(root / "untranscribed.flac", 0.5)
    (root / "orphan.txt").write_text("no audio here", encoding="utf-8")
    write_garbage(root / "broken.wav")
    (root / "broken.txt").write_text("broken", encoding="utf-8")
    write_tone(root / "latin1.wav", 0.5)
    (root / "latin1.txt").write_bytes(b"caf\xe9")
    write_tone(root / "silent.wav", 0.0)
    (root / "silent.txt").write_text("nothing was said", encoding="utf-8")
    summary = ingest_folder(root, *outputs(tmp_path))
    assert summary.utterances == 1
    assert summary.skipped == {
        "no transcript": 1, "missing audio": 1, "unreadable audio": 1, "unreadable transcript": 1, "empty audio": 1,
    }
    for named in ("untranscribed.flac", "orphan.txt", "broken.wav", "latin1.txt: not UTF-8",
                  "silent.wav: audio holds no samples"):
        assert named in summary.format()


def test_folder_path_too_long_for_a_transcript_name_is_skipped(tmp_path):
    root = tmp_path / "recordings"
    deep = root / ("d" * 120) / ("e" * 120) / "clip.wav"  # utterance id: 120 + 2 + 120 + 2 + 4 bytes
    for path in (root / "short.wav", deep):
        write_tone(path, 0.3)
        path.with_suffix(".txt").write_text("hello", encoding="utf-8")
    summary = ingest_folder(root, *outputs(tmp_path))
    assert summary.utterances == 1 and summary.skipped == {"malformed transcript entry": 1}
    uid = f"{'d' * 120}__{'e' * 120}__clip"
    assert f"{deep}: utterance id '{uid}' cannot name a transcript file" in summary.format()


def test_folder_without_audio(tmp_path):
    (tmp_path / "texts").mkdir()
    (tmp_path / "texts" / "a.txt").write_text("hello", encoding="utf-8")
    with pytest.raises(IngestError, match=r"no audio files \(.wav, .flac, .mp3, .ogg, .sph\)"):
        ingest_folder(tmp_path / "texts", *outputs(tmp_path))


def test_cli_subcommands(tmp_path):
    make_ljspeech(tmp_path / "lj", LJ_ROWS)
    make_commonvoice(tmp_path / "cv", "test", CV_ROWS)
    write_tone(tmp_path / "folder" / "x.wav", 0.5)
    (tmp_path / "folder" / "x.txt").write_text("x", encoding="utf-8")
    runner = CliRunner()
    for args, count in ((["ljspeech", "lj"], 2), (["commonvoice", "cv", "--split", "test"], 2), (["folder", "folder"], 1)):
        manifest = tmp_path / f"{args[0]}.csv"
        command = [args[0], str(tmp_path / args[1]), str(tmp_path / "tx"), str(manifest), "--no-progress", *args[2:]]
        result = runner.invoke(ingest, command)
        assert result.exit_code == 0, result.output
        assert result.output.startswith(f"wrote {count} utterances")
        assert len(read_manifest(manifest)) == count


@pytest.mark.parametrize("corpus", ["ljspeech", "commonvoice", "folder"])
def test_cli_missing_source_is_one_line(tmp_path, corpus):
    source = tmp_path / "absent"
    result = CliRunner().invoke(ingest, [corpus, str(source), str(tmp_path / "tx"), str(tmp_path / "m.csv")])
    assert result.exit_code == 1
    assert result.output == f"Error: {source}: directory not found\n"
