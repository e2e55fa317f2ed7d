"""`ds2 transcribe`'s work: audio files in, transcripts with timed words out (greedy or beam search).

It runs recognizer.recognizer's graph, the one `ds2 export` saves for TF Serving, so a
transcript from this command and one from a served model come from the same ops. What stays in
Python is file handling: decoding any format at any rate (audio.load_audio), cutting long
recordings at pauses so the network never sees more than `max_seconds` at a time (word times
are moved back to the whole recording's clock) and batching chunks of several files into one
call. The command line (formats, output files, progress) is cli_transcribe. TensorFlow is
imported on first use so that `ds2 --help` stays fast.
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator, Sequence

import numpy as np

from ds2_keras.data.audio import AudioError, load_audio
from ds2_keras.decode.decoders import Decoder, GreedyDecoder
from ds2_keras.core.frames import output_frame_seconds
from ds2_keras.deploy.litert_runtime import LiteRTModel
from ds2_keras.decode.words import Hypothesis, hypotheses

if TYPE_CHECKING:
    import tensorflow as tf

MAX_SECONDS = 20.0  # longest piece the network sees; longer audio is cut at pauses
SEARCH_SECONDS = 5.0  # each cut is placed at the quietest point of the window's last seconds
_PAUSE_SECONDS = 0.1  # energy is smoothed over this span so a cut prefers pauses to stop consonants
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
    spaces and their scores added. Pieces with N-best lists give the N best distinct joins.
    """
    shifted = [h.shifted(offset) for h, offset in zip(hypotheses, offsets)]
    if len(shifted) == 1:
        return shifted[0]
    if not any(h.nbest for h in shifted):
        return _joined(shifted)
    count = max(len(h.nbest) for h in shifted)
    nbest = [Hypothesis("", (), 0.0)]
    for piece in shifted:  # the `count` best joins so far, each extended by each of this piece's alternatives
        nbest = _best_distinct([_joined([so_far, option]) for so_far in nbest for option in piece.nbest or (piece,)],
                               count)
    return replace(nbest[0], nbest=tuple(nbest))


def _joined(pieces: Sequence[Hypothesis]) -> Hypothesis:
    """Texts joined with single spaces, words in order, scores added."""
    return Hypothesis(" ".join(h.text.strip() for h in pieces if h.text.strip()),
                      tuple(word for h in pieces for word in h.words), sum(h.score for h in pieces))


def _best_distinct(candidates: Sequence[Hypothesis], count: int) -> list[Hypothesis]:
    """The `count` best-scoring candidates with distinct texts, best first."""
    chosen: dict[str, Hypothesis] = {}
    for candidate in sorted(candidates, key=lambda h: -h.score):
        chosen.setdefault(candidate.text, candidate)
    return list(chosen.values())[:count]


def recognize_batches(module: tf.Module | LiteRTModel, waveforms: Sequence[np.ndarray], batch_size: int,
                      progress: Progress | None = None, decoder: Decoder | None = None) -> list[Hypothesis]:
    """Hypotheses of whole waveforms, similar lengths batched together; order kept.

    Without a decoder (or with a GreedyDecoder) they are the graph's own greedy ones; another
    decoder (beam search) decodes the logits the graph returns. `progress` is called after each
    batch with the seconds of audio it held.
    """
    beam = decoder if decoder is not None and not isinstance(decoder, GreedyDecoder) else None
    results: list[Hypothesis | None] = [None] * len(waveforms)
    sample_rate = _sample_rate(module)
    order = np.argsort([len(w) for w in waveforms], kind="stable")
    for first in range(0, len(order), batch_size):
        rows = order[first:first + batch_size]
        lengths = np.array([len(waveforms[i]) for i in rows], dtype=np.int32)
        batch = np.zeros((len(rows), max(lengths.max(), 1)), dtype=np.float32)
        for row, index in enumerate(rows):
            batch[row, : lengths[row]] = waveforms[index]
        for index, hypothesis in zip(rows, _batch_hypotheses(module, batch, lengths, beam)):
            results[index] = hypothesis
        if progress is not None:
            progress(lengths.sum() / sample_rate)
    return results


def _sample_rate(module: tf.Module | LiteRTModel) -> int:
    return module.sample_rate if isinstance(module, LiteRTModel) else module.model.ds2_config.sample_rate


def _batch_hypotheses(module: tf.Module | LiteRTModel, batch: np.ndarray, lengths: np.ndarray,
                      beam: Decoder | None) -> list[Hypothesis]:
    """A recognizer module's hypotheses of a zero-padded batch, or a LiteRT model's (one row at a time):
    the greedy ones, or `beam`'s decoding of the same logits."""
    if isinstance(module, LiteRTModel):
        return [module.transcribe(row[:length], beam) for row, length in zip(batch, lengths)]
    outputs = module.recognize(batch, lengths)
    if beam is None:
        return hypotheses(outputs)
    return beam.decode(outputs["logits"].numpy(), outputs["logit_lengths"].numpy(),
                       frame_seconds=output_frame_seconds(module.model.ds2_config))


def transcribe(module: tf.Module | LiteRTModel, waveforms: Sequence[np.ndarray], batch_size: int = 16,
               max_seconds: float = MAX_SECONDS, progress: Progress | None = None,
               decoder: Decoder | None = None) -> list[Hypothesis]:
    """Hypotheses of mono float32 waveforms at the model's rate (`recognizer(model)`, or a LiteRTModel),
    greedy unless `decoder` is another one (see recognize_batches).

    Waveforms longer than `max_seconds` are cut at pauses, their pieces transcribed in batches
    with the rest and joined (word times count from the start of the whole waveform), so the
    network never holds more than batch_size pieces of max_seconds (the waveforms themselves
    take 64 kB per second at 16 kHz).
    """
    sample_rate = _sample_rate(module)
    pieces = [split_at_pauses(np.asarray(w, np.float32), sample_rate, max_seconds) for w in waveforms]
    results = iter(recognize_batches(module, [piece for split in pieces for piece in split], batch_size, progress,
                                     decoder))
    return [join_pieces([next(results) for _ in split], _starts(split, sample_rate)) for split in pieces]


def _starts(pieces: Sequence[np.ndarray], sample_rate: int) -> list[float]:
    """Where each consecutive piece starts in the audio they were cut from, in seconds."""
    return [int(start) / sample_rate for start in np.cumsum([0] + [len(p) for p in pieces[:-1]])]


def transcribe_files(module: tf.Module, paths: Sequence[Path], batch_size: int = 16, max_seconds: float = MAX_SECONDS,
                     progress: Progress | None = None, decoder: Decoder | None = None
                     ) -> Iterator[tuple[Path, Hypothesis | AudioError]]:
    """(path, hypothesis) per file, in order, or (path, AudioError) for a file that cannot be read.

    Files are decoded a group at a time (about `batch_size` pieces), so many files never sit in
    memory together and an unreadable file does not stop the others.
    """
    sample_rate = _sample_rate(module)
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
            results = iter(transcribe(module, readable, batch_size, max_seconds, progress, decoder))
            yield from ((p, s if isinstance(s, AudioError) else next(results)) for p, s in group)
            group, pending_seconds = [], 0.0
