"""What every corpus recipe shares: validation, transcript files, the manifest and the summary.

A recipe only enumerates its corpus as `Utterance` items (or `Skip`s for problems only it can
see, such as a malformed metadata line). `ingest_corpus` does the rest, so every corpus is
checked the same way and every rejected item is counted by cause instead of lost silently.
"""
from __future__ import annotations

import contextlib
import os
from collections import Counter, deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Callable, ContextManager, Iterable, Iterator, Sequence, TypeVar

import pandas as pd

from ds2_keras.core.alphabet import ENGLISH, UnmappableTextError, normalize_text
from ds2_keras.data.audio import SAMPLE_RATE, AudioError, AudioInfo, audio_info, verify_audio
from ds2_keras.core.errors import FileError
from ds2_keras.core.fileio import atomic_write_text, check_writable, make_directory, os_cause, os_error_path
from ds2_keras.data.manifest import COLUMNS, write_manifest

# Skip causes; the summary groups skipped items under these names.
MISSING_AUDIO = "missing audio"
UNREADABLE_AUDIO = "unreadable audio"
EMPTY_AUDIO = "empty audio"
NO_TRANSCRIPT = "no transcript"
EMPTY_TEXT = "empty text"
UNMAPPABLE_TEXT = "characters outside the alphabet"
WRONG_SAMPLE_RATE = "wrong sample rate"
NOT_MONO = "not mono"
DUPLICATE_ID = "duplicate utterance id"
MALFORMED_ENTRY = "malformed transcript entry"
UNREADABLE_TRANSCRIPT = "unreadable transcript"
INCOMPLETE_AUDIO = "incomplete audio"
NON_FINITE_AUDIO = "non-finite samples"

# AudioError.cause strings from ds2_keras.data.audio, up to any " (details)"; anything else counts as unreadable.
_AUDIO_CAUSES = {"file not found": MISSING_AUDIO, "audio holds no samples": EMPTY_AUDIO,
                 "incomplete audio": INCOMPLETE_AUDIO, "non-finite samples": NON_FINITE_AUDIO}

# File names are at most 255 bytes on common file systems, and a transcript is first written
# as ".<uid>.txt.<8 random characters>.txt" (fileio.atomic_path).
MAX_UID_BYTES = 200

T = TypeVar("T")
R = TypeVar("R")
# A progress display: given the work's length and a label, a context whose value advances it by
# a count. The command line passes a bar (ds2_keras.ingest.commands.progress_bar); None shows nothing, so
# the recipes need no terminal toolkit.
Progress = Callable[[int, str], ContextManager[Callable[[int], None]]]


class IngestError(FileError):
    """The corpus cannot be ingested at all; the CLI shows this as one line, no traceback."""


@dataclass(frozen=True)
class Utterance:
    """One item a recipe found; `text` is the raw transcript, None when the corpus has none."""

    uid: str
    audio_path: Path
    text: str | None


@dataclass(frozen=True)
class Skip:
    """An item left out of the manifest: why (a summary group), which file, and the details."""

    cause: str
    path: Path
    detail: str

    def __str__(self) -> str:
        return f"{self.path}: {self.detail}"


@dataclass
class IngestSummary:
    """What an ingest produced and what it left out, so nothing is dropped without a word."""

    manifest: Path
    utterances: int
    seconds: float
    skips: list[Skip] = field(default_factory=list)
    language: str = ENGLISH  # whose normalization the transcripts had

    @property
    def hours(self) -> float:
        return self.seconds / 3600

    @property
    def skipped(self) -> dict[str, int]:
        """Skipped item counts by cause."""
        return dict(Counter(skip.cause for skip in self.skips))

    def format(self, listed_per_cause: int = 10) -> str:
        """The report printed after an ingest; lists the first skipped files of each cause."""
        lines = [
            f"wrote {self.utterances} utterances, {self.hours:.2f} hours ({self.seconds / 60:.1f} minutes)"
            f" to {self.manifest}, text normalized as language {self.language}",
            f"skipped {len(self.skips)} items" + (":" if self.skips else ""),
        ]
        for cause, count in sorted(self.skipped.items(), key=lambda item: (-item[1], item[0])):
            lines.append(f"  {cause}: {count}")
            group = [skip for skip in self.skips if skip.cause == cause]
            lines.extend(f"    {skip}" for skip in group[:listed_per_cause])
            if count > listed_per_cause:
                lines.append(f"    ... and {count - listed_per_cause} more")
        return "\n".join(lines)


# A recipe: lists a corpus directory's utterances, and the problems only it can see.
Recipe = Callable[[Path], Iterable[Utterance | Skip]]

# Given an audio header: None if the audio suits the corpus, else (cause, detail).
AudioCheck = Callable[[AudioInfo], tuple[str, str] | None]


def require_16k_mono(info: AudioInfo) -> tuple[str, str] | None:
    """For corpora that promise 16 kHz mono (LibriSpeech), where anything else means damage."""
    if info.sample_rate != SAMPLE_RATE:
        return WRONG_SAMPLE_RATE, f"{info.sample_rate} Hz, expected {SAMPLE_RATE} Hz"
    if info.channels != 1:
        return NOT_MONO, f"{info.channels} channels, expected mono"
    return None


def ingest_corpus(
    source_dir: Path,
    enumerate_corpus: Recipe,
    transcripts_dir: Path,
    manifest_path: Path,
    progress: Progress | None = None,
    check_audio: AudioCheck | None = None,
    verify: bool = False,
    language: str = ENGLISH,
) -> IngestSummary:
    """Validate every enumerated utterance, write its transcript, then the manifest atomically.

    Audio headers are read by a thread pool; with `verify`, every file is decoded in full
    (verify_audio), which finds truncated or NaN-holding audio that a header check passes.
    The manifest is written only after the whole corpus went through, so an exception midway
    leaves no manifest (or the previous one, untouched). Outputs the OS refuses fail before
    the work, as one-line OutputErrors; transcripts are written atomically too. Transcripts
    are normalized by `language`'s rules, which the manifest records.
    """
    source_dir = Path(source_dir)
    items = _enumerate(source_dir, enumerate_corpus)
    transcripts_dir = make_directory(_absolute(transcripts_dir))
    check_writable(manifest_path)
    rows: list[tuple[str, str, str, float, str]] = []
    skips: list[Skip] = []
    written: set[str] = set()
    audio = _in_parallel(partial(_inspect_audio, check_audio=check_audio, decode=verify), items)
    label = f"{'decoding and ingesting' if verify else 'ingesting'} {source_dir}"
    with contextlib.closing(audio), shown(progress, len(items), label) as advance:
        for item, header in zip(items, audio):
            advance(1)
            outcome = item if isinstance(item, Skip) else _validate(item, header, written, language)
            if isinstance(outcome, Skip):
                skips.append(outcome)
                continue
            text, info = outcome
            transcript = transcripts_dir / f"{item.uid}.txt"
            atomic_write_text(transcript, text)
            written.add(item.uid)
            rows.append((str(_absolute(item.audio_path)), str(transcript), text, info.duration, language))
    if not rows:
        counts = ", ".join(f"{count} {cause}" for cause, count in Counter(s.cause for s in skips).items())
        raise IngestError(source_dir, f"no usable utterances (skipped: {counts})")
    path = write_manifest(pd.DataFrame(rows, columns=COLUMNS), manifest_path)
    return IngestSummary(manifest=path, utterances=len(rows), seconds=sum(r[3] for r in rows), skips=skips,
                         language=language)


def _enumerate(source_dir: Path, enumerate_corpus: Recipe) -> list[Utterance | Skip]:
    """The recipe's items; a directory the OS will not list is a one-line IngestError naming it."""
    try:
        if not source_dir.is_dir():
            raise IngestError(source_dir, "directory not found" if not source_dir.exists() else "not a directory")
        items = list(enumerate_corpus(source_dir))
    except OSError as error:
        raise IngestError(os_error_path(error, source_dir), f"cannot read ({os_cause(error)})") from None
    if not items:
        raise IngestError(source_dir, "holds no utterances")
    return items


def _inspect_audio(item: Utterance | Skip, check_audio: AudioCheck | None, decode: bool) -> AudioInfo | Skip | None:
    """An utterance's audio header (after a full decode with `decode`), or why its audio is unusable."""
    if isinstance(item, Skip):
        return None
    try:
        info = (verify_audio if decode else audio_info)(item.audio_path)
    except AudioError as error:
        cause = _AUDIO_CAUSES.get(error.cause.partition(" (")[0], UNREADABLE_AUDIO)
        return Skip(cause, item.audio_path, error.cause)
    problem = check_audio(info) if check_audio else None
    if problem:
        cause, detail = problem
        return Skip(cause, item.audio_path, detail)
    return info


def _validate(item: Utterance, audio: Skip | AudioInfo, written: set[str], language: str
              ) -> Skip | tuple[str, AudioInfo]:
    """The normalized text and audio header of a usable utterance, or why it is skipped."""
    if item.uid in ("", ".", "..") or Path(item.uid).name != item.uid or len(os.fsencode(item.uid)) > MAX_UID_BYTES:
        return Skip(MALFORMED_ENTRY, item.audio_path, f"utterance id {item.uid!r} cannot name a transcript file")
    if item.uid in written:
        return Skip(DUPLICATE_ID, item.audio_path, f"utterance id {item.uid!r} already ingested")
    if isinstance(audio, Skip):
        return audio
    if item.text is None:
        return Skip(NO_TRANSCRIPT, item.audio_path, f"no transcript for utterance {item.uid!r}")
    try:
        text = normalize_text(item.text, language)
    except UnmappableTextError as error:
        return Skip(UNMAPPABLE_TEXT, item.audio_path, f"utterance {item.uid!r}: {error}")
    if not text:
        return Skip(EMPTY_TEXT, item.audio_path, f"utterance {item.uid!r}: transcript is empty")
    return text, audio


def _in_parallel(function: Callable[[T], R], items: Sequence[T]) -> Iterator[R]:
    """function(item) for each item, in order, computed by a thread pool a few items ahead.

    Threads suffice: libsndfile releases the GIL while it reads and decodes. Submitting a
    bounded window, not the whole corpus, keeps memory flat on a million files.
    """
    workers = os.cpu_count() or 1
    pending: deque[Future] = deque()
    with ThreadPoolExecutor(workers) as pool:
        try:
            for item in items:
                pending.append(pool.submit(function, item))
                if len(pending) >= 4 * workers:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:  # stopped early (an error, Ctrl-C): drop the work not started
            for future in pending:
                future.cancel()


def read_lines(path: Path) -> list[str]:
    """A UTF-8 text file's lines, split on newlines only (str.splitlines also splits on
    Unicode separators that may sit inside a transcript)."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise IngestError(path, f"not UTF-8 text ({error.reason} at byte {error.start})") from None
    except OSError as error:
        raise IngestError(path, f"cannot read ({os_cause(error)})") from None
    return text.replace("\r\n", "\n").split("\n")


def untranscribed(audio_paths: Iterable[Path], transcribed: set[str]) -> Iterator[Utterance]:
    """Audio files whose stem no transcript names, so that they are counted, not ignored."""
    for path in sorted(audio_paths):
        if path.stem not in transcribed:
            yield Utterance(path.stem, path, None)


def shown(progress: Progress | None, length: int, label: str) -> ContextManager[Callable[[int], None]]:
    """`progress` for this work, or a display that shows nothing."""
    if progress is None:
        return contextlib.nullcontext(lambda count: None)
    return progress(length, label)


def _absolute(path: str | Path) -> Path:
    """Absolute and free of `..`, without resolving symlinks (keeps the user's own paths)."""
    return Path(os.path.abspath(path))
