"""AN4 (CMU census database, 1991), in its distributed layout: `an4/etc/an4_<split>.transcription`
holds lines `WORDS (FILEID)` (some releases wrap the words as `<s> WORDS </s>`),
`an4/etc/an4_<split>.fileids` lists `an4_clstk/<speaker>/<fileid>` (test: `an4test_clstk/...`),
and the audio is `an4/wav/<that path>.sph`: 16 kHz 16-bit NIST SPHERE, which libsndfile reads.

The corpus promises 16 kHz mono, so any other audio is damage and is skipped.
"""
from __future__ import annotations

import re
from functools import partial
from pathlib import Path
from typing import Iterator

from .common import (
    MALFORMED_ENTRY, MISSING_AUDIO, IngestError, IngestSummary, Progress, Skip, Utterance, ingest_corpus,
    read_lines, require_16k_mono, untranscribed,
)

SPLITS = ("train", "test")
_LINE = re.compile(r"(?P<words>.*?)\s*\((?P<fileid>[^()\s]+)\)")


def ingest_an4(
    source_dir: Path, transcripts_dir: Path, manifest_path: Path, split: str = "train",
    progress: Progress | None = None, verify: bool = False,
) -> IngestSummary:
    """Ingest one split (train or test) of AN4; `source_dir` is the `an4` directory or its parent."""
    return ingest_corpus(
        source_dir, partial(enumerate_an4, split=split), transcripts_dir, manifest_path, progress,
        require_16k_mono, verify,
    )


def enumerate_an4(source_dir: Path, split: str) -> Iterator[Utterance | Skip]:
    root = find_an4(source_dir, split)
    fileids = root / "etc" / f"an4_{split}.fileids"
    audio = _audio_paths(fileids, root / "wav")
    transcription = root / "etc" / f"an4_{split}.transcription"
    transcribed: set[str] = set()
    for number, line in enumerate(read_lines(transcription), start=1):
        if not line.strip():
            continue
        parsed = parse_transcription_line(line)
        if parsed is None:
            yield Skip(MALFORMED_ENTRY, transcription, f"line {number}: expected 'WORDS (FILEID)', got {line!r}")
            continue
        fileid, words = parsed
        transcribed.add(fileid)
        if fileid not in audio:
            yield Skip(MISSING_AUDIO, transcription, f"line {number}: {fileid!r} is not listed in {fileids.name}")
            continue
        yield Utterance(fileid, audio[fileid], words)
    split_dirs = {path.parent.parent for path in audio.values()}  # wav/an4_clstk: the split's speakers
    yield from untranscribed((path for folder in split_dirs for path in folder.glob("*/*.sph")), transcribed)


def find_an4(source_dir: Path, split: str) -> Path:
    """Accept the `an4` directory or its parent."""
    for root in (source_dir, source_dir / "an4"):
        if (root / "etc" / f"an4_{split}.transcription").is_file():
            return root
    raise IngestError(source_dir, f"no etc/an4_{split}.transcription (expected the an4 directory or its parent)")


def parse_transcription_line(line: str) -> tuple[str, str] | None:
    """(fileid, words) of `WORDS (FILEID)` or `<s> WORDS </s> (FILEID)`; None if it is neither."""
    match = _LINE.fullmatch(line.strip())
    if match is None:
        return None
    words = match["words"].split()
    if words[:1] == ["<s>"]:
        words = words[1:]
    if words[-1:] == ["</s>"]:
        words = words[:-1]
    return match["fileid"], " ".join(words)


def _audio_paths(fileids: Path, wav_dir: Path) -> dict[str, Path]:
    """fileid -> its SPHERE file, from the split's list of `<dir>/<speaker>/<fileid>` lines."""
    listed = (line.strip() for line in read_lines(fileids))
    return {Path(entry).name: wav_dir / f"{entry}.sph" for entry in listed if entry}
