"""`ds2 transcribe`: audio files in, greedy transcripts with timed words out (text, JSON, subtitles).

It runs recognizer.recognizer's graph, the one `ds2 export` saves for TF Serving, so a
transcript from this command and one from a served model come from the same ops. What stays in
Python is file handling: decoding any format at any rate (audio.load_audio), cutting long
recordings at pauses so the network never sees more than `max_seconds` at a time (word times
are moved back to the whole recording's clock), batching chunks of several files into one
call, and choosing a transcript_writers format. TensorFlow is imported on first use so that
`ds2 --help` stays fast.
"""
from __future__ import annotations

import io
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator, Sequence

import click
import numpy as np

from .audio import AudioError, audio_info, load_audio
from .cli_options import model_file_option
from .fileio import OutputError
from .transcript_writers import FORMATS, output_path, printed_text, write_transcript
from .words import Hypothesis, hypotheses

if TYPE_CHECKING:
    import tensorflow as tf

    from .model import DS2Model

MAX_SECONDS = 20.0  # longest piece the network sees; longer audio is cut at pauses
SEARCH_SECONDS = 5.0  # each cut is placed at the quietest point of the window's last seconds
_PAUSE_SECONDS = 0.1  # energy is smoothed over this span so a cut prefers pauses to stop consonants
PROGRESS_SECONDS = 60.0  # a single file longer than this gets a progress bar
Progress = Callable[[float], None]  # told the seconds of audio each network call transcribed


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


def join_pieces(hypotheses: Sequence[Hypothesis], offsets: Sequence[float]) -> Hypothesis:
    """One hypothesis from consecutive pieces', each piece's words moved to its start (`offsets`, seconds).

    A single piece's hypothesis is kept untouched; several pieces' texts are joined with single
    spaces and their scores added.
    """
    if len(hypotheses) == 1:
        return hypotheses[0].shifted(offsets[0])
    return Hypothesis(" ".join(h.text.strip() for h in hypotheses if h.text.strip()),
                      tuple(word for h, offset in zip(hypotheses, offsets) for word in h.shifted(offset).words),
                      sum(h.score for h in hypotheses))


def recognize_batches(module: tf.Module, waveforms: Sequence[np.ndarray], batch_size: int,
                      progress: Progress | None = None) -> list[Hypothesis]:
    """Greedy hypotheses of whole waveforms, similar lengths batched together; order kept.

    `progress` is called after each batch with the seconds of audio it held.
    """
    results: list[Hypothesis | None] = [None] * len(waveforms)
    sample_rate = module.model.ds2_config.sample_rate
    order = np.argsort([len(w) for w in waveforms], kind="stable")
    for first in range(0, len(order), batch_size):
        rows = order[first:first + batch_size]
        lengths = np.array([len(waveforms[i]) for i in rows], dtype=np.int32)
        batch = np.zeros((len(rows), max(lengths.max(), 1)), dtype=np.float32)
        for row, index in enumerate(rows):
            batch[row, : lengths[row]] = waveforms[index]
        for index, hypothesis in zip(rows, hypotheses(module.recognize(batch, lengths))):
            results[index] = hypothesis
        if progress is not None:
            progress(lengths.sum() / sample_rate)
    return results


def transcribe(module: tf.Module, waveforms: Sequence[np.ndarray], batch_size: int = 16,
               max_seconds: float = MAX_SECONDS, progress: Progress | None = None) -> list[Hypothesis]:
    """Greedy hypotheses of mono float32 waveforms at the model's rate (`recognizer(model)`).

    Waveforms longer than `max_seconds` are cut at pauses, their pieces transcribed in batches
    with the rest and joined (word times count from the start of the whole waveform), so the
    network never holds more than batch_size pieces of max_seconds (the waveforms themselves
    take 64 kB per second at 16 kHz).
    """
    sample_rate = module.model.ds2_config.sample_rate
    pieces = [split_at_pauses(np.asarray(w, np.float32), sample_rate, max_seconds) for w in waveforms]
    results = iter(recognize_batches(module, [piece for split in pieces for piece in split], batch_size, progress))
    return [join_pieces([next(results) for _ in split], _starts(split, sample_rate)) for split in pieces]


def _starts(pieces: Sequence[np.ndarray], sample_rate: int) -> list[float]:
    """Where each consecutive piece starts in the audio they were cut from, in seconds."""
    return [int(start) / sample_rate for start in np.cumsum([0] + [len(p) for p in pieces[:-1]])]


def transcribe_files(module: tf.Module, paths: Sequence[Path], batch_size: int = 16, max_seconds: float = MAX_SECONDS,
                     progress: Progress | None = None) -> Iterator[tuple[Path, Hypothesis | AudioError]]:
    """(path, hypothesis) per file, in order, or (path, AudioError) for a file that cannot be read.

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
            results = iter(transcribe(module, readable, batch_size, max_seconds, progress))
            yield from ((p, s if isinstance(s, AudioError) else next(results)) for p, s in group)
            group, pending_seconds = [], 0.0


def header_seconds(paths: Sequence[Path]) -> float:
    """Total duration the files' headers promise (unreadable files count 0): a progress bar's length."""
    total = 0.0
    for path in paths:
        try:
            total += audio_info(path).duration
        except AudioError:
            pass
    return total


@click.command("transcribe")
@model_file_option()
@click.argument("audio", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("-z", "--batch-size", "--batch_size", "batch_size", type=click.IntRange(min=1), default=16,
              show_default=True, help="Audio pieces per network call.")
@click.option("--max-seconds", type=click.FloatRange(min=1.0), default=MAX_SECONDS, show_default=True,
              help="Longer audio is cut at pauses into pieces of at most this length.")
@click.option("--format", "output_format", type=click.Choice(FORMATS), default="txt", show_default=True,
              help="txt: AUDIO<TAB>transcript lines; json: text, score and timed words; srt, vtt: subtitles.")
@click.option("--output-dir", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="Write one <audio stem>.<format> file per input here instead of printing.")
@click.option("--stream", is_flag=True,
              help="Stream each file (or raw 16 kHz 16-bit PCM from stdin for `-`) in chunks, printing partial "
                   "transcripts on stderr; needs a model trained with streaming=true.")
@click.option("--chunk-ms", type=click.IntRange(min=10), default=160, show_default=True,
              help="With --stream: milliseconds of audio per chunk.")
@click.option("--realtime", is_flag=True, help="With --stream: feed files no faster than they play.")
def transcribe_command(model_file: Path, audio: tuple[Path, ...], batch_size: int, max_seconds: float,
                       output_format: str, output_dir: Path | None, stream: bool, chunk_ms: int,
                       realtime: bool) -> None:
    """Transcribe audio files (WAV, FLAC, MP3, ...; any rate, stereo mixed down).

    Greedy decoding, exactly as the exported SavedModel does it; word times count from the
    start of each file. An unreadable file is reported on stderr and the others are still
    transcribed; the exit status is then 1. A progress bar (stderr) shows for several files or
    more than a minute of audio, unless transcripts are printed to a terminal.
    """
    from .checkpoints import ModelFileError, load_model_file
    from .recognizer import recognizer

    _check_outputs(audio, output_format, output_dir)
    try:
        model = load_model_file(model_file, compile=False)
        if stream:
            return stream_files(model, audio, chunk_ms, realtime, output_format, output_dir)
        module = recognizer(model)
    except ModelFileError as error:
        raise click.ClickException(str(error)) from None
    total = header_seconds(audio)
    printing = output_dir is None and sys.stdout.isatty()  # the lines show the progress
    show_progress = (len(audio) > 1 or total > PROGRESS_SECONDS) and not printing
    failures = []
    with click.progressbar(length=max(round(total), 1), label="transcribing",
                           file=sys.stderr if show_progress else io.StringIO()) as bar:
        for path, result in transcribe_files(module, audio, batch_size, max_seconds, bar.update):
            if isinstance(result, AudioError):
                failures.append(result)
                if len(audio) > 1:
                    click.echo(f"Error: {result}", err=True)
            elif output_dir is not None:
                try:
                    write_transcript(output_dir, path, result, output_format)
                except OutputError as error:
                    raise click.ClickException(str(error)) from None
            else:
                click.echo(printed_text(output_format, path, result))
    if len(audio) == 1 and failures:
        raise click.ClickException(str(failures[0]))
    if failures:
        raise click.ClickException(f"{len(failures)} of {len(audio)} audio files could not be transcribed")


def _check_outputs(audio: Sequence[Path], output_format: str, output_dir: Path | None) -> None:
    """Refuse, before any work, outputs that would mix or overwrite each other."""
    if output_dir is None:
        if output_format in ("srt", "vtt") and len(audio) > 1:
            raise click.UsageError(f"{output_format} subtitles of several files need --output-dir")
        return
    seen: dict[Path, Path] = {}
    for path in audio:
        target = output_path(output_dir, path, output_format)
        if target in seen:
            raise click.UsageError(f"{seen[target]} and {path} would both be written to {target}")
        seen[target] = path


def stream_files(model: DS2Model, audio: Sequence[Path], chunk_ms: int, realtime: bool, output_format: str,
                 output_dir: Path | None) -> None:
    """`--stream`: partial transcripts on stderr as they change, the final result as --format/--output-dir say."""
    import time

    from .streaming import Streamer, StreamingRecognizer, array_chunks, pcm_chunks

    recognizer = StreamingRecognizer(model)  # one trace for every file
    sample_rate = model.ds2_config.sample_rate
    chunk = sample_rate * chunk_ms // 1000
    live = sys.stderr.isatty()
    for path in audio:
        chunks = pcm_chunks(sys.stdin.buffer, chunk) if str(path) == "-" else array_chunks(
            load_audio(path, sample_rate), chunk)
        streamer, shown, started = Streamer(recognizer), "", time.monotonic()
        for index, samples in enumerate(chunks):
            if realtime and str(path) != "-":
                time.sleep(max(0.0, started + index * chunk_ms / 1000 - time.monotonic()))
            partial = streamer.feed(samples).text
            if partial != shown:
                click.echo(f"\r\x1b[K{partial}" if live else f"{path}\tpartial\t{partial}", err=True, nl=not live)
                shown = partial
        if live:
            click.echo("\r\x1b[K", err=True, nl=False)
        final = streamer.finish()
        if output_dir is not None:
            write_transcript(output_dir, path, final, output_format)
        else:
            click.echo(printed_text(output_format, path, final))
