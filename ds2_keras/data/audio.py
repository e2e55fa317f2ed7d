"""Reading audio files: header inspection and full verification for ingest, and decoding to
16 kHz mono float32. Audio that holds NaN or Inf samples is refused like unreadable audio.

soundfile (libsndfile) reads WAV, FLAC, OGG, MP3 and NIST SPHERE with no TensorFlow plugin; we
do not use tensorflow-io, whose last release does not load next to TF 2.21 (see docs/design.md).
"""
from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass
from math import gcd
from pathlib import Path
from typing import Iterator

import numpy as np
import soundfile

from ds2_keras.core.errors import FileError
from ds2_keras.core.fileio import os_cause

SAMPLE_RATE = 16000
# A float WAV can hold NaN or Inf; one such sample turns every feature and loss it touches into NaN.
NON_FINITE = "non-finite samples (NaN or Inf)"
_BLOCK_FRAMES = 1 << 16  # verify_audio decodes this many frames at a time, so memory stays small


class AudioError(FileError):
    """An audio file could not be used; the message names the file and the cause."""


@dataclass(frozen=True)
class AudioInfo:
    sample_rate: int
    channels: int
    frames: int

    @property
    def duration(self) -> float:
        return self.frames / self.sample_rate


def audio_info(path: str | Path) -> AudioInfo:
    """Read only the header (fast: no decode), raising AudioError for missing or unreadable files."""
    with _reading(path):
        info = soundfile.info(str(path))
    if info.frames <= 0:
        raise AudioError(path, "audio holds no samples")
    return AudioInfo(sample_rate=int(info.samplerate), channels=int(info.channels), frames=int(info.frames))


def resample(samples: np.ndarray, source_rate: int, target_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Band-limited polyphase resampling (scipy), exact for rational rate ratios."""
    if source_rate == target_rate:
        return samples
    from scipy.signal import resample_poly  # imported here: it costs a second at CLI start-up
    divisor = gcd(source_rate, target_rate)
    return resample_poly(samples, target_rate // divisor, source_rate // divisor).astype(np.float32)


def load_audio(path: str | Path, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Decode any container soundfile reads to mono float32 in [-1, 1] at `sample_rate`.

    Non-finite samples raise AudioError, so the loaders skip such a file as unreadable.
    """
    with _reading(path):
        samples, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    if samples.shape[0] == 0:
        raise AudioError(path, "audio holds no samples")
    if not np.isfinite(samples).all():
        raise AudioError(path, NON_FINITE)
    return resample(samples.mean(axis=1), int(rate), sample_rate)


def verify_audio(path: str | Path) -> AudioInfo:
    """The header, once every frame it promises has decoded to finite samples.

    Ingest reads headers only, which a truncated download passes (its header still counts the
    frames it lost); this finds such files before training trips over them.
    """
    info = audio_info(path)
    decoded, problem = 0, ""
    try:
        with soundfile.SoundFile(str(path)) as audio:
            while len(block := audio.read(_BLOCK_FRAMES, dtype="float32")):
                if not np.isfinite(block).all():
                    raise AudioError(path, NON_FINITE)
                decoded += len(block)
    except (RuntimeError, soundfile.LibsndfileError) as error:
        problem = f": {error}"
    if decoded < info.frames:
        raise AudioError(path, f"incomplete audio (decoded {decoded} of {info.frames} frames{problem})")
    return info


def write_audio(path: str | Path, samples: np.ndarray, sample_rate: int = SAMPLE_RATE) -> None:
    """Write 16-bit PCM audio; the format follows the extension (.flac, .wav).

    Encoded in memory and written by Python, so that a full disk is an OSError naming the file
    (libsndfile would say only "System error").
    """
    path = Path(path)
    encoded = io.BytesIO()
    soundfile.write(encoded, np.clip(samples, -1.0, 1.0), sample_rate, subtype="PCM_16",
                    format=path.suffix.lstrip(".").upper())
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(encoded.getvalue())


@contextlib.contextmanager
def _reading(path: str | Path) -> Iterator[None]:
    """Report a missing file, or one the OS or libsndfile will not open, as an AudioError naming it."""
    try:
        if not Path(path).is_file():
            raise AudioError(path, "file not found")
        yield
    except OSError as error:  # stat refused: a directory on the way may not be searched
        raise AudioError(path, f"unreadable audio ({os_cause(error)})") from None
    except (RuntimeError, soundfile.LibsndfileError) as error:
        raise AudioError(path, f"unreadable audio ({error})") from None
