"""Any directory tree of audio files (.wav, .flac, .mp3, .ogg, .sph), each with a same-named
.txt transcript beside it. Utterance ids are the relative paths, `/` replaced by `__`, so files of
the same name in different folders do not collide.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

from ds2_keras.core.alphabet import ENGLISH

from .common import (
    MISSING_AUDIO, UNREADABLE_TRANSCRIPT, IngestError, IngestSummary, Progress, Skip, Utterance, ingest_corpus,
    read_lines,
)

AUDIO_SUFFIXES = (".wav", ".flac", ".mp3", ".ogg", ".sph")  # .sph: NIST SPHERE, as AN4 ships


def ingest_folder(
    source_dir: Path, transcripts_dir: Path, manifest_path: Path, progress: Progress | None = None,
    verify: bool = False, language: str = ENGLISH,
) -> IngestSummary:
    """Ingest every audio file under `source_dir` that has a same-named .txt transcript in `language`."""
    return ingest_corpus(source_dir, enumerate_folder, transcripts_dir, manifest_path, progress, verify=verify,
                         language=language)


def enumerate_folder(source_dir: Path) -> Iterator[Utterance | Skip]:
    files = sorted(path for path in _walk(source_dir) if path.is_file())
    audio = [path for path in files if path.suffix.lower() in AUDIO_SUFFIXES]
    if not audio:
        raise IngestError(source_dir, f"no audio files ({', '.join(AUDIO_SUFFIXES)})")
    for path in audio:
        uid = path.relative_to(source_dir).with_suffix("").as_posix().replace("/", "__")
        transcript = path.with_suffix(".txt")
        if not transcript.is_file():
            yield Utterance(uid, path, None)
            continue
        try:
            text = " ".join(read_lines(transcript))
        except IngestError as error:
            yield Skip(UNREADABLE_TRANSCRIPT, transcript, error.cause)
            continue
        yield Utterance(uid, path, text)
    stems = {path.with_suffix("") for path in audio}
    for path in files:
        if path.suffix == ".txt" and path.with_suffix("") not in stems:
            yield Skip(MISSING_AUDIO, path, "transcript with no audio file of the same name")


def _walk(directory: Path) -> Iterator[Path]:
    """Every path below `directory`; a subdirectory the OS will not list raises (rglob would skip it silently)."""
    def refuse(error: OSError) -> None:
        raise error

    for folder, _, names in os.walk(directory, onerror=refuse):
        yield from (Path(folder, name) for name in names)
