"""`ds2 transcribe`: audio files in, greedy transcripts out.

It runs recognizer.recognizer's graph, the one `ds2 export` saves for TF Serving, so a
transcript from this command and one from a served model come from the same ops. What stays in
Python is file handling: decoding any format at any rate (audio.load_audio), cutting long
recordings at pauses so the network never sees more than `max_seconds` at a time, and batching
chunks of several files into one call. TensorFlow is imported on first use so that
`ds2 --help` stays fast.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Iterator, Sequence

import click
import numpy as np

from .audio import AudioError, load_audio
from .cli_options import model_file_option

if TYPE_CHECKING:
    import tensorflow as tf

    from .model import DS2Model

MAX_SECONDS = 20.0  # longest piece the network sees; longer audio is cut at pauses
SEARCH_SECONDS = 5.0  # each cut is placed at the quietest point of the window's last seconds
_PAUSE_SECONDS = 0.1  # energy is smoothed over this span so a cut prefers pauses to stop consonants


def split_at_pauses(samples: np.ndarray, sample_rate: int, max_seconds: float = MAX_SECONDS,
                    search_seconds: float = SEARCH_SECONDS) -> list[np.ndarray]:
    """Consecutive pieces of at most `max_seconds`, each cut where the audio is quietest.

    Each cut lies in the last `search_seconds` of its window, at the lowest smoothed energy,
    so words are rarely split; audio no longer than `max_seconds` comes back whole.
    """
    window, search = int(max_seconds * sample_rate), int(min(search_seconds, max_seconds / 2) * sample_rate)
    hop = max(sample_rate // 100, 1)
    smoothing = np.ones(max(int(_PAUSE_SECONDS * sample_rate) // hop, 1))
    pieces, start = [], 0
    while len(samples) - start > window:
        region = samples[start + window - search: start + window]
        frames = region[: len(region) // hop * hop].reshape(-1, hop)
        energy = np.convolve(np.square(frames).sum(axis=1), smoothing, mode="same")
        cut = start + window - search + int(np.argmin(energy)) * hop + hop // 2
        pieces.append(samples[start:cut])
        start = cut
    pieces.append(samples[start:])
    return pieces


def join_pieces(transcripts: Sequence[str]) -> str:
    """One transcript from consecutive pieces' transcripts; a single piece's is kept untouched."""
    if len(transcripts) == 1:
        return transcripts[0]
    return " ".join(text.strip() for text in transcripts if text.strip())


def recognize_batches(module: tf.Module, waveforms: Sequence[np.ndarray], batch_size: int) -> list[str]:
    """Greedy transcripts of whole waveforms, similar lengths batched together; order kept."""
    transcripts = [""] * len(waveforms)
    order = np.argsort([len(w) for w in waveforms], kind="stable")
    for first in range(0, len(order), batch_size):
        rows = order[first:first + batch_size]
        lengths = np.array([len(waveforms[i]) for i in rows], dtype=np.int32)
        batch = np.zeros((len(rows), max(lengths.max(), 1)), dtype=np.float32)
        for row, index in enumerate(rows):
            batch[row, : lengths[row]] = waveforms[index]
        outputs = module.recognize(batch, lengths)
        for index, text in zip(rows, outputs["transcripts"].numpy()):
            transcripts[index] = text.decode("utf-8")
    return transcripts


def transcribe(module: tf.Module, waveforms: Sequence[np.ndarray], batch_size: int = 16,
               max_seconds: float = MAX_SECONDS) -> list[str]:
    """Greedy transcripts of mono float32 waveforms at the model's rate (`recognizer(model)`).

    Waveforms longer than `max_seconds` are cut at pauses, their pieces transcribed in batches
    with the rest and the texts joined, so the network never holds more than batch_size pieces
    of max_seconds (the waveforms themselves take 64 kB per second at 16 kHz).
    """
    sample_rate = module.model.ds2_config.sample_rate
    pieces = [split_at_pauses(np.asarray(w, np.float32), sample_rate, max_seconds) for w in waveforms]
    texts = iter(recognize_batches(module, [piece for split in pieces for piece in split], batch_size))
    return [join_pieces([next(texts) for _ in split]) for split in pieces]


def transcribe_files(module: tf.Module, paths: Sequence[Path], batch_size: int = 16,
                     max_seconds: float = MAX_SECONDS) -> Iterator[tuple[Path, str | AudioError]]:
    """(path, transcript) per file, in order, or (path, AudioError) for a file that cannot be read.

    Files are decoded a group at a time (about `batch_size` pieces), so many files never sit in
    memory together and an unreadable file does not stop the others.
    """
    sample_rate = module.model.ds2_config.sample_rate
    group: list[tuple[Path, np.ndarray | AudioError]] = []
    pending_seconds = 0.0
    for index, path in enumerate(paths):
        try:
            samples: np.ndarray | AudioError = load_audio(path, sample_rate)
            pending_seconds += len(samples) / sample_rate
        except AudioError as error:
            samples = error
        group.append((Path(path), samples))
        if pending_seconds >= batch_size * max_seconds or index == len(paths) - 1:
            readable = [s for _, s in group if not isinstance(s, AudioError)]
            texts = iter(transcribe(module, readable, batch_size, max_seconds))
            yield from ((p, s if isinstance(s, AudioError) else next(texts)) for p, s in group)
            group, pending_seconds = [], 0.0


@click.command("transcribe")
@model_file_option()
@click.argument("audio", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("-z", "--batch-size", "--batch_size", "batch_size", type=click.IntRange(min=1), default=16,
              show_default=True, help="Audio pieces per network call.")
@click.option("--max-seconds", type=click.FloatRange(min=1.0), default=MAX_SECONDS, show_default=True,
              help="Longer audio is cut at pauses into pieces of at most this length.")
@click.option("--stream", is_flag=True,
              help="Stream each file (or raw 16 kHz 16-bit PCM from stdin for `-`) in chunks, printing partial "
                   "transcripts on stderr; needs a model trained with streaming=true.")
@click.option("--chunk-ms", type=click.IntRange(min=10), default=160, show_default=True,
              help="With --stream: milliseconds of audio per chunk.")
@click.option("--realtime", is_flag=True, help="With --stream: feed files no faster than they play.")
def transcribe_command(model_file: Path, audio: tuple[Path, ...], batch_size: int, max_seconds: float,
                       stream: bool, chunk_ms: int, realtime: bool) -> None:
    """Print `AUDIO<TAB>transcript` for each audio file (WAV, FLAC, MP3, ...; any rate, stereo mixed down).

    Greedy decoding, exactly as the exported SavedModel does it. An unreadable file is reported
    on stderr and the others are still transcribed; the exit status is then 1.
    """
    from .checkpoints import ModelFileError, load_model_file
    from .recognizer import recognizer

    try:
        model = load_model_file(model_file, compile=False)
        if stream:
            return stream_files(model, audio, chunk_ms, realtime)
        module = recognizer(model)
    except ModelFileError as error:
        raise click.ClickException(str(error)) from None
    failures = []
    for path, result in transcribe_files(module, audio, batch_size, max_seconds):
        if isinstance(result, AudioError):
            failures.append(result)
            if len(audio) > 1:
                click.echo(f"Error: {result}", err=True)
        else:
            click.echo(f"{path}\t{result}")
    if len(audio) == 1 and failures:
        raise click.ClickException(str(failures[0]))
    if failures:
        raise click.ClickException(f"{len(failures)} of {len(audio)} audio files could not be transcribed")


def stream_files(model: DS2Model, audio: Sequence[Path], chunk_ms: int, realtime: bool) -> None:
    """`--stream`: partial transcripts on stderr as they change, `AUDIO<TAB>transcript` on stdout at the end."""
    import sys
    import time

    from .streaming import Streamer, array_chunks, check_streamable, pcm_chunks

    check_streamable(model)
    sample_rate = model.ds2_config.sample_rate
    chunk = sample_rate * chunk_ms // 1000
    live = sys.stderr.isatty()
    for path in audio:
        chunks = pcm_chunks(sys.stdin.buffer, chunk) if str(path) == "-" else array_chunks(
            load_audio(path, sample_rate), chunk)
        streamer, shown, started = Streamer(model), "", time.monotonic()
        for index, samples in enumerate(chunks):
            if realtime and str(path) != "-":
                time.sleep(max(0.0, started + index * chunk_ms / 1000 - time.monotonic()))
            partial = streamer.feed(samples)
            if partial != shown:
                click.echo(f"\r\x1b[K{partial}" if live else f"{path}\tpartial\t{partial}", err=True, nl=not live)
                shown = partial
        if live:
            click.echo("\r\x1b[K", err=True, nl=False)
        click.echo(f"{path}\t{streamer.finish()}")
