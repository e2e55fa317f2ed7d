"""Mozilla Common Voice: a language directory with `<split>.tsv` (columns include `path` and
`sentence`) and `clips/` of mp3. `clips/` holds every split, so clips no row names are not
reported; any sample rate or channel count is accepted (resampled at load).

Each release names its language directories by locale (`cv-corpus-17.0-2024-03-15/es`,
`.../pt`, `.../zh-TW`), so that name is the transcripts' language unless `--language` says
otherwise; the language chooses the text normalization (alphabet.normalize_text).
"""
from __future__ import annotations

import csv
import re
from functools import partial
from pathlib import Path
from typing import Iterator

from .common import (
    MALFORMED_ENTRY, IngestError, IngestSummary, Progress, Skip, Utterance, ingest_corpus, read_lines,
)

# A Common Voice locale: 2-3 lower-case letters, optionally a region or script (`es`, `sv-SE`, `zh-HK`, `cnh`).
_LOCALE = re.compile(r"[a-z]{2,3}(?:-[A-Za-z]{2,4})?")


def ingest_commonvoice(
    source_dir: Path, transcripts_dir: Path, manifest_path: Path, split: str = "train",
    progress: Progress | None = None, verify: bool = False, language: str | None = None,
) -> IngestSummary:
    """Ingest one split (train, dev, test, validated, ...) of a Common Voice language directory."""
    return ingest_corpus(
        source_dir, partial(enumerate_commonvoice, split=split), transcripts_dir, manifest_path, progress,
        # A missing directory is reported as such by ingest_corpus, whatever its name.
        verify=verify, language=language or (locale_of(source_dir) if Path(source_dir).is_dir() else "und"),
    )


def locale_of(source_dir: Path) -> str:
    """The language a Common Voice directory's name gives (`.../es` -> `es`)."""
    name = Path(source_dir).absolute().name
    if not _LOCALE.fullmatch(name):
        raise IngestError(source_dir, f"cannot tell the language from the directory name {name!r} "
                                      "(Common Voice names it by locale, such as es or de): pass --language CODE")
    return name


def enumerate_commonvoice(source_dir: Path, split: str) -> Iterator[Utterance | Skip]:
    table = source_dir / f"{split}.tsv"
    if not table.is_file():
        found = ", ".join(sorted(path.stem for path in source_dir.glob("*.tsv"))) or "none"
        raise IngestError(source_dir, f"no {split}.tsv (splits found: {found})")
    clips = source_dir / "clips"
    if not clips.is_dir():
        raise IngestError(source_dir, "no clips/ directory")
    rows = csv.DictReader(read_lines(table), delimiter="\t", quoting=csv.QUOTE_NONE)
    missing = {"path", "sentence"} - set(rows.fieldnames or ())
    if missing:
        raise IngestError(table, f"missing columns {sorted(missing)}")
    for number, row in enumerate(rows, start=2):
        if not row["path"]:
            yield Skip(MALFORMED_ENTRY, table, f"line {number}: no clip path")
            continue
        yield Utterance(Path(row["path"]).stem, clips / row["path"], row["sentence"])
