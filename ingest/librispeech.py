"""LibriSpeech (openslr.org/12): `<split>/<speaker>/<chapter>/<speaker>-<chapter>.trans.txt`
holds lines `<utterance id> <TEXT>`; the audio is `<utterance id>.flac` beside it.

The corpus promises 16 kHz mono, so any other audio is a damaged download and is skipped.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

from .common import (
    IngestError, IngestSummary, Progress, Skip, Utterance, ingest_corpus, read_lines, require_16k_mono, untranscribed,
)


def ingest_librispeech(
    source_dir: Path, transcripts_dir: Path, manifest_path: Path, progress: Progress | None = None, verify: bool = False
) -> IngestSummary:
    """Ingest one split, or every split under a `LibriSpeech/` directory (or its parent)."""
    return ingest_corpus(
        source_dir, enumerate_librispeech, transcripts_dir, manifest_path, progress, require_16k_mono, verify
    )


def enumerate_librispeech(source_dir: Path) -> Iterator[Utterance | Skip]:
    for split in find_splits(source_dir):
        chapters = {path.parent for pattern in ("*/*/*.trans.txt", "*/*/*.flac") for path in split.glob(pattern)}
        for chapter in sorted(chapters):
            yield from _chapter(chapter)


def find_splits(source_dir: Path) -> list[Path]:
    """Accept a split unpacked with --strip-components=1, the `LibriSpeech/` directory, or its parent."""
    if _is_split(source_dir):
        return [source_dir]
    for base in (source_dir, source_dir / "LibriSpeech"):
        if base.is_dir():
            splits = sorted(path for path in base.iterdir() if path.is_dir() and _is_split(path))
            if splits:
                return splits
    raise IngestError(
        source_dir, "no LibriSpeech split found (expected <split>/<speaker>/<chapter>/*.trans.txt)"
    )


def _is_split(directory: Path) -> bool:
    return any(directory.glob("*/*/*.trans.txt"))


def _chapter(chapter: Path) -> Iterator[Utterance | Skip]:
    transcribed: set[str] = set()
    for transcript in sorted(chapter.glob("*.trans.txt")):
        for line in read_lines(transcript):
            if line.strip():
                uid, _, text = line.strip().partition(" ")
                transcribed.add(uid)
                yield Utterance(uid, chapter / f"{uid}.flac", text)
    yield from untranscribed(chapter.glob("*.flac"), transcribed)
