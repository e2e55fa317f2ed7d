"""Transcript files: SRT and WebVTT cues parse and keep subtitle limits; the JSON has a fixed schema."""
from __future__ import annotations

import json
import re

import numpy as np
import pytest

from ds2_keras.decode.transcript_writers import (
    MAX_CUE_SECONDS, MAX_LINE_CHARACTERS, MAX_LINES, printed_text, srt_text, subtitle_cues, transcript_record,
    vtt_text, write_transcript,
)
from ds2_keras.decode.words import Hypothesis, Word

_TIME = r"(\d\d):(\d\d):(\d\d)[,.](\d\d\d)"
_CUE_TIMES = re.compile(rf"^{_TIME} --> {_TIME}$")


def seconds(groups: tuple[str, ...]) -> float:
    hours, minutes, whole, milliseconds = map(int, groups)
    return hours * 3600 + minutes * 60 + whole + milliseconds / 1000


def parse_cues(text: str, numbered: bool) -> list[tuple[float, float, list[str]]]:
    """(start, end, lines) per cue of an SRT (numbered) or the body of a WebVTT file."""
    cues = []
    for number, block in enumerate(text.strip("\n").split("\n\n"), start=1):
        lines = block.split("\n")
        if numbered:
            assert lines.pop(0) == str(number)
        times = _CUE_TIMES.match(lines[0])
        assert times, lines[0]
        cues.append((seconds(times.groups()[:4]), seconds(times.groups()[4:]), lines[1:]))
    return cues


def parse_srt(text: str):
    return parse_cues(text, numbered=True) if text else []


def parse_vtt(text: str):
    header, _, body = text.partition("\n\n")
    assert header == "WEBVTT"
    return parse_cues(body, numbered=False) if body else []


def speech(count: int = 80, seed: int = 0) -> Hypothesis:
    """`count` words of 1-15 letters spoken at about 2.5 words a second, with two long pauses."""
    rng = np.random.default_rng(seed)
    words, clock = [], 0.25
    for index in range(count):
        length = int(rng.integers(1, 16))
        text = "".join(rng.choice(list("abcdefghijklmnopqrstuvwxyz"), size=length))
        duration = 0.06 * length
        words.append(Word(text, round(clock, 3), round(clock + duration, 3), float(rng.uniform(0.2, 1.0))))
        clock += duration + (3.0 if index in (20, 50) else float(rng.uniform(0.03, 0.4)))
    return Hypothesis(" ".join(w.text for w in words), tuple(words), -123.5)


@pytest.mark.parametrize("render, parse", [(srt_text, parse_srt), (vtt_text, parse_vtt)])
def test_subtitles_parse_and_keep_the_limits(render, parse):
    hypothesis = speech()
    cues = parse(render(hypothesis))
    assert len(cues) > 5
    assert " ".join(" ".join(lines) for _, _, lines in cues) == hypothesis.text  # every word, in order, uncut
    for (start, end, lines), following in zip(cues, cues[1:] + [None]):
        assert 1 <= len(lines) <= MAX_LINES
        assert all(0 < len(line) <= MAX_LINE_CHARACTERS for line in lines)
        assert 0 <= start < end <= start + MAX_CUE_SECONDS
        if following:
            assert end <= following[0]  # in order, never overlapping
    first_words = {cue_lines[0].split()[0] for _, _, cue_lines in cues}
    assert {hypothesis.words[21].text, hypothesis.words[51].text} <= first_words  # long pauses start cues


def test_cue_times_are_word_times():
    words = (Word("hello", 0.51, 0.93, 0.9), Word("world", 1.02, 1.5, 0.8), Word("again", 4.2, 4.71, 0.7))
    hypothesis = Hypothesis("hello world again", words, -3.0)
    assert srt_text(hypothesis) == ("1\n00:00:00,510 --> 00:00:01,500\nhello world\n\n"
                                    "2\n00:00:04,200 --> 00:00:04,710\nagain\n\n")
    assert vtt_text(hypothesis).startswith("WEBVTT\n\n00:00:00.510 --> 00:00:01.500\nhello world\n\n")


def test_a_word_longer_than_a_line_gets_its_own_line_and_overlaps_are_cut():
    long_word = "a" * 50
    words = (Word("x", 0.0, 0.5, 1.0), Word(long_word, 0.6, 2.0, 1.0), Word("y", 1.9, 2.5, 1.0))
    cues = subtitle_cues(words, max_seconds=2.2)
    assert [cue.lines for cue in cues] == [("x", long_word), ("y",)]
    assert cues[1].start == cues[0].end == 2.0


def test_empty_transcripts_give_empty_subtitles():
    empty = Hypothesis("", (), 0.0)
    assert srt_text(empty) == "" and vtt_text(empty) == "WEBVTT\n\n"


def test_json_schema(tmp_path):
    hypothesis = speech(count=3)
    path = write_transcript(tmp_path / "out", "/audio/talk.flac", hypothesis, "json")
    assert path == tmp_path / "out" / "talk.json"
    record = json.loads(path.read_text())
    assert record == transcript_record("/audio/talk.flac", hypothesis)
    assert set(record) == {"audio", "text", "score", "words"} and record["audio"] == "/audio/talk.flac"
    assert record["text"] == hypothesis.text and record["score"] == -123.5
    for word, expected in zip(record["words"], hypothesis.words, strict=True):
        assert set(word) == {"text", "start", "end", "confidence"}
        assert (word["text"], word["start"], word["end"], word["confidence"]) == \
            (expected.text, expected.start, expected.end, expected.confidence)
    assert json.loads(printed_text("json", "/audio/talk.flac", hypothesis)) == record  # one line of JSON Lines
    assert "\n" not in printed_text("json", "/audio/talk.flac", hypothesis)


def test_txt_prints_the_seed_line_and_writes_the_text(tmp_path):
    hypothesis = Hypothesis("hello there", (), -1.0)
    assert printed_text("txt", "a.wav", hypothesis) == "a.wav\thello there"
    assert write_transcript(tmp_path, "dir/a.wav", hypothesis, "txt").read_text() == "hello there\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt"]  # atomic: no temporary left
