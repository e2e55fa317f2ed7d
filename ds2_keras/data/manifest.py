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
import math
from io import StringIO
from pathlib import Path

import pandas as pd

from ds2_keras.core.alphabet import ENGLISH, normalize_text
from ds2_keras.data.audio import AudioError, audio_info
from ds2_keras.core.errors import DS2Error
from ds2_keras.core.fileio import atomic_path

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
        # utf-8-sig: spreadsheet programs save CSV with a byte-order mark before the header.
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as error:
        raise ManifestError(f"{path}: not a UTF-8 text manifest ({error.reason} at byte {error.start})") from None
    if "\x00" in text:
        raise ManifestError(f"{path}: not a text manifest (it holds NUL bytes)")
    if not text.strip():
        raise ManifestError(f"{path}: manifest is empty")
    if text.lstrip().startswith(SEED_HEADER):
        lines = [line for line in text.splitlines() if line.strip() and not line.startswith(SEED_HEADER)]
        return _from_path_pairs(path, [line.split("\t") for line in lines])
    records = _csv_records(path, text)
    if not records:
        raise ManifestError(f"{path}: manifest is empty")
    header = [name.strip() for name in records[0][1]]
    if set(header) & set(COLUMNS):
        return _read_ds2_csv(path, header, records[1:])
    return _from_path_pairs(path, [fields for _, fields in records])


def _csv_records(path: Path, text: str) -> list[tuple[int, list[str]]]:
    """Non-blank CSV records with the line each starts on.

    Only \\n and \\r end a record: U+2028 and the other separators str.splitlines() splits on
    may sit inside a quoted text field.
    """
    reader = csv.reader(StringIO(text, newline=""))
    records = []
    line = 1
    try:
        for fields in reader:
            if any(field.strip() for field in fields):
                records.append((line, fields))
            line = reader.line_num + 1
    except csv.Error as error:
        raise ManifestError(f"{path}: line {line}: malformed CSV ({error})") from None
    return records


def _read_ds2_csv(path: Path, header: list[str], records: list[tuple[int, list[str]]]) -> pd.DataFrame:
    """Columns are found by name, so reordered headers and extra columns read as written."""
    missing = sorted(set(REQUIRED_COLUMNS) - set(header))
    if missing:
        raise ManifestError(f"{path}: missing columns {missing} (the header has {', '.join(header)})")
    repeated = sorted({name for name in header if header.count(name) > 1 and name in COLUMNS})
    if repeated:
        raise ManifestError(f"{path}: column {repeated[0]} appears twice in the header")
    audio, transcript, text, duration = (header.index(name) for name in REQUIRED_COLUMNS)
    language = header.index("language") if "language" in header else len(header)  # past every row: English
    needed = max(audio, transcript, text, duration) + 1  # a row may leave the language off
    rows = []
    for line, fields in records:
        if COLUMNS[0] in fields:  # a header line: a manifest joined with `cat`
            names = [field.strip() for field in fields]
            if names == header:
                continue
            if set(names) >= set(REQUIRED_COLUMNS):
                raise ManifestError(f"{path}: line {line}: a header unlike the first one (manifests with other "
                                    "columns joined with cat?)")
        if not needed <= len(fields) <= len(header):
            raise ManifestError(f"{path}: line {line}: {len(fields)} fields, the header has {len(header)}"
                                " (quote text that holds commas)")
        code = (fields[language].strip() if language < len(fields) else "") or ENGLISH
        rows.append((fields[audio], fields[transcript], _normalized(path, line, fields[text], code),
                     _duration(path, line, fields[duration]), code))
    return _frame(rows)


def _duration(path: Path, line: int, field: str) -> float:
    try:
        seconds = float(field)
    except ValueError:
        raise ManifestError(f"{path}: line {line}: duration is not a number ({field!r})") from None
    if not math.isfinite(seconds) or seconds < 0:
        raise ManifestError(f"{path}: line {line}: duration is not a non-negative number of seconds ({field!r})")
    return seconds


def _normalized(path: Path, line: int, text: str, language: str) -> str:
    """Text as the alphabet needs it: hand-edited rows ("Hello, 3 cats") are normalized here."""
    try:
        return normalize_text(text, language)
    except ValueError as error:  # UnmappableTextError, or a number too long to spell
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
        except (OSError, ValueError, AudioError) as error:  # ValueError: unmappable text, a NUL in a path
            raise ManifestError(f"{path}: row {number}: {error}") from None
        rows.append((audio, transcript, text, duration, ENGLISH))
    return _frame(rows)


def _frame(rows: list[tuple]) -> pd.DataFrame:
    """The ds2 columns, duration float even with no rows (a header-only manifest)."""
    return pd.DataFrame(rows, columns=COLUMNS).astype({"duration": float})


def read_manifests(paths: list[str | Path]) -> pd.DataFrame:
    """Several manifests as one table, in the order given."""
    return pd.concat([read_manifest(p) for p in paths], ignore_index=True)
