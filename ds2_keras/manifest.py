"""The manifest contract: one CSV row per utterance, readable and editable with pandas.

Columns: audio_path, transcript_path (absolute), text (normalized), duration (seconds) and
language (the code whose normalization the text had, `en` when the column is absent, as in
every manifest written before languages were recorded).
Readers also accept what neon DS2 users already have: the aeon TSV (`@FILE\tFILE` header,
audio and transcript paths) and the older header-less two-column CSV. Manifests joined with
plain `cat` load as one (repeated header lines are dropped).
"""
from __future__ import annotations

import csv
from io import StringIO
from pathlib import Path

import pandas as pd

from .alphabet import ENGLISH, UnmappableTextError, normalize_text
from .audio import AudioError, audio_info
from .errors import DS2Error
from .fileio import atomic_path

COLUMNS = ["audio_path", "transcript_path", "text", "duration", "language"]
REQUIRED_COLUMNS = COLUMNS[:4]
SEED_HEADER = "@FILE"


class ManifestError(DS2Error):
    """A manifest could not be read; the message names the file (and line) and the cause."""


def write_manifest(rows: pd.DataFrame, path: str | Path) -> Path:
    """Write atomically so an interrupted ingest never leaves a half-written manifest."""
    missing = set(REQUIRED_COLUMNS) - set(rows.columns)
    if missing:
        raise ValueError(f"manifest rows lack columns {sorted(missing)}")
    if "language" not in rows.columns:
        rows = rows.assign(language=ENGLISH)
    path = Path(path).absolute()
    with atomic_path(path) as temporary:
        rows[COLUMNS].to_csv(temporary, index=False, float_format="%.4f")
    return path


def read_manifest(path: str | Path) -> pd.DataFrame:
    """Load a ds2 CSV, a neon aeon TSV or a neon two-column CSV as the ds2 columns."""
    path = Path(path)
    if not path.is_file():
        raise ManifestError(f"{path}: manifest not found")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as error:
        raise ManifestError(f"{path}: not a UTF-8 text manifest ({error.reason} at byte {error.start})") from None
    lines = [line for line in lines if line.strip()]
    if not lines:
        raise ManifestError(f"{path}: manifest is empty")
    if lines[0].startswith(SEED_HEADER):
        pairs = [line.split("\t") for line in lines if not line.startswith(SEED_HEADER)]
        return _from_path_pairs(path, pairs)
    if lines[0].split(",")[0] == COLUMNS[0]:
        return _read_ds2_csv(path, lines)
    return _from_path_pairs(path, list(csv.reader(lines)))


def _read_ds2_csv(path: Path, lines: list[str]) -> pd.DataFrame:
    header = lines[0]
    body = [header] + [line for line in lines[1:] if line != header]
    try:
        frame = pd.read_csv(StringIO("\n".join(body)), dtype={"text": str, "language": str}, keep_default_na=False)
    except pd.errors.ParserError as error:
        raise ManifestError(f"{path}: malformed CSV ({error})") from None
    missing = set(REQUIRED_COLUMNS) - set(frame.columns)
    if missing:
        raise ManifestError(f"{path}: missing columns {sorted(missing)}")
    if "language" not in frame.columns:
        frame["language"] = ENGLISH
    frame["language"] = frame["language"].astype(str).replace("", ENGLISH)
    frame["duration"] = pd.to_numeric(frame["duration"], errors="coerce")
    bad = frame.index[frame["duration"].isna()]
    if len(bad):
        raise ManifestError(f"{path}: line {bad[0] + 2}: duration is not a number")
    frame["text"] = [_normalized(path, line, text, language)
                     for line, (text, language) in enumerate(zip(frame["text"], frame["language"]), start=2)]
    return frame[COLUMNS].reset_index(drop=True)


def _normalized(path: Path, line: int, text: str, language: str) -> str:
    """Text as the alphabet needs it: hand-edited rows ("Hello, 3 cats") are normalized here."""
    try:
        return normalize_text(text, language)
    except UnmappableTextError as error:
        raise ManifestError(f"{path}: line {line}: {error}") from None


def _from_path_pairs(path: Path, pairs: list[list[str]]) -> pd.DataFrame:
    """Fill text and duration for seed manifests, which hold only the two file paths."""
    rows = []
    for number, pair in enumerate(pairs, start=1):
        if len(pair) != 2:
            raise ManifestError(f"{path}: row {number}: expected 2 columns (audio, transcript), got {len(pair)}")
        # Relative seed paths are relative to the manifest, as aeon resolved them.
        audio, transcript = (str((path.parent / p.strip()).absolute()) for p in pair)
        try:
            text = normalize_text(Path(transcript).read_text(encoding="utf-8"))
            duration = audio_info(audio).duration
        except (OSError, UnmappableTextError, AudioError) as error:
            raise ManifestError(f"{path}: row {number}: {error}") from None
        rows.append((audio, transcript, text, duration, ENGLISH))
    return pd.DataFrame(rows, columns=COLUMNS)


def read_manifests(paths: list[str | Path]) -> pd.DataFrame:
    """Several manifests as one table, in the order given."""
    return pd.concat([read_manifest(p) for p in paths], ignore_index=True)
