"""Tiny corpora in the real on-disk layouts, built in tmp_path, for the ingest and manifest tests.

The audio is short tones written with soundfile, so durations are known exactly and the tests
never depend on downloaded data.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile

# LibriSpeech utterance id -> (raw transcript line text, seconds): two speakers, three chapters.
LIBRISPEECH = {
    "19-198-0000": ("NORTHANGER ABBEY", 0.8),
    "19-198-0001": ("NO ONE WHO HAD EVER SEEN CATHERINE MORLAND IN HER INFANCY", 1.25),
    "19-227-0000": ("SHE HAD A THIN AWKWARD FIGURE", 0.5),
    "26-495-0000": ("IT'S THE MOTHER'S DUTY", 1.0),
    "26-495-0001": ("HER FATHER WAS A CLERGYMAN", 0.75),
}


_FORMATS = {".sph": "NIST"}  # soundfile infers the other formats from the extension


def tone(seconds: float, sample_rate: int = 16000) -> np.ndarray:
    """A quiet 440 Hz tone."""
    return 0.3 * np.sin(2 * np.pi * 440 * np.arange(int(round(seconds * sample_rate))) / sample_rate)


def write_tone(path: Path, seconds: float, sample_rate: int = 16000, channels: int = 1) -> float:
    """Write a tone (format from the extension); return its exact duration."""
    signal = tone(seconds, sample_rate)
    if channels > 1:
        signal = np.repeat(signal[:, None], channels, axis=1)
    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(str(path), signal, sample_rate, format=_FORMATS.get(path.suffix))
    return len(signal) / sample_rate


def write_nonfinite_wav(path: Path, value: float = np.nan, seconds: float = 0.5) -> Path:
    """A 32-bit float WAV (a format that can store NaN and Inf) of a tone with one `value` sample."""
    signal = tone(seconds).astype(np.float32)
    signal[len(signal) // 2] = value
    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(str(path), signal, 16000, subtype="FLOAT")
    return path


def write_garbage(path: Path) -> None:
    """A file with an audio extension that no decoder can read."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"this is not audio at all" * 10)


def librispeech_audio(split_dir: Path, uid: str) -> Path:
    speaker, chapter, _ = uid.split("-")
    return split_dir / speaker / chapter / f"{uid}.flac"


def librispeech_transcript(split_dir: Path, uid: str) -> Path:
    speaker, chapter, _ = uid.split("-")
    return split_dir / speaker / chapter / f"{speaker}-{chapter}.trans.txt"


def make_librispeech(split_dir: Path, utterances: dict[str, tuple[str, float]] = LIBRISPEECH) -> dict[str, float]:
    """One split directory; returns the exact duration of each utterance by id."""
    durations = {}
    for uid, (text, seconds) in utterances.items():
        durations[uid] = write_tone(librispeech_audio(split_dir, uid), seconds)
        add_librispeech_line(split_dir, uid, text)
    return durations


def add_librispeech_line(split_dir: Path, uid: str, text: str) -> None:
    with librispeech_transcript(split_dir, uid).open("a", encoding="utf-8") as transcript:
        transcript.write(f"{uid} {text}\n")


def make_ljspeech(root: Path, rows: dict[str, tuple[str, str, float]]) -> dict[str, float]:
    """metadata.csv `id|raw|normalized` and wavs/ at 22.05 kHz; rows: id -> (raw, normalized, seconds)."""
    (root / "wavs").mkdir(parents=True, exist_ok=True)
    lines = [f"{uid}|{raw}|{normalized}" for uid, (raw, normalized, _) in rows.items()]
    (root / "metadata.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return {uid: write_tone(root / "wavs" / f"{uid}.wav", seconds, 22050) for uid, (_, _, seconds) in rows.items()}


def make_commonvoice(root: Path, split: str, rows: dict[str, tuple[str, float]]) -> dict[str, float]:
    """`<split>.tsv` with Common Voice's columns and clips/*.mp3 at 48 kHz; rows: clip -> (sentence, seconds)."""
    header = "client_id\tpath\tsentence\tup_votes\tdown_votes\tage\tgender\taccent"
    lines = [header] + [f"c0ffee\t{clip}\t{sentence}\t2\t0\t\t\t" for clip, (sentence, _) in rows.items()]
    root.mkdir(parents=True, exist_ok=True)
    (root / f"{split}.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return {clip: write_tone(root / "clips" / clip, seconds, 48000) for clip, (_, seconds) in rows.items()}


def make_spoken_commonvoice(root: Path, split: str, sentences: dict[str, str], voice: str,
                            sample_rate: int = 48000) -> None:
    """Like make_commonvoice, but each clip says its sentence, in an espeak-ng `voice` (`es`, `de`, ...)."""
    from ds2_keras.data.audio import resample
    from ds2_keras.ingest.synth import speak

    header = "client_id\tpath\tsentence\tup_votes\tdown_votes\tage\tgender\taccent"
    lines = [header] + [f"c0ffee\t{clip}\t{sentence}\t2\t0\t\t\t" for clip, sentence in sentences.items()]
    (root / "clips").mkdir(parents=True, exist_ok=True)
    (root / f"{split}.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    for clip, sentence in sentences.items():
        speech = resample(speak(sentence, voice, words_per_minute=150, pitch=50), 16000, sample_rate)
        soundfile.write(str(root / "clips" / clip), 0.5 * speech / abs(speech).max(), sample_rate, format="MP3")


# AN4 fileid -> (split, words as the transcription has them, seconds): three speakers.
AN4 = {
    "an251-fash-b": ("train", "YES", 0.5),
    "an253-fash-b": ("train", "GO", 0.4),
    "cen1-fash-b": ("train", "ENTER SIX TWO FOUR", 1.0),
    "cen7-mgah-b": ("train", "P I T T S B U R G H", 1.5),
    "an406-fcaw-b": ("test", "RUBOUT T W O", 0.7),
    "cen2-fcaw-b": ("test", "FIFTY", 0.6),
}
AN4_AUDIO_DIRS = {"train": "an4_clstk", "test": "an4test_clstk"}


def an4_audio(root: Path, split: str, fileid: str) -> Path:
    """`root/wav/<split dir>/<speaker>/<fileid>.sph` (the speaker is the fileid's middle part)."""
    return root / "wav" / AN4_AUDIO_DIRS[split] / fileid.split("-")[1] / f"{fileid}.sph"


def make_an4(root: Path, wrap_train: bool = True) -> dict[str, float]:
    """An `an4` directory: SPHERE audio, fileids and transcriptions; train lines wrapped in
    `<s> ... </s>` (or not), test lines bare, as releases differ. Returns seconds by fileid."""
    (root / "etc").mkdir(parents=True, exist_ok=True)
    durations = {}
    for split in AN4_AUDIO_DIRS:
        wrap = split == "train" and wrap_train
        ids = [fileid for fileid, (where, _, _) in AN4.items() if where == split]
        lines = [f"<s> {AN4[i][1]} </s> ({i})" if wrap else f"{AN4[i][1]} ({i})" for i in ids]
        (root / "etc" / f"an4_{split}.transcription").write_text("\n".join(lines) + "\n", encoding="utf-8")
        fileids = [an4_audio(root, split, i).relative_to(root / "wav").with_suffix("").as_posix() for i in ids]
        (root / "etc" / f"an4_{split}.fileids").write_text("\n".join(fileids) + "\n", encoding="utf-8")
        durations.update({i: write_tone(an4_audio(root, split, i), AN4[i][2]) for i in ids})
    return durations
