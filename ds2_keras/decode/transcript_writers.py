"""Transcripts as files: plain text, JSON with timed words, and SRT / WebVTT subtitles.

`ds2 transcribe` only picks a format; the layout of each lives here (as in openai/whisper's
result writers). Subtitle cues follow common practice (BBC and Netflix style guides): at most
two lines of at most 42 characters, at most 7 s on screen, cut between words, and a pause of
more than 1.5 s between words starts a new cue, so no text stays up over a silence.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from ds2_keras.core.fileio import atomic_write_text
from ds2_keras.decode.words import Hypothesis, Word

FORMATS = ("txt", "json", "srt", "vtt")
MAX_LINE_CHARACTERS = 42
MAX_LINES = 2
MAX_CUE_SECONDS = 7.0
MAX_PAUSE_SECONDS = 1.5


@dataclass(frozen=True)
class Cue:
    """One subtitle: shown from start to end (seconds), its words on one or two lines."""

    start: float
    end: float
    lines: tuple[str, ...]


def subtitle_cues(words: Sequence[Word], max_characters: int = MAX_LINE_CHARACTERS, max_lines: int = MAX_LINES,
                  max_seconds: float = MAX_CUE_SECONDS, max_pause: float = MAX_PAUSE_SECONDS) -> list[Cue]:
    """Words grouped into cues within the limits, in order and never overlapping.

    A word longer than a line gets a line of its own (words are never cut). A cue starts at
    its first word's start, or at the previous cue's end if that is later (pieces of long
    audio may overlap by a frame), and ends at its last word's end.
    """
    cues: list[Cue] = []
    group: list[Word] = []
    lines: list[str] = []

    def close() -> None:
        start = max(group[0].start, cues[-1].end if cues else 0.0)
        cues.append(Cue(start, max(group[-1].end, start), tuple(lines)))

    for word in words:
        if group and (word.start - group[-1].end > max_pause or word.end - group[0].start > max_seconds):
            close()
            group, lines = [], []
        if lines and len(lines[-1]) + 1 + len(word.text) <= max_characters:
            lines[-1] += " " + word.text
        elif len(lines) < max_lines:
            lines.append(word.text)
        else:
            close()
            group, lines = [], [word.text]
        group.append(word)
    if group:
        close()
    return cues


def transcript_record(audio: str | Path, hypothesis: Hypothesis) -> dict:
    """The JSON object of one transcript: audio, text, score, words [{text, start, end, confidence}]."""
    return {"audio": str(audio), **hypothesis.as_dict()}


def _timestamp(seconds: float, separator: str) -> str:
    milliseconds = round(seconds * 1000)
    hours, rest = divmod(milliseconds, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    return f"{hours:02d}:{minutes:02d}:{rest // 1000:02d}{separator}{rest % 1000:03d}"


def _cue_blocks(hypothesis: Hypothesis, separator: str, numbered: bool) -> list[str]:
    return [(f"{number}\n" if numbered else "")
            + f"{_timestamp(cue.start, separator)} --> {_timestamp(cue.end, separator)}\n" + "\n".join(cue.lines)
            for number, cue in enumerate(subtitle_cues(hypothesis.words), start=1)]


def srt_text(hypothesis: Hypothesis) -> str:
    return "".join(f"{block}\n\n" for block in _cue_blocks(hypothesis, ",", numbered=True))


def vtt_text(hypothesis: Hypothesis) -> str:
    return "WEBVTT\n\n" + "".join(f"{block}\n\n" for block in _cue_blocks(hypothesis, ".", numbered=False))


# What a file holds, and what is printed instead when there is no --output-dir.
_FILE_TEXT: dict[str, Callable[[str | Path, Hypothesis], str]] = {
    "txt": lambda audio, hypothesis: hypothesis.text + "\n",
    "json": lambda audio, hypothesis: json.dumps(transcript_record(audio, hypothesis), indent=1, ensure_ascii=False) + "\n",
    "srt": lambda audio, hypothesis: srt_text(hypothesis),
    "vtt": lambda audio, hypothesis: vtt_text(hypothesis),
}
_PRINTED_TEXT: dict[str, Callable[[str | Path, Hypothesis], str]] = {
    "txt": lambda audio, hypothesis: f"{audio}\t{hypothesis.text}",  # the seed's FILE<TAB>text lines
    "json": lambda audio, hypothesis: json.dumps(transcript_record(audio, hypothesis), ensure_ascii=False),  # JSON Lines
    "srt": lambda audio, hypothesis: srt_text(hypothesis).rstrip("\n"),
    "vtt": lambda audio, hypothesis: vtt_text(hypothesis).rstrip("\n"),
}


def printed_text(output_format: str, audio: str | Path, hypothesis: Hypothesis) -> str:
    """What `ds2 transcribe` prints for one file (without a final newline)."""
    return _PRINTED_TEXT[output_format](audio, hypothesis)


def output_path(output_dir: Path, audio: str | Path, output_format: str) -> Path:
    """OUTPUT_DIR/<audio stem>.<format>."""
    return Path(output_dir) / f"{Path(audio).stem}.{output_format}"


def write_transcript(output_dir: Path, audio: str | Path, hypothesis: Hypothesis, output_format: str) -> Path:
    """Write one transcript file atomically; OS refusals raise fileio.OutputError naming it."""
    path = output_path(output_dir, audio, output_format)
    atomic_write_text(path, _FILE_TEXT[output_format](audio, hypothesis))
    return path
