"""`ds2 transcribe`'s command line: options, where transcripts go, progress and partials shown.

The work is transcribe.transcribe_files (offline) and streaming.Streamer (--stream); this module
only turns options into calls and results into printed lines or files.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import click

from .audio import AudioError, audio_info, load_audio
from .cli_options import batch_size_option, decoder_options, model_file_option, progress_bar, quiet_progress
from .transcribe import MAX_SECONDS, transcribe_files
from .transcript_writers import FORMATS, output_path, printed_text, write_transcript

if TYPE_CHECKING:
    from .decoding import Decoder
    from .decoder_settings import DecoderSettings
    from .model import DS2Model

PROGRESS_SECONDS = 60.0  # a single file longer than this gets a progress bar


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
@batch_size_option(16, help="Audio pieces per network call.")
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
@decoder_options
def transcribe_command(model_file: Path, audio: tuple[Path, ...], batch_size: int, max_seconds: float,
                       output_format: str, output_dir: Path | None, stream: bool, chunk_ms: int,
                       realtime: bool, decoder: DecoderSettings) -> None:
    """Transcribe audio files (WAV, FLAC, MP3, ...; any rate, stereo mixed down).

    Greedy decoding by default, exactly as the exported SavedModel does it; --decoder beam
    (with --lm, --hotword, --nbest) decodes the same logits by beam search, as `ds2 evaluate`
    does. Word times count from the start of each file. An unreadable file is reported on
    stderr and the others are still transcribed; the exit status is then 1. A progress bar
    (stderr) shows for several files or more than a minute of audio, unless transcripts are
    printed to a terminal.
    """
    from .checkpoints import load_model_file
    from .recognizer import recognizer

    _check_outputs(audio, output_format, output_dir)
    model = load_model_file(model_file, compile=False)  # its DS2Errors print as one line (OneLineErrors)
    chosen = decoder.build(model.alphabet)  # a bad LM or hotword fails before any audio is read
    if decoder.kind != "greedy":
        click.echo(f"decoder: {chosen.description}", err=True)
    if stream:
        return stream_files(model, audio, chunk_ms, realtime, output_format, output_dir, chosen)
    module = recognizer(model)
    total = header_seconds(audio)
    printing = output_dir is None and sys.stdout.isatty()  # the lines show the progress
    show_progress = (len(audio) > 1 or total > PROGRESS_SECONDS) and not printing
    failures = []
    progress = progress_bar if show_progress else quiet_progress
    with progress(max(round(total), 1), "transcribing") as advance:
        for path, result in transcribe_files(module, audio, batch_size, max_seconds, advance, chosen):
            if isinstance(result, AudioError):
                failures.append(result)
                if len(audio) > 1:
                    click.echo(f"Error: {result}", err=True)
            elif output_dir is not None:
                write_transcript(output_dir, path, result, output_format)
            else:
                click.echo(printed_text(output_format, path, result))
    if len(audio) == 1 and failures:
        raise failures[0]
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
                 output_dir: Path | None, decoder: Decoder | None = None) -> None:
    """`--stream`: partial transcripts on stderr as they change, the final result as --format/--output-dir say
    (the beam's with a beam-search decoder; partials stay greedy)."""
    import time

    from .streaming import Streamer, StreamingRecognizer, array_chunks, pcm_chunks

    recognizer = StreamingRecognizer(model)  # one trace for every file
    sample_rate = model.ds2_config.sample_rate
    chunk = sample_rate * chunk_ms // 1000
    live = sys.stderr.isatty()
    for path in audio:
        chunks = pcm_chunks(sys.stdin.buffer, chunk) if str(path) == "-" else array_chunks(
            load_audio(path, sample_rate), chunk)
        streamer, shown, started = Streamer(recognizer, decoder), "", time.monotonic()
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
