"""`ds2 transcribe`'s command line: options, where transcripts go, progress and partials shown.

The work is transcribe.transcribe_files (offline) and streaming.Streamer (--stream); this module
only turns options into calls and results into printed lines or files.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

import click

from ds2_keras.data.audio import AudioError, audio_info, load_audio
from ds2_keras.cli.options import batch_size_option, decoder_options, model_file_option, progress_bar, quiet_progress
from ds2_keras.deploy.transcribe import MAX_SECONDS, transcribe_files
from ds2_keras.decode.transcript_writers import FORMATS, output_path, printed_text, write_transcript

if TYPE_CHECKING:
    from ds2_keras.decode.settings import DecoderSettings
    from ds2_keras.decode.decoders import Decoder
    from ds2_keras.decode.words import Hypothesis

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
@model_file_option(help="A ds2 model file (.keras) written by `ds2 fit`, or a LiteRT export (.tflite).")
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

    --model-file takes a .keras model file or a LiteRT export (.tflite, with its .json beside it).

    Greedy decoding by default, exactly as the exported SavedModel does it; --decoder beam
    (with --lm, --hotword, --nbest) decodes the same logits by beam search, as `ds2 evaluate`
    does. Word times count from the start of each file. An unreadable file is reported on
    stderr and the others are still transcribed; the exit status is then 1. A progress bar
    (stderr) shows for several files or more than a minute of audio, unless transcripts are
    printed to a terminal.
    """
    _check_outputs(audio, output_format, output_dir)
    # DS2Errors (a bad model file, LM or hotword) print as one line, before any audio is read
    module, start_stream, sample_rate, chosen = _recognizers(model_file, stream, decoder)
    if decoder.kind != "greedy":
        click.echo(f"decoder: {chosen.description}", err=True)
    if stream:
        return stream_files(start_stream, sample_rate, audio, chunk_ms, realtime, output_format, output_dir)
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
    _raise_failures(failures, len(audio))


def _recognizers(model_file: Path, stream: bool, decoder: DecoderSettings
                 ) -> tuple[object, Callable[[], object] | None, int, Decoder]:
    """(offline recognizer, a new stream's streamer factory, sample rate, decoder) of a .keras or LiteRT
    .tflite file, the decoder built for the model's alphabet.

    Only what the command needs is built: the streamer factory with --stream, else the recognizer.
    """
    from ds2_keras.decode.decoders import GreedyDecoder
    from ds2_keras.core.litert_file import is_litert_file
    from ds2_keras.deploy.litert_runtime import LiteRTModel

    if is_litert_file(model_file):
        litert = LiteRTModel(model_file)
        chosen = decoder.build(litert.alphabet)
        if stream:
            litert.streamer()  # refused now if the export cannot stream
        beam = None if isinstance(chosen, GreedyDecoder) else chosen  # greedy stays the runtime's own
        return litert, lambda: litert.streamer(beam), litert.sample_rate, chosen
    from ds2_keras.model.checkpoints import load_model_file
    from ds2_keras.deploy.recognizer import recognizer

    model = load_model_file(model_file, compile=False)
    chosen = decoder.build(model.alphabet)
    if not stream:
        return recognizer(model), None, model.ds2_config.sample_rate, chosen
    from ds2_keras.deploy.streaming import Streamer, StreamingRecognizer

    streaming = StreamingRecognizer(model)  # one trace for every file
    return None, lambda: Streamer(streaming, chosen), model.ds2_config.sample_rate, chosen


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


def stream_files(start_stream: Callable[[], object], sample_rate: int, audio: Sequence[Path], chunk_ms: int,
                 realtime: bool, output_format: str, output_dir: Path | None) -> None:
    """`--stream`: partial transcripts on stderr as they change, the final result as --format/--output-dir say
    (the beam's with a beam-search decoder; partials stay greedy).

    start_stream() gives a new stream's streamer (streaming.Streamer or litert_runtime.LiteRTStreamer):
    feed(chunk) and finish() return Hypotheses. As offline: a file that cannot be read is reported
    and the others are still streamed.
    """
    failures = []
    for path in audio:
        try:
            final = _stream_one(start_stream(), sample_rate, path, chunk_ms, realtime)
        except AudioError as error:
            failures.append(error)
            if len(audio) > 1:
                click.echo(f"Error: {error}", err=True)
            continue
        if output_dir is not None:
            write_transcript(output_dir, path, final, output_format)
        else:
            click.echo(printed_text(output_format, path, final))
    _raise_failures(failures, len(audio))


def _raise_failures(failures: list[AudioError], files: int) -> None:
    """One file: its own error. Several: how many failed (each was reported as it happened)."""
    if files == 1 and failures:
        raise failures[0]
    if failures:
        raise click.ClickException(f"{len(failures)} of {files} audio files could not be transcribed")


def _stream_one(streamer, sample_rate: int, path: Path, chunk_ms: int, realtime: bool) -> Hypothesis:
    """Stream one file (or stdin for `-`) through a new streamer, showing partials on stderr; return the final result."""
    import time

    from ds2_keras.deploy.streaming import array_chunks, pcm_chunks

    chunk = sample_rate * chunk_ms // 1000
    live = sys.stderr.isatty()
    chunks = pcm_chunks(sys.stdin.buffer, chunk) if str(path) == "-" else array_chunks(
        load_audio(path, sample_rate), chunk)
    shown, started = "", time.monotonic()
    for index, samples in enumerate(chunks):
        if realtime and str(path) != "-":
            time.sleep(max(0.0, started + index * chunk_ms / 1000 - time.monotonic()))
        partial = streamer.feed(samples).text
        if partial != shown:
            click.echo(f"\r\x1b[K{partial}" if live else f"{path}\tpartial\t{partial}", err=True, nl=not live)
            shown = partial
    if live:
        click.echo("\r\x1b[K", err=True, nl=False)
    return streamer.finish()
