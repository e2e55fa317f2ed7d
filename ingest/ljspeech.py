"""LJSpeech (keithito.com/LJ-Speech-Dataset): `metadata.csv` lines `id|raw|normalized` and
`wavs/<id>.wav` at 22.05 kHz. We take the normalized column (numbers already spelled out);
the training pipeline resamples at load, so any rate or channel count is accepted here.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

from .common import (
    MALFORMED_ENTRY, IngestError, IngestSummary, Progress, Skip, Utterance, ingest_corpus, read_lines, untranscribed,
)


def ingest_ljspeech(
    source_dir: Path, transcripts_dir: Path, manifest_path: Path, progress: Progress | None = None, verify: bool = False
) -> IngestSummary:
    """Ingest the unpacked `LJSpeech-1.1` directory."""
    return ingest_corpus(source_dir, enumerate_ljspeech, transcripts_dir, manifest_path, progress, verify=verify)


def enumerate_ljspeech(source_dir: Path) -> Iterator[Utterance | Skip]:
    metadata = source_dir / "metadata.csv"
    if not metadata.is_file():
        raise IngestError(source_dir, "no metadata.csv (expected the unpacked LJSpeech-1.1 directory)")
    wavs = source_dir / "wavs"
    transcribed: set[str] = set()
    for number, line in enumerate(read_lines(metadata), start=1):
        if not line.strip():
            continue
        fields = line.split("|")
        if len(fields) != 3:
            yield Skip(MALFORMED_ENTRY, metadata, f"line {number}: expected id|raw|normalized, got {line!r}")
            continue
        uid, _, text = fields
        transcribed.add(uid)
        yield Utterance(uid, wavs / f"{uid}.wav", text)
    yield from untranscribed(wavs.glob("*.wav"), transcribed)
