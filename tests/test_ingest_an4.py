"""The AN4 recipe on a small tree in AN4's distributed layout (NIST SPHERE audio)."""
from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from corpus_fixtures import AN4, an4_audio, make_an4, write_tone
from ds2_keras.core.alphabet import normalize_text
from ds2_keras.data.manifest import read_manifest
from ds2_keras.ingest.an4 import ingest_an4, parse_transcription_line
from ds2_keras.ingest.commands import ingest
from ds2_keras.ingest.common import IngestError


def run(source: Path, tmp_path: Path, split: str = "train"):
    return ingest_an4(source, tmp_path / "tx", tmp_path / f"{split}.csv", split)


def texts(summary) -> dict[str, str]:
    rows = read_manifest(summary.manifest)
    return dict(zip(rows["audio_path"].map(lambda p: Path(p).stem), rows["text"]))


@pytest.mark.parametrize("split", ["train", "test"])
def test_each_split_row_by_row(tmp_path, split):
    root = tmp_path / "an4"
    durations = make_an4(root)
    summary = run(root, tmp_path, split)
    expected = {fileid: normalize_text(words) for fileid, (where, words, _) in AN4.items() if where == split}
    assert texts(summary) == expected
    for row in read_manifest(summary.manifest).itertuples():
        fileid = Path(row.audio_path).stem
        assert Path(row.audio_path) == an4_audio(root, split, fileid)
        assert row.duration == pytest.approx(durations[fileid], abs=1e-4)
        assert Path(row.transcript_path).read_text(encoding="utf-8") == row.text
    assert summary.skipped == {}


def test_spelled_letters_and_sentence_marks(tmp_path):
    make_an4(tmp_path / "an4")
    found = texts(run(tmp_path / "an4", tmp_path))
    assert found["cen7-mgah-b"] == "p i t t s b u r g h"
    assert found["an253-fash-b"] == "go"  # not "s go s": the <s> </s> marks are dropped


def test_both_transcription_formats_give_one_manifest(tmp_path):
    make_an4(tmp_path / "wrapped" / "an4", wrap_train=True)
    make_an4(tmp_path / "bare" / "an4", wrap_train=False)
    assert texts(run(tmp_path / "wrapped", tmp_path / "w")) == texts(run(tmp_path / "bare", tmp_path / "b"))


@pytest.mark.parametrize("level", ["an4", "parent"])
def test_source_may_be_the_an4_directory_or_its_parent(tmp_path, level):
    make_an4(tmp_path / "data" / "an4")
    source = tmp_path / "data" / "an4" if level == "an4" else tmp_path / "data"
    assert run(source, tmp_path).utterances == 4


def test_bad_input_is_skipped_counted_and_named(tmp_path):
    root = tmp_path / "an4"
    make_an4(root)
    gone = an4_audio(root, "train", "cen1-fash-b")
    gone.unlink()  # listed and transcribed, no audio
    stray = an4_audio(root, "train", "an254-fash-b")
    write_tone(stray, 0.5)  # audio, no transcription line
    slow = an4_audio(root, "train", "an252-fash-b")
    write_tone(slow, 0.5, sample_rate=8000)
    transcription = root / "etc" / "an4_train.transcription"
    with transcription.open("a", encoding="utf-8") as lines:
        lines.write("<s> NO FILE ID </s>\n")  # line 5
        lines.write("<s> NOT LISTED </s> (an999-fzzz-b)\n")  # line 6
        lines.write("<s> EIGHT KILOHERTZ </s> (an252-fash-b)\n")
    with (root / "etc" / "an4_train.fileids").open("a", encoding="utf-8") as fileids:
        fileids.write("an4_clstk/fash/an252-fash-b\n")

    summary = run(root, tmp_path)

    assert summary.skipped == {"missing audio": 2, "malformed transcript entry": 1, "no transcript": 1,
                               "wrong sample rate": 1}
    assert set(texts(summary)) == {"an251-fash-b", "an253-fash-b", "cen7-mgah-b"}
    report = summary.format()
    for named in (f"{gone}: file not found", f"{stray}: no transcript for utterance 'an254-fash-b'",
                  f"{transcription}: line 5: expected 'WORDS (FILEID)', got '<s> NO FILE ID </s>'",
                  f"{transcription}: line 6: 'an999-fzzz-b' is not listed in an4_train.fileids",
                  f"{slow}: 8000 Hz, expected 16000 Hz"):
        assert named in report


@pytest.mark.parametrize("line, parsed", [
    ("<s> GO </s> (an253-fash-b)", ("an253-fash-b", "GO")),
    ("ENTER SIX TWO FOUR (cen1-fash-b)", ("cen1-fash-b", "ENTER SIX TWO FOUR")),
    ("  <s> YES </s>   (an251-fash-b)  \r", ("an251-fash-b", "YES")),
    ("<s> </s> (an1-x-b)", ("an1-x-b", "")),
    ("NO FILE ID", None),
    ("TWO IDS (a) (b c)", None),
    ("(an1-x-b) TRAILING WORDS", None),
])
def test_transcription_lines(line, parsed):
    assert parse_transcription_line(line) == parsed


def test_cli_ingests_a_split_and_reports_a_missing_corpus_in_one_line(tmp_path):
    make_an4(tmp_path / "an4")
    manifest = tmp_path / "test.csv"
    result = CliRunner().invoke(ingest, ["an4", str(tmp_path), str(tmp_path / "tx"), str(manifest), "--split", "test",
                                         "--no-progress"])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("wrote 2 utterances") and len(read_manifest(manifest)) == 2

    empty = tmp_path / "empty"
    empty.mkdir()
    result = CliRunner().invoke(ingest, ["an4", str(empty), str(tmp_path / "tx"), str(manifest)])
    assert result.exit_code == 1
    assert result.output == (f"Error: {empty}: no etc/an4_train.transcription "
                             "(expected the an4 directory or its parent)\n")


def test_missing_fileids_is_a_clear_error(tmp_path):
    make_an4(tmp_path / "an4")
    (tmp_path / "an4" / "etc" / "an4_train.fileids").unlink()
    with pytest.raises(IngestError, match=r"an4_train.fileids: cannot read \(no such file or directory\)"):
        run(tmp_path / "an4", tmp_path)
