"""The tf.data input pipeline: manifests -> padded batches of (features, labels).

Batches are planned in Python, one epoch at a time, from a seed and the epoch number
(SortaGrad: the first epoch shortest-first, later epochs shuffled buckets of similar length).
Because a plan is a pure function of (seed, epoch), a resumed fit replays exactly the batches
it had not yet seen. Audio decoding runs in parallel map calls; features, augmentation and
padding happen inside the graph.
"""
from __future__ import annotations

import sys
import threading
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import tensorflow as tf

from .alphabet import encode
from .audio import AudioError, load_audio
from .config import DS2Config
from .features import log_spectrogram
from . import augment


@dataclass
class Utterances:
    """The usable rows of one or more manifests, with labels encoded once."""

    rows: pd.DataFrame
    labels: list[np.ndarray]
    dropped: dict[str, int] = field(default_factory=dict)

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
        return line


def output_frames(durations: np.ndarray, config: DS2Config) -> np.ndarray:
    """Logit frames the model emits for audio of these durations (before CTC)."""
    samples = np.floor(durations * config.sample_rate)
    frames = np.maximum((samples - config.window_samples) // config.hop_samples + 1, 0)
    return np.ceil(frames / config.time_stride)


def ctc_frames_needed(label: np.ndarray) -> int:
    """CTC needs one frame per label plus a blank between each pair of repeated characters."""
    return len(label) + int(np.sum(label[1:] == label[:-1]))


def select_utterances(rows: pd.DataFrame, config: DS2Config) -> Utterances:
    """Drop (and count) what cannot train: longer than config.max_duration, or too short for its transcript."""
    max_duration = config.max_duration
    labels = [encode(text) for text in rows["text"]]
    frames = output_frames(rows["duration"].to_numpy(dtype=np.float64), config)
    needed = np.array([ctc_frames_needed(label) for label in labels])
    too_long = rows["duration"].to_numpy() > max_duration
    empty = np.array([len(label) == 0 for label in labels])
    too_short = ~too_long & ~empty & (frames < needed)
    keep = ~(too_long | empty | too_short)
    dropped = {
        f"longer than {max_duration:g} s": int(too_long.sum()),
        "with empty transcripts": int(empty.sum()),
        "too short for their transcripts": int(too_short.sum()),
    }
    return Utterances(
        rows=rows[keep].reset_index(drop=True),
        labels=[label for label, k in zip(labels, keep) if k],
        dropped={cause: count for cause, count in dropped.items() if count},
    )


def evaluation_utterances(rows: pd.DataFrame) -> Utterances:
    """Every row, none dropped: an evaluation must score long and hard utterances too."""
    return Utterances(rows=rows.reset_index(drop=True), labels=[encode(text) for text in rows["text"]])


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
    """Decodes manifest audio for tf.data map calls, with an optional in-memory cache.

    A file that fails to decode yields one window of silence instead of stopping the run: its
    transcript cannot fit one frame, so training counts it as a non-finite loss, and evaluation
    skips it (by `failures`, which names the file and the cause, printed once). Audio shorter
    than one window is padded to one window, so no utterance ever has zero frames (cuDNN RNNs
    reject a batch that holds one).
    """

    def __init__(self, paths: list[str], config: DS2Config, cache: bool = False, perturb_speed: bool = False):
        self.paths = paths
        self.config = config
        self.perturb_speed = perturb_speed
        self.cache: dict[int, np.ndarray] | None = {} if cache else None
        self.failures: dict[str, str] = {}
        self._lock = threading.Lock()

    def __call__(self, index: np.ndarray, seed: np.ndarray) -> np.ndarray:
        index = int(index)
        samples = self.cache.get(index) if self.cache is not None else None
        if samples is None:
            samples = self._decode(self.paths[index])
            if self.cache is not None:
                with self._lock:
                    self.cache[index] = samples
        if self.perturb_speed:
            samples = augment.speed_perturb(samples, np.random.default_rng(seed.tolist()))
        return np.pad(samples, (0, max(self.config.window_samples - samples.size, 0)))

    def _decode(self, path: str) -> np.ndarray:
        try:
            return load_audio(path, self.config.sample_rate)
        except AudioError as error:
            with self._lock:
                if path not in self.failures:
                    self.failures[path] = error.cause
                    print(f"\nskipping unreadable audio {error}", file=sys.stderr)
            return np.zeros(self.config.window_samples, np.float32)


def _pipeline(
    utterances: Utterances, config: DS2Config, batch_size: int, order: np.ndarray, positions: np.ndarray,
    augmenting: bool, loader: AudioLoader, drop_remainder: bool,
) -> tf.data.Dataset:
    """Batches of (inputs, targets, utterance indices) for the given utterance order."""
    labels = tf.ragged.constant(utterances.labels, dtype=tf.int32, ragged_rank=1)

    def load(index, position):
        seed = tf.stack([tf.constant(config.seed, tf.int64), position])
        samples = tf.numpy_function(loader, [index, seed], tf.float32, stateful=False)
        samples.set_shape([None])
        label = labels[index]
        return samples, tf.shape(samples)[0], label, tf.shape(label)[0], index, position

    def featurize(samples, sample_lengths, label, label_lengths, indices, position):
        if augmenting and config.noise_snr_db > 0:
            samples = augment.add_noise(samples, sample_lengths, config.noise_snr_db, position[0])
        features, feature_lengths = log_spectrogram(samples, sample_lengths, config)
        if augmenting and config.spec_augment:
            features = augment.spec_augment(features, feature_lengths, config, position[0])
        inputs = {"features": features, "feature_lengths": feature_lengths}
        targets = {"labels": label, "label_lengths": label_lengths}
        return inputs, targets, indices

    dataset = tf.data.Dataset.from_tensor_slices((order.astype(np.int64), positions.astype(np.int64)))
    dataset = dataset.map(load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    dataset = dataset.padded_batch(batch_size, drop_remainder=drop_remainder)
    return dataset.map(featurize, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)


def training_dataset(
    utterances: Utterances, config: DS2Config, batch_size: int, epochs: range, skip_batches: int = 0,
    cache: bool = False,
) -> tf.data.Dataset:
    """(inputs, targets) batches for `epochs`, starting `skip_batches` into the first of them."""
    plans = [plan_epoch(utterances.durations, batch_size, epoch, config) for epoch in epochs]
    order = np.concatenate(plans).reshape(-1)
    # Each example's position in the whole run seeds its augmentation: resumes replay it exactly.
    positions = np.arange(len(order), dtype=np.int64) + epochs[0] * len(plans[0]) * batch_size
    order, positions = order[skip_batches * batch_size:], positions[skip_batches * batch_size:]
    augmenting = config.speed_perturb or config.spec_augment or config.noise_snr_db > 0
    loader = AudioLoader(utterances.rows["audio_path"].tolist(), config, cache=cache, perturb_speed=config.speed_perturb)
    dataset = _pipeline(utterances, config, batch_size, order, positions, augmenting, loader, drop_remainder=True)
    return dataset.map(lambda inputs, targets, _: (inputs, targets)).prefetch(tf.data.AUTOTUNE)


def evaluation_dataset(utterances: Utterances, config: DS2Config, batch_size: int) -> tuple[tf.data.Dataset, AudioLoader]:
    """Every utterance once, shortest first (little padding), no augmentation, with indices."""
    order = np.argsort(utterances.durations, kind="stable")
    loader = AudioLoader(utterances.rows["audio_path"].tolist(), config)
    dataset = _pipeline(utterances, config, batch_size, order, np.zeros_like(order), False, loader, drop_remainder=False)
    return dataset.prefetch(tf.data.AUTOTUNE), loader


def batches_per_epoch(utterances: Utterances, batch_size: int) -> int:
    return -(-len(utterances) // batch_size)
