"""The manifest contract: our CSV, manifests joined with `cat`, and the neon seed's formats."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from corpus_fixtures import write_tone
from ds2_keras.data.manifest import COLUMNS, ManifestError, read_manifest, read_manifests, write_manifest


def frame(*uids: str, base: Path = Path("/data")) -> pd.DataFrame:
    return pd.DataFrame(
        [(str(base / f"{uid}.flac"), str(base / f"{uid}.txt"), f"it's utterance {uid}", 1.25 + i, "en")
         for i, uid in enumerate(uids)],
        columns=COLUMNS,
    )


def seed_corpus(tmp_path: Path) -> list[tuple[Path, Path, float]]:
    """Audio and raw transcript files as the neon seed's ingest left them: (audio, transcript, seconds)."""
    files = []
    for uid, text in (("a", "HELLO WORLD"), ("b", "It’s 2 o’clock.\n")):
        audio = tmp_path / "seed" / f"{uid}.wav"
        seconds = write_tone(audio, 0.5 + len(files) * 0.25)
        transcript = audio.with_suffix(".txt")
        transcript.write_text(text, encoding="utf-8")
        files.append((audio, transcript, seconds))
    return files


def test_round_trip(tmp_path):
    rows = frame("one", "two")
    path = write_manifest(rows, tmp_path / "m.csv")
    assert path == tmp_path / "m.csv"
    assert path.read_text().splitlines()[0] == ",".join(COLUMNS)
    pd.testing.assert_frame_equal(read_manifest(path), rows)
    assert [p.name for p in tmp_path.iterdir()] == ["m.csv"]  # no temporary file left behind


def test_write_keeps_only_the_manifest_columns_and_refuses_missing_ones(tmp_path):
    rows = frame("one").assign(speaker="19")
    assert list(read_manifest(write_manifest(rows, tmp_path / "m.csv")).columns) == COLUMNS
    with pytest.raises(ValueError, match="duration"):
        write_manifest(rows.drop(columns="duration"), tmp_path / "bad.csv")
    assert not (tmp_path / "bad.csv").exists()


def test_manifests_joined_with_cat_load_as_one(tmp_path):
    first = write_manifest(frame("one", "two"), tmp_path / "first.csv")
    second = write_manifest(frame("three"), tmp_path / "second.csv")
    joined = tmp_path / "joined.csv"
    joined.write_text(first.read_text() + second.read_text())
    rows = read_manifest(joined)
    assert list(rows["audio_path"].map(lambda p: Path(p).stem)) == ["one", "two", "three"]
    assert rows["duration"].dtype == float
    pd.testing.assert_frame_equal(rows, read_manifests([first, second]))


def test_neon_aeon_tsv(tmp_path):
    files = seed_corpus(tmp_path)
    manifest = tmp_path / "seed.tsv"
    manifest.write_text("@FILE\tFILE\n" + "".join(f"{audio}\t{text}\n" for audio, text, _ in files))
    rows = read_manifest(manifest)
    assert list(rows.columns) == COLUMNS
    assert list(rows["text"]) == ["hello world", "it's two o'clock"]
    assert list(rows["audio_path"]) == [str(audio) for audio, _, _ in files]
    assert list(rows["transcript_path"]) == [str(text) for _, text, _ in files]
    assert rows["duration"].tolist() == pytest.approx([seconds for _, _, seconds in files])


def test_neon_headerless_two_column_csv(tmp_path):
    files = seed_corpus(tmp_path)
    manifest = tmp_path / "seed.csv"
    manifest.write_text("".join(f"{audio},{text}\n" for audio, text, _ in files))
    rows = read_manifest(manifest)
    assert list(rows["text"]) == ["hello world", "it's two o'clock"]
    assert rows["duration"].tolist() == pytest.approx([seconds for _, _, seconds in files])


def test_missing_and_empty_manifests(tmp_path):
    with pytest.raises(ManifestError, match="absent.csv: manifest not found"):
        read_manifest(tmp_path / "absent.csv")
    (tmp_path / "empty.csv").write_text("\n\n")
    with pytest.raises(ManifestError, match="empty.csv: manifest is empty"):
        read_manifest(tmp_path / "empty.csv")


def test_malformed_ds2_csv(tmp_path):
    no_duration = tmp_path / "columns.csv"
    no_duration.write_text("audio_path,transcript_path,text\n/a.flac,/a.txt,a\n")
    with pytest.raises(ManifestError, match=r"columns.csv: missing columns \['duration'\]"):
        read_manifest(no_duration)
    bad_duration = tmp_path / "duration.csv"
    bad_duration.write_text(",".join(COLUMNS) + "\n/a.flac,/a.txt,a,1.0\n/b.flac,/b.txt,b,long\n")
    with pytest.raises(ManifestError, match="duration.csv: line 3: duration is not a number"):
        read_manifest(bad_duration)


def test_malformed_seed_manifests_name_the_row(tmp_path):
    files = seed_corpus(tmp_path)
    three_columns = tmp_path / "three.tsv"
    three_columns.write_text(f"@FILE\tFILE\n{files[0][0]}\t{files[0][1]}\textra\n")
    with pytest.raises(ManifestError, match="three.tsv: row 1: expected 2 columns"):
        read_manifest(three_columns)
    files[1][0].unlink()
    missing_audio = tmp_path / "missing.csv"
    missing_audio.write_text("".join(f"{audio},{text}\n" for audio, text, _ in files))
    with pytest.raises(ManifestError, match=f"missing.csv: row 2: {files[1][0]}: file not found"):
        read_manifest(missing_audio)


def test_manifests_without_a_language_column_are_english(tmp_path):
    old = tmp_path / "old.csv"
    old.write_text("audio_path,transcript_path,text,duration\n/a.flac,/a.txt,\"Café, 2 cats\",1.0\n")
    rows = read_manifest(old)
    assert rows["language"].tolist() == ["en"] and rows["text"].tolist() == ["cafe two cats"]


def test_each_row_is_normalized_by_its_own_language(tmp_path):
    mixed = tmp_path / "mixed.csv"
    mixed.write_text(",".join(COLUMNS) + '\n/a.flac,/a.txt,"Señor, ¿qué tal?",1.0,es\n/b.flac,/b.txt,Señor,1.0,en\n',
                     encoding="utf-8")
    assert read_manifest(mixed)["text"].tolist() == ["señor qué tal", "senor"]
    digits = tmp_path / "digits.csv"
    digits.write_text(",".join(COLUMNS) + "\n/a.flac,/a.txt,tengo 3 gatos,1.0,es\n", encoding="utf-8")
    with pytest.raises(ManifestError, match="digits.csv: line 2: characters outside the alphabet after normalization: '3'"):
        read_manifest(digits)


def test_hand_edited_text_is_normalized_and_unmappable_text_named(tmp_path):
    edited = tmp_path / "edited.csv"
    edited.write_text(",".join(COLUMNS) + '\n/a.flac,/a.txt,"Hello, 3 Cats!",1.0\n')
    assert read_manifest(edited)["text"].tolist() == ["hello three cats"]
    foreign = tmp_path / "foreign.csv"
    foreign.write_text(",".join(COLUMNS) + "\n/a.flac,/a.txt,ok,1.0\n/b.flac,/b.txt,日本,1.0\n", encoding="utf-8")
    with pytest.raises(ManifestError, match="foreign.csv: line 3: characters outside the alphabet"):
        read_manifest(foreign)


def test_binary_file_is_not_a_manifest(tmp_path):
    binary = tmp_path / "audio.flac"
    binary.write_bytes(b"fLaC\x00\x00\x00\x22\xff\xfe\x80")
    with pytest.raises(ManifestError, match="audio.flac: not a UTF-8 text manifest"):
        read_manifest(binary)


def test_byte_order_mark_and_reordered_header(tmp_path):
    rows = frame("one", "two")
    bom = tmp_path / "bom.csv"
    bom.write_bytes(b"\xef\xbb\xbf" + write_manifest(rows, tmp_path / "m.csv").read_bytes())
    pd.testing.assert_frame_equal(read_manifest(bom), rows)
    reordered = tmp_path / "reordered.csv"
    rows[list(reversed(COLUMNS))].assign(speaker="19").to_csv(reordered, index=False)
    pd.testing.assert_frame_equal(read_manifest(reordered), rows)


@pytest.mark.parametrize("content, cause", [
    ("audio_path,transcript,text,duration,language\n/a.flac,/a.txt,a,1.0,en\n",
     r"missing columns \['transcript_path'\] \(the header has audio_path, transcript, text, duration, language\)"),
    ("audio_path,transcript_path,text,duration\n/a.flac,/a.txt,a,1.0,en\n/b.flac,/b.txt,b,1.0,en\n",
     "line 2: 5 fields, the header has 4"),
    (",".join(COLUMNS) + "\n/a.flac,/a.txt,a,1.0,en\n/b.flac,/b.txt,b\n", "line 3: 3 fields, the header has 5"),
    (",".join(COLUMNS) + ",text\n/a.flac,/a.txt,a,1.0,en,b\n", "column text appears twice in the header"),
    (",".join(COLUMNS) + "\n/a.flac,/a.txt,a,-1,en\n", r"line 2: duration is not a non-negative number of seconds \('-1'\)"),
    (",".join(COLUMNS) + "\n/a.flac,/a.txt,a,1.0,en\n" + ",".join(COLUMNS[:4]) + "\n/b.flac,/b.txt,b,1.0\n",
     r"line 3: a header unlike the first one \(manifests with other columns joined with cat\?\)"),
], ids=["renamed", "overfull rows", "short row", "repeated column", "negative duration", "another header"])
def test_header_and_row_faults_name_the_cause(tmp_path, content, cause):
    path = tmp_path / "faulty.csv"
    path.write_text(content)
    with pytest.raises(ManifestError, match=f"faulty.csv: {cause}"):
        read_manifest(path)


def test_line_separators_inside_quoted_text(tmp_path):
    """U+2028 and friends end a line for str.splitlines(), not for CSV: the text is one field."""
    path = tmp_path / "separators.csv"
    path.write_text(",".join(COLUMNS) + '\n/a.flac,/a.txt,"one\u2028two\x85three\x0cfour",1.0,en\n'
                    '/b.flac,/b.txt,"five\nsix",2.0,en\n', encoding="utf-8")
    rows = read_manifest(path)
    assert rows["text"].tolist() == ["one two three four", "five six"]
    assert rows["duration"].tolist() == [1.0, 2.0]


def test_rows_after_a_multiline_field_are_named_by_their_physical_line(tmp_path):
    path = tmp_path / "lines.csv"
    path.write_text(",".join(COLUMNS) + '\n/a.flac,/a.txt,"one\ntwo",1.0,en\n\n/b.flac,/b.txt,b,soon,en\n')
    with pytest.raises(ManifestError, match=r"lines.csv: line 5: duration is not a number \('soon'\)"):
        read_manifest(path)


_MUTATION_CHARACTERS = list(',"\n\r\t\x00\ufeff\u2028\u2029\x85 é日9.-') + ["nan", "inf", "@FILE\t", "audio_path"]


def _mutated(text: str, rng: np.random.Generator) -> str:
    """One to four random edits: delete, insert, duplicate or drop a line, truncate."""
    for _ in range(rng.integers(1, 5)):
        kind = rng.integers(5)
        at = int(rng.integers(len(text) + 1))
        if kind == 0:
            text = text[:at] + text[at + 1:]
        elif kind == 1:
            text = text[:at] + _MUTATION_CHARACTERS[rng.integers(len(_MUTATION_CHARACTERS))] + text[at:]
        elif kind in (2, 3):
            lines = text.split("\n")
            index = int(rng.integers(len(lines)))
            lines[index:index + 1] = [lines[index]] * (2 if kind == 2 else 0)
            text = "\n".join(lines)
        else:
            text = text[:at]
    return text


def test_fuzzed_manifests_parse_or_raise_a_manifest_error(tmp_path):
    """A few hundred seeded mutations of valid manifests of every format: never another exception."""
    files = seed_corpus(tmp_path)
    rows = frame("one", "two", base=tmp_path)
    valid = [write_manifest(rows, tmp_path / "ds2.csv").read_text(),
             rows.drop(columns="language").to_csv(index=False),
             "@FILE\tFILE\n" + "".join(f"{audio}\t{text}\n" for audio, text, _ in files),
             "".join(f"{audio},{text}\n" for audio, text, _ in files)]
    rng = np.random.default_rng(28)
    outcomes = {"parsed": 0, "refused": 0}
    for case in range(400):
        path = tmp_path / f"fuzz{case}.csv"
        path.write_bytes(_mutated(valid[case % len(valid)], rng).encode("utf-8", "surrogatepass"))
        try:
            parsed = read_manifest(path)
        except ManifestError as error:
            message = str(error)
            assert message.startswith(f"{path}: ") and "\n" not in message.strip(), message
            outcomes["refused"] += 1
        else:
            assert list(parsed.columns) == COLUMNS and parsed["duration"].dtype == float
            outcomes["parsed"] += 1
    assert min(outcomes.values()) > 40, outcomes  # the mutations exercise both outcomes
