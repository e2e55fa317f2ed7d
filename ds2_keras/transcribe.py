"""`ds2 transcribe`: audio files in, greedy transcripts out.

The recognizer graph (waveforms -> features.log_spectrogram -> DS2Model ->
decoding.greedy_decode_tf) is built here once, and `ds2 export` saves that same graph for TF
Serving, so a transcript from this command and one from a served model come from the same ops.
What stays in Python is file handling: decoding any format at any rate (audio.load_audio),
cutting long recordings at pauses so the network never sees more than `max_seconds` at a
time, and batching chunks of several files into one call. TensorFlow is imported on first use
so that `ds2 --help` stays fast.

The graph is traced with the recurrent layers' generic kernels, never cuDNN's, on any device:
cuDNN kernels have no CPU implementation (an export from a GPU machine would not load on a
CPU-only server) and Keras' cuDNN path rejects a batch holding an utterance with no frames
(audio shorter than one analysis window), which transcription must accept.
"""
from __future__ import annotations

import contextlib
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


def recognizer(model: DS2Model) -> tf.Module:
    """A tf.Module whose `recognize(waveforms, lengths)` runs the whole pipeline in one graph.

    waveforms: float32 [batch, samples] at the model's sample rate, zero-padded; lengths: int32
    [batch] valid samples. Returns {"transcripts": string [batch], "logits": [batch, frames, 29],
    "logit_lengths": int32 [batch]}. The module tracks the model, so it can be saved as is.
    """
    import tensorflow as tf

    from .decoding import greedy_decode_tf
    from .features import log_spectrogram
    from .serving_inputs import check_serving_inputs

    config = model.ds2_config

    def recognize(waveforms: tf.Tensor, lengths: tf.Tensor) -> dict[str, tf.Tensor]:
        waveforms, lengths = check_serving_inputs(waveforms, lengths)
        features, frame_lengths = log_spectrogram(waveforms, lengths, config)
        logits, logit_lengths = model([features, frame_lengths], training=False)
        return {"transcripts": greedy_decode_tf(logits, logit_lengths), "logits": logits,
                "logit_lengths": logit_lengths}

    module = tf.Module(name="ds2_recognizer")
    module.model = model
    module.recognize = tf.function(recognize, input_signature=[
        tf.TensorSpec([None, None], tf.float32, name="waveforms"),
        tf.TensorSpec([None], tf.int32, name="lengths"),
    ])
    with generic_rnn_kernels(model):
        module.recognize.get_concrete_function()  # traced now, reused by every call from Python
    return module


@contextlib.contextmanager
def generic_rnn_kernels(model: DS2Model) -> Iterator[None]:
    """Within the block, Keras traces the model's GRU/LSTM layers without cuDNN; restored after."""
    import keras

    rnns = []
    for layer in model.layers:
        if isinstance(layer, keras.layers.Bidirectional):
            rnns += [layer.forward_layer, layer.backward_layer]
        elif isinstance(layer, (keras.layers.GRU, keras.layers.LSTM)):
            rnns.append(layer)
    saved = [layer.use_cudnn for layer in rnns]
    for layer in rnns:
        layer.use_cudnn = False
    try:
        yield
    finally:
        for layer, value in zip(rnns, saved):
            layer.use_cudnn = value


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
def transcribe_command(model_file: Path, audio: tuple[Path, ...], batch_size: int, max_seconds: float) -> None:
    """Print `AUDIO<TAB>transcript` for each audio file (WAV, FLAC, MP3, ...; any rate, stereo mixed down).

    Greedy decoding, exactly as the exported SavedModel does it. An unreadable file is reported
    on stderr and the others are still transcribed; the exit status is then 1.
    """
    from .checkpoints import ModelFileError, load_model_file

    try:
        module = recognizer(load_model_file(model_file, compile=False))
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
