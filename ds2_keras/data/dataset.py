"""The tf.data input pipeline: manifests -> padded batches of (waveforms, labels).

Batches are planned in Python, one epoch at a time, from a seed and the epoch number
(SortaGrad: the first epoch shortest-first, later epochs shuffled buckets of similar length).
Because a plan is a pure function of (seed, epoch), a resumed fit replays exactly the batches
it had not yet seen. The host only decodes and pads audio (parallel map calls); features and
augmentation are layers of the model.

The graph holds no corpus-sized constant: the dataset is a range of positions in the run, and
each element's utterance, audio and label are looked up in Python by its position, so start-up
time and memory grow linearly with the corpus. Under several input pipelines (one per worker)
each pipeline reads only its own slice of every planned batch.
"""
from __future__ import annotations

import os
import sys
import threading
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import pandas as pd
import tensorflow as tf

from ds2_keras.core.alphabet import Alphabet
from ds2_keras.data.audio import AudioError, audio_info, load_audio
from ds2_keras.core.config import DS2Config
from ds2_keras.core.errors import DS2Error
from ds2_keras.core.frames import output_frames
from ds2_keras.data import augment


@dataclass
class Utterances:
    """The usable rows of one or more manifests, with labels encoded once."""

    rows: pd.DataFrame
    labels: list[np.ndarray]
    dropped: dict[str, int] = field(default_factory=dict)
    notes: dict[str, int] = field(default_factory=dict)  # kept, but worth a word (see evaluation_utterances)

    @property
    def durations(self) -> np.ndarray:
        return self.rows["duration"].to_numpy(dtype=np.float64)

    def __len__(self) -> int:
        return len(self.rows)

    def report(self, name: str) -> str:
        hours = self.durations.sum() / 3600
        line = f"{name}: {len(self)} utterances, {hours:.2f} h"
        if self.dropped:
            line += "; dropped " + ", ".join(f"{count} {cause}" for cause, count in self.dropped.items())
        if self.notes:
            line += "; " + ", ".join(f"{count} {note}" for note, count in self.notes.items())
        return line


def ctc_frames_needed(label: np.ndarray) -> int:
    """CTC needs one frame per label plus a blank between each pair of repeated characters."""
    return len(label) + int(np.sum(label[1:] == label[:-1]))


def select_utterances(rows: pd.DataFrame, config: DS2Config) -> Utterances:
    """Drop (and count) what cannot train: longer than config.max_duration, too short for its
    transcript, or holding characters outside the model's alphabet."""
    max_duration = config.max_duration
    alphabet = config.output_alphabet
    spellable = np.array([not alphabet.outside(text) for text in rows["text"]], dtype=bool)
    labels = [alphabet.encode(text) if ok else np.zeros(0, np.int32) for text, ok in zip(rows["text"], spellable)]
    frames = output_frames(np.floor(rows["duration"].to_numpy(dtype=np.float64) * config.sample_rate).astype(np.int64),
                           config)
    needed = np.array([ctc_frames_needed(label) for label in labels])
    too_long = rows["duration"].to_numpy() > max_duration
    empty = np.array([len(label) == 0 for label in labels], dtype=bool) & spellable  # bool: also with no rows
    too_short = ~too_long & ~empty & spellable & (frames < needed)
    keep = ~(too_long | empty | too_short) & spellable
    dropped = {
        f"longer than {max_duration:g} s": int(too_long.sum()),
        "with empty transcripts": int(empty.sum()),
        "with characters outside the alphabet": int((~spellable & ~too_long).sum()),
        "too short for their transcripts": int(too_short.sum()),
    }
    return Utterances(
        rows=rows[keep].reset_index(drop=True),
        labels=[label for label, k in zip(labels, keep) if k],
        dropped={cause: count for cause, count in dropped.items() if count},
    )


def evaluation_utterances(rows: pd.DataFrame, alphabet: Alphabet) -> Utterances:
    """Every row that has a reference to score: an evaluation must score long and hard utterances too.

    A reference holding characters the model cannot output is still scored (they count as
    errors); its label for the loss leaves them out, and `unspellable` counts such rows. A row
    whose label is empty (no text, punctuation only, or only such characters) has nothing to
    score and no CTC loss: it is dropped and counted.
    """
    rows = rows.reset_index(drop=True)
    outside = [alphabet.outside(text) for text in rows["text"]]
    labels = [alphabet.encode("".join(ch for ch in text if ch not in missing) if missing else text)
              for text, missing in zip(rows["text"], outside)]
    keep = np.array([len(label) > 0 for label in labels], dtype=bool)
    unspellable = sum(bool(missing) for missing, kept in zip(outside, keep) if kept)
    shown = ", ".join(map(repr, sorted(set().union(*outside))))
    notes = {f"holding characters the model cannot output ({shown}), scored as errors": unspellable} if unspellable else {}
    empty = int((~keep).sum())
    return Utterances(rows=rows[keep].reset_index(drop=True), labels=[label for label, k in zip(labels, keep) if k],
                      dropped={"with no reference text to score (empty or punctuation only)": empty} if empty else {},
                      notes=notes)


def scorable_utterances(utterances: Utterances) -> Utterances:
    """The rows a score can use, the others dropped and counted: evaluation_utterances already
    dropped references with nothing to score; audio whose header does not read has nothing to
    decode (only the header is read, which takes milliseconds a file)."""
    keep = np.array([_header_reads(path) for path in utterances.rows["audio_path"]], dtype=bool)
    unreadable = int((~keep).sum())
    return Utterances(
        rows=utterances.rows[keep].reset_index(drop=True),
        labels=[label for label, k in zip(utterances.labels, keep) if k],
        dropped={**utterances.dropped, **({"with unreadable audio": unreadable} if unreadable else {})},
        notes=utterances.notes,
    )


def _header_reads(path: str) -> bool:
    try:
        audio_info(path)
    except AudioError:
        return False
    return True


def plan_epoch(durations: np.ndarray, batch_size: int, epoch: int, config: DS2Config) -> np.ndarray:
    """[batches, batch_size] utterance indices for one epoch; every batch full, every row used.

    The last batch is topped up with random earlier rows so shapes stay fixed (needed for
    distribution across replicas) without dropping any utterance.
    """
    rng = np.random.default_rng([config.seed, epoch])
    shortest_first = config.sortagrad and epoch == 0
    if shortest_first:
        order = np.argsort(durations, kind="stable")
    else:
        # Shuffled buckets: sort by jittered length, cut into batches, shuffle the batch order.
        jitter = rng.uniform(0.9, 1.1, size=len(durations))
        order = np.argsort(durations * jitter, kind="stable")
    shortfall = -len(order) % batch_size
    if shortfall:
        order = np.concatenate([order, rng.choice(order, size=shortfall, replace=len(order) < shortfall)])
    batches = order.reshape(-1, batch_size)
    if not shortest_first:
        batches = batches[rng.permutation(len(batches))]
    return batches


class AudioLoader:
    """Decodes manifest audio for tf.data map calls: (waveform, label) for a position in the run.

    `utterance_at` maps a position to the utterance's row, so the plan stays in Python. With
    `cache`, decoded audio is kept as int16 (2 bytes a sample; the first read is quantized too,
    so cached and uncached epochs see the same samples and a resume stays exact).

    A file that fails to decode yields one window of silence instead of stopping the run: its
    transcript cannot fit one frame, so training counts it as a non-finite loss, and evaluation
    skips it (by `failures`, which names the file and the cause, printed once). Audio shorter
    than one window is padded to one window, so no utterance ever has zero frames (cuDNN RNNs
    reject a batch that holds one).
    """

    def __init__(self, utterances: Utterances, config: DS2Config, utterance_at: Callable[[int], int],
                 cache: bool = False, perturb_speed: bool = False):
        self.paths = utterances.rows["audio_path"].tolist()
        self.labels = utterances.labels
        self.config = config
        self.utterance_at = utterance_at
        self.perturb_speed = perturb_speed
        self.cache: dict[int, np.ndarray] | None = {} if cache else None
        self.failures: dict[str, str] = {}
        self._lock = threading.Lock()

    def __call__(self, position: np.ndarray, seed: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        index = self.utterance_at(int(position))
        samples = self._samples(index)
        if self.perturb_speed:
            samples = augment.speed_perturb(samples, np.random.default_rng(seed.tolist()))
        samples = np.pad(samples, (0, max(self.config.window_samples - samples.size, 0)))
        return samples, self.labels[index], np.int64(index)

    def _samples(self, index: int) -> np.ndarray:
        if self.cache is None:
            return self._decode(self.paths[index])
        stored = self.cache.get(index)
        if stored is None:
            stored = to_int16(self._decode(self.paths[index]))
            with self._lock:
                self.cache[index] = stored
        return stored.astype(np.float32) / _INT16_SCALE

    def _decode(self, path: str) -> np.ndarray:
        try:
            return load_audio(path, self.config.sample_rate)
        except AudioError as error:
            with self._lock:
                if path not in self.failures:
                    self.failures[path] = error.cause
                    print(f"\nskipping unreadable audio {error}", file=sys.stderr)
            return np.zeros(self.config.window_samples, np.float32)


_INT16_SCALE = 32768.0  # 16-bit PCM decoded by libsndfile is k / 32768: stored back exactly


def to_int16(samples: np.ndarray) -> np.ndarray:
    return np.clip(np.round(samples * _INT16_SCALE), -32768, 32767).astype(np.int16)


def check_cache_fits(utterances: Utterances, config: DS2Config, available_bytes: int | None = None) -> None:
    """Refuse --cache, naming the size, when the corpus as int16 would not fit in memory."""
    needed = float(utterances.durations.sum()) * config.sample_rate * 2
    available = available_memory() if available_bytes is None else available_bytes
    if available is not None and needed > 0.8 * available:
        raise DS2Error(f"--cache needs {needed / 1e9:.1f} GB to hold {utterances.durations.sum() / 3600:.1f} h of "
                       f"audio as int16, but only {available / 1e9:.1f} GB of memory is available; drop --cache")


def available_memory() -> int | None:
    """Bytes the OS could give us now (MemAvailable on Linux, free pages elsewhere), or None."""
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


@dataclass(frozen=True)
class Shard:
    """What one input pipeline reads: slice `index` of `count` of every global batch, in
    batches of `replica_batch` rows (one per local replica; None: the whole slice at once)."""

    index: int = 0
    count: int = 1
    replica_batch: int | None = None

    @classmethod
    def of(cls, context: tf.distribute.InputContext, batch_size: int) -> "Shard":
        return cls(context.input_pipeline_id, context.num_input_pipelines, context.get_per_replica_batch_size(batch_size))


def _pipeline(positions: tf.data.Dataset, loader: AudioLoader, config: DS2Config, batch_size: int,
              drop_remainder: bool) -> tf.data.Dataset:
    """Batches of (inputs, targets, utterance indices) for a dataset of run positions."""

    def load(position):
        seed = tf.stack([tf.constant(config.seed, tf.int64), position])
        samples, label, index = tf.numpy_function(loader, [position, seed], [tf.float32, tf.int32, tf.int64],
                                                  stateful=False)
        samples.set_shape([None])
        label.set_shape([None])
        index.set_shape([])
        return samples, tf.shape(samples)[0], label, tf.shape(label)[0], index, position

    def arrange(samples, sample_lengths, label, label_lengths, indices, positions):
        inputs = {"waveforms": samples, "lengths": sample_lengths, "augment_seed": positions}
        return inputs, {"labels": label, "label_lengths": label_lengths}, indices

    dataset = positions.map(load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    dataset = dataset.padded_batch(batch_size, drop_remainder=drop_remainder)
    return dataset.map(arrange)


class RunPlan:
    """Utterance of each position in a run: epoch e's plan (plan_epoch), made on first use."""

    def __init__(self, durations: np.ndarray, batch_size: int, config: DS2Config):
        self.durations, self.batch_size, self.config = durations, batch_size, config
        self.per_epoch = -(-len(durations) // batch_size) * batch_size
        self._epoch, self._order = -1, np.empty(0, np.int64)
        self._lock = threading.Lock()

    def __call__(self, position: int) -> int:
        epoch, offset = divmod(position, self.per_epoch)
        with self._lock:
            if epoch != self._epoch:
                self._order = plan_epoch(self.durations, self.batch_size, epoch, self.config).reshape(-1)
                self._epoch = epoch
            return int(self._order[offset])


def training_dataset(
    utterances: Utterances, config: DS2Config, batch_size: int, epochs: range, skip_batches: int = 0,
    cache: bool = False, shard: Shard = Shard(),
) -> tf.data.Dataset:
    """(inputs, targets) batches for `epochs`, starting `skip_batches` into the first of them.

    `batch_size` is the global batch of the plan; a shard (one of several input pipelines)
    decodes only its slice of each global batch (see Shard).
    """
    plan = RunPlan(utterances.durations, batch_size, config)
    # Each example's position in the whole run seeds its augmentation: resumes replay it exactly.
    first = epochs[0] * plan.per_epoch + skip_batches * batch_size
    positions = tf.data.Dataset.range(first, epochs[-1] * plan.per_epoch + plan.per_epoch)
    rows = batch_size // shard.count
    if shard.count > 1:
        positions = positions.filter(lambda p: (p % batch_size) // rows == shard.index)
    loader = AudioLoader(utterances, config, plan, cache=cache, perturb_speed=config.speed_perturb)
    dataset = _pipeline(positions, loader, config, shard.replica_batch or rows, drop_remainder=True)
    return dataset.map(lambda inputs, targets, _: (inputs, targets)).prefetch(tf.data.AUTOTUNE)


def evaluation_dataset(utterances: Utterances, config: DS2Config, batch_size: int) -> tuple[tf.data.Dataset, AudioLoader]:
    """Every utterance once, shortest first (little padding), no augmentation, with indices."""
    order = np.argsort(utterances.durations, kind="stable")
    loader = AudioLoader(utterances, config, lambda position: int(order[position]))
    dataset = _pipeline(tf.data.Dataset.range(len(order)), loader, config, batch_size, drop_remainder=False)
    return dataset.prefetch(tf.data.AUTOTUNE), loader


def batches_per_epoch(utterances: Utterances, batch_size: int) -> int:
    return -(-len(utterances) // batch_size)
