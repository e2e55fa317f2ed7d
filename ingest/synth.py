"""`ds2 ingest synth`: a synthetic English speech corpus made on the spot with espeak-ng.

It needs no download and no GPU, so a newcomer (and the test suite, and the demo) always has
a learnable corpus. Each "speaker" is one espeak-ng accent combined with one voice variant;
speaking rate, pitch, level, padding and background noise are drawn per utterance from a
generator seeded by (seed, utterance number), and espeak-ng itself is deterministic, so the
same seed and size give byte-identical audio. The tree follows LibriSpeech's layout, and the
manifests come from the LibriSpeech recipe, so the synthetic corpus is ingested exactly like
a real one.

Splits: `test` speaks with voice variants that appear in no other split (CER on unseen
voices); `val` shares voices with `train`; no sentence is spoken in two splits.
"""
from __future__ import annotations

import io
import itertools
import os
import shutil
import subprocess
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import soundfile

from ds2_keras.core.alphabet import normalize_text
from ds2_keras.data.audio import SAMPLE_RATE, resample, write_audio
from ds2_keras.core.errors import DS2Error
from ds2_keras.core.fileio import make_directory, reporting_os_errors
from ds2_keras.ingest.common import IngestSummary, Progress, shown
from ds2_keras.ingest.librispeech import ingest_librispeech
from ds2_keras.ingest.sentences import sentence_pool

ESPEAK = "espeak-ng"
INSTALL_HINT = "install it with `apt-get install espeak-ng` (Debian, Ubuntu) or `brew install espeak-ng` (macOS)"

# espeak-ng's English accents (`espeak-ng --voices=en`), MBROLA voices left out: they need
# separately installed diphone databases.
ACCENTS = ("en-us", "en-gb", "en-gb-x-rp", "en-gb-scotland", "en-gb-x-gbclan", "en-gb-x-gbcwmd",
           "en-029", "en-us-nyc")
# Voice variants (`espeak-ng --voices=variant`) that still sound like a person talking:
# robotic, echoing, whispered and strongly formant-shifted variants are left out.
# Append only: a speaker id is 1000 + 100 * accent position + variant position (< 100).
VARIANTS: tuple[tuple[str, str], ...] = tuple(
    (name, "M") for name in (
        "m1 m2 m3 m4 m5 m6 m7 m8 klatt klatt2 klatt3 klatt4 klatt5 klatt6 adam benjamin david "
        "edward edward2 Alex Denis Diogo Gene Gene2 Henrique Hugo Mario Mike Nguyen antonio ed "
        "grandpa croak john max michel miguel pablo paul pedro quincy rob robert sandro victor "
        "Storm zac"
    ).split()
) + tuple(
    (name, "F") for name in
    "f1 f2 f3 f4 f5 Alicia Andrea Annie anika aunty belinda linda steph steph2 steph3 grandma shelby".split()
)
TEST_VARIANT_SHARE = 0.15  # of each sex's variants, held out for the test split
SPLITS = ("train", "val", "test")
SPLIT_SHARE = {"val": 0.1, "test": 0.1}  # train gets the rest
CHAPTERS = {"train": 1, "val": 2, "test": 3}  # one chapter per speaker and split
ESPEAK_AMPLITUDE = 40  # leaves headroom: some variants clip at espeak's default of 100
MARKER = "Synthetic English speech made by `ds2 ingest synth`"


class SynthError(DS2Error):
    """The corpus cannot be synthesized; the CLI shows this as one line, no traceback."""


@dataclass(frozen=True)
class Speaker:
    """One espeak-ng voice; the numeric id encodes the catalog positions, so it is stable."""

    id: int
    accent: str
    variant: str
    sex: str

    @property
    def voice(self) -> str:
        return f"{self.accent}+{self.variant}"


@dataclass(frozen=True)
class Recording:
    """One planned utterance; `number` (its position in the corpus) seeds its random draws."""

    number: int
    split: str
    speaker: Speaker
    index: int
    text: str

    @property
    def chapter(self) -> int:
        return CHAPTERS[self.split]

    @property
    def uid(self) -> str:
        return f"{self.speaker.id}-{self.chapter}-{self.index:04d}"

    def audio_path(self, root: Path) -> Path:
        return root / self.split / str(self.speaker.id) / str(self.chapter) / f"{self.uid}.flac"


# ---------------------------------------------------------------- espeak-ng


def espeak_version() -> str:
    """'espeak-ng 1.51'; also the first call, so a missing espeak-ng fails before any work."""
    line = _run_espeak(["--version"]).decode()  # "eSpeak NG text-to-speech: 1.51  Data at: ..."
    return f"{ESPEAK} {line.split(':')[1].split()[0]}" if ":" in line else line.strip()


def _run_espeak(arguments: list[str], text: str | None = None) -> bytes:
    try:
        result = subprocess.run([ESPEAK, *arguments], input=None if text is None else text.encode(),
                                capture_output=True, check=False)
    except FileNotFoundError:
        raise SynthError(f"{ESPEAK} not found on PATH: {INSTALL_HINT}") from None
    if result.returncode != 0 or not result.stdout:
        detail = result.stderr.decode(errors="replace").strip() or f"exit status {result.returncode}"
        shown = "" if text is None else f" for {text!r}"
        raise SynthError(f"{ESPEAK} {' '.join(arguments)} failed{shown}: {detail}")
    return result.stdout


def available_speakers() -> list[Speaker]:
    """The catalog's accent+variant voices this espeak-ng installation has.

    espeak-ng silently falls back to its default voice for an unknown variant, so availability
    is read from its voice lists rather than trusted.
    """
    # Columns: Pty Language Age/Gender VoiceName File [Other Languages]; the first row is the header.
    accents = {row[1] for row in _voice_table("--voices=en")}
    variants = {row[4].removeprefix("!v/") for row in _voice_table("--voices=variant")}
    return [Speaker(1000 + 100 * a + v, accent, name, sex)
            for a, accent in enumerate(ACCENTS) if accent in accents
            for v, (name, sex) in enumerate(VARIANTS) if name in variants]


def _voice_table(option: str) -> list[list[str]]:
    rows = [line.split() for line in _run_espeak([option]).decode().splitlines()[1:]]
    return [row for row in rows if len(row) >= 5]


# ---------------------------------------------------------------- planning


def split_sizes(num_utterances: int) -> dict[str, int]:
    """Utterances per split: about 80/10/10, at least one in each."""
    if num_utterances < len(SPLITS):
        raise SynthError(f"need at least {len(SPLITS)} utterances (one per split), got {num_utterances}")
    sizes = {name: max(1, round(num_utterances * share)) for name, share in SPLIT_SHARE.items()}
    return {"train": num_utterances - sum(sizes.values()), **sizes}


def hold_out_speakers(speakers: list[Speaker], rng: np.random.Generator) -> tuple[list[Speaker], ...]:
    """(train/val speakers, test speakers): whole variants, a share of each sex, go to test.

    Holding out variants rather than single accent+variant pairs keeps test timbres truly
    unseen, not just recombined from accents and variants heard in training.
    """
    held_out: set[str] = set()
    for sex in ("M", "F"):
        names = sorted({s.variant for s in speakers if s.sex == sex})
        if names:
            count = max(1, round(len(names) * TEST_VARIANT_SHARE))
            held_out.update(rng.choice(names, size=count, replace=False).tolist())
    if len(held_out) == len({s.variant for s in speakers}):
        raise SynthError(f"{ESPEAK} offers too few voice variants to hold some out for the test split")
    seen = [s for s in speakers if s.variant not in held_out]
    return seen, [s for s in speakers if s.variant in held_out]


def plan_corpus(num_utterances: int, seed: int, speakers: list[Speaker]) -> list[Recording]:
    """Which sentence each utterance says, in which split and voice.

    Every utterance gets its own sentence, so splits never share one; voices are dealt out
    round-robin from a shuffled list, so a corpus uses as many voices as it can.
    """
    rng = np.random.default_rng([seed, 0x5B11])
    seen, unseen = (_deal(group, rng) for group in hold_out_speakers(speakers, rng))
    voices = {"train": seen, "val": seen, "test": unseen}
    sentences = iter(sentence_pool(num_utterances, seed))
    counts: dict[tuple[str, int], int] = defaultdict(int)
    recordings = []
    for split, size in split_sizes(num_utterances).items():
        for _ in range(size):
            speaker = next(voices[split])
            index = counts[split, speaker.id]
            counts[split, speaker.id] += 1
            recordings.append(Recording(len(recordings), split, speaker, index, next(sentences)))
    return recordings


def _deal(speakers: list[Speaker], rng: np.random.Generator) -> Iterator[Speaker]:
    return (speakers[i] for i in itertools.cycle(rng.permutation(len(speakers))))


# ---------------------------------------------------------------- audio


def render(recording: Recording, seed: int, root: Path) -> float:
    """Synthesize one utterance, set its level, pad it, add noise and write its FLAC.

    Returns the duration in seconds. All random draws come from this utterance's own
    generator, so the result does not depend on which worker ran it or when.
    """
    rng = np.random.default_rng([seed, recording.number])
    words_per_minute, pitch = int(rng.integers(130, 211)), int(rng.integers(25, 76))
    speech = speak(recording.text, recording.speaker.voice, words_per_minute, pitch)
    speech *= 10 ** (rng.uniform(-12.0, -3.0) / 20) / np.abs(speech).max()  # peak level in dBFS
    # espeak-ng leaves ~15 ms before and ~350 ms after the speech; vary both a little.
    lead = np.zeros(int(rng.uniform(0.05, 0.3) * SAMPLE_RATE))
    tail = np.zeros(int(rng.uniform(0.0, 0.15) * SAMPLE_RATE))
    audio = np.concatenate([lead, speech, tail])
    noise = pink_noise(rng, len(audio)) if rng.random() < 0.5 else rng.standard_normal(len(audio))
    snr_db = rng.uniform(25.0, 35.0)
    audio += noise * (speech_rms(speech) / np.sqrt(np.mean(noise**2)) / 10 ** (snr_db / 20))
    write_audio(recording.audio_path(root), audio.astype(np.float32))
    return len(audio) / SAMPLE_RATE


def speak(text: str, voice: str, words_per_minute: int, pitch: int) -> np.ndarray:
    """espeak-ng's rendering of `text` at 16 kHz (float64, not silent)."""
    options = {"-v": voice, "-s": words_per_minute, "-p": pitch, "-a": ESPEAK_AMPLITUDE}
    wav = _run_espeak([*(str(x) for pair in options.items() for x in pair), "--stdout"], text=text)
    try:
        samples, rate = soundfile.read(io.BytesIO(wav), dtype="float32")
    except (RuntimeError, soundfile.LibsndfileError) as error:
        raise SynthError(f"{ESPEAK} -v {voice} gave unreadable audio for {text!r}: {error}") from None
    if not np.any(samples):
        raise SynthError(f"{ESPEAK} -v {voice} gave silence for {text!r}")
    return resample(samples, rate, SAMPLE_RATE).astype(np.float64)


def pink_noise(rng: np.random.Generator, length: int) -> np.ndarray:
    """1/f noise: white noise shaped in the frequency domain, closer to room noise than hiss."""
    spectrum = np.fft.rfft(rng.standard_normal(length))
    spectrum /= np.sqrt(np.maximum(np.arange(len(spectrum)), 1))
    return np.fft.irfft(spectrum, length)


def speech_rms(speech: np.ndarray, frame: int = SAMPLE_RATE // 50) -> float:
    """RMS over 20 ms frames within 30 dB of the loudest, so pauses do not inflate the SNR."""
    usable = max(len(speech) // frame, 1) * frame
    power = np.mean(np.resize(speech, usable).reshape(-1, frame) ** 2, axis=1)
    return float(np.sqrt(np.mean(power[power >= power.max() / 1000])))


# ---------------------------------------------------------------- corpus tree


def synthesize_tree(root: Path, recordings: list[Recording], seed: int, workers: int,
                    progress: Progress | None = None) -> dict[str, float]:
    """Render every recording into `root` in parallel; returns seconds of audio per utterance id.

    Threads suffice: the work is an espeak-ng subprocess plus numpy and libsndfile calls,
    which release the GIL, and threads keep a parent that imported TensorFlow safe from fork.
    """
    durations: dict[str, float] = {}
    with ThreadPoolExecutor(max_workers=workers) as pool, shown(progress, len(recordings), "synthesizing") as advance:
        futures = {pool.submit(render, recording, seed, root): recording for recording in recordings}
        try:
            for future in as_completed(futures):
                durations[futures[future].uid] = future.result()
                advance(1)
        except BaseException:
            pool.shutdown(cancel_futures=True)
            raise
    return durations


def write_transcripts(root: Path, recordings: list[Recording]) -> None:
    """One `<speaker>-<chapter>.trans.txt` per chapter: `<uid> TEXT`, upper case as LibriSpeech."""
    chapters: dict[Path, list[str]] = defaultdict(list)
    for recording in recordings:
        folder = recording.audio_path(root).parent
        chapters[folder / f"{recording.speaker.id}-{recording.chapter}.trans.txt"].append(
            f"{recording.uid} {normalize_text(recording.text).upper()}")
    for path, lines in chapters.items():
        path.write_text("\n".join(sorted(lines)) + "\n", encoding="utf-8")


def write_speakers(root: Path, recordings: list[Recording], durations: dict[str, float]) -> None:
    """SPEAKERS.TXT in LibriSpeech's format; NAME is the espeak-ng voice (accent+variant)."""
    minutes: dict[Speaker, float] = defaultdict(float)
    subsets: dict[Speaker, set[str]] = defaultdict(set)
    for recording in recordings:
        minutes[recording.speaker] += durations[recording.uid] / 60
        subsets[recording.speaker].add(recording.split)
    lines = [
        "; Each speaker is one espeak-ng voice: an English accent plus a voice variant.",
        "; Test speakers use variants heard in no other subset.",
        ";ID   |SEX| SUBSET     |MINUTES| NAME",
    ]
    for speaker in sorted(minutes, key=lambda s: s.id):
        subset = ",".join(split for split in SPLITS if split in subsets[speaker])
        row = (f"{speaker.id:<5}", speaker.sex, f"{subset:<10}", f"{minutes[speaker]:5.2f}", speaker.voice)
        lines.append(" | ".join(row))
    (root / "SPEAKERS.TXT").write_text("\n".join(lines) + "\n", encoding="utf-8")


def write_readme(root: Path, version: str, num_utterances: int, seed: int) -> None:
    """README.TXT says what the tree is; its first line marks the tree as ours to replace."""
    (root / "README.TXT").write_text(
        f"{MARKER}.\n\n"
        f"Not LibriSpeech: only its layout. {num_utterances} utterances spoken by {version},\n"
        f"seed {seed}. Regenerate with: ds2 ingest synth OUT_DIR -n {num_utterances} --seed {seed}\n",
        encoding="utf-8")


def _is_ours(root: Path) -> bool:
    readme = root / "README.TXT"
    return readme.is_file() and readme.read_text(encoding="utf-8", errors="replace").startswith(MARKER)


# ---------------------------------------------------------------- entry points


@dataclass(frozen=True)
class SynthesizedCorpus:
    """What synthesize_corpus made, for the caller to use and the command line to report."""

    root: Path  # OUT_DIR/LibriSpeech
    voices: int
    seconds: float  # of audio
    synthesis_seconds: float  # of wall time
    workers: int
    splits: dict[str, IngestSummary]  # split -> its ingest

    @property
    def manifests(self) -> dict[str, Path]:
        return {split: summary.manifest for split, summary in self.splits.items()}

    def format(self) -> str:
        utterances = sum(summary.utterances for summary in self.splits.values())
        lines = [f"synthesized {utterances} utterances, {self.seconds / 3600:.2f} hours, {self.voices} voices in "
                 f"{self.synthesis_seconds:.1f} s with {self.workers} workers -> {self.root}"]
        lines += [f"{split}: {summary.format()}" for split, summary in self.splits.items()]
        return "\n".join(lines)


def synthesize_corpus(out_dir: Path, num_utterances: int, seed: int = 0, workers: int | None = None,
                      progress: Progress | None = None) -> SynthesizedCorpus:
    """Synthesize `OUT_DIR/LibriSpeech/{train,val,test}`, then ingest each split.

    Writes `OUT_DIR/<split>.csv` and `OUT_DIR/transcripts/<split>/`. A corpus this command made
    before in OUT_DIR is replaced; any other `LibriSpeech` folder there is left alone and
    reported. The tree is built beside its final place and renamed into it, so an interrupted
    run, or one the OS stops (a full disk: an OutputError naming the file), never leaves a
    half-written corpus. Prints nothing: `progress` shows the work as it goes, and the result's
    format() is the report.
    """
    out_dir = Path(out_dir)
    root = out_dir / "LibriSpeech"
    if root.exists() and not _is_ours(root):
        raise SynthError(f"{root}: exists and was not made by `ds2 ingest synth`; choose another OUT_DIR")
    version = espeak_version()
    speakers = available_speakers()
    if not speakers:
        raise SynthError(f"{ESPEAK} ({version}) offers none of the English voices {', '.join(ACCENTS)}")
    recordings = plan_corpus(num_utterances, seed, speakers)
    workers = workers or min(8, os.cpu_count() or 1)

    started = time.perf_counter()
    staging = make_directory(out_dir) / "LibriSpeech.partial"
    with reporting_os_errors(out_dir):
        shutil.rmtree(staging, ignore_errors=True)
        make_directory(staging)
        try:
            durations = synthesize_tree(staging, recordings, seed, workers, progress)
            write_transcripts(staging, recordings)
            write_speakers(staging, recordings, durations)
            write_readme(staging, version, num_utterances, seed)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        if root.exists():
            shutil.rmtree(root)
            for split in SPLITS:
                shutil.rmtree(out_dir / "transcripts" / split, ignore_errors=True)
        staging.rename(root)
    synthesis_seconds = time.perf_counter() - started
    splits = {split: ingest_librispeech(root / split, out_dir / "transcripts" / split, out_dir / f"{split}.csv",
                                        progress=progress)
              for split in SPLITS}
    return SynthesizedCorpus(root=root, voices=len({r.speaker for r in recordings}), seconds=sum(durations.values()),
                             synthesis_seconds=synthesis_seconds, workers=workers, splits=splits)
