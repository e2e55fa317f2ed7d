"""`ds2 bench`: how fast this machine trains and runs a model, in seconds of audio.

It prints figures and judges nothing: training throughput after warm-up steps (which include
graph tracing), the input pipeline's own rate (is training waiting for data?), inference
real-time factor, peak memory and parameter count; with a profile directory, also a TensorFlow
profiler trace of the timed training steps (TensorBoard's Profile tab reads it), so that where a
step's time goes is a command away. Every figure goes through the code paths `ds2 fit` and
`ds2 evaluate` use (data.training_dataset, Keras fit under distribute.choose_strategy,
inference.run_inference), so it predicts what those commands do.
TensorFlow is imported on first use so that `ds2 --help` stays fast.
"""
from __future__ import annotations

import resource
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ds2_keras.core.config import DS2Config

if TYPE_CHECKING:
    from ds2_keras.data.dataset import Utterances


@dataclass
class Figures:
    """What one bench run measured; `report` is what `ds2 bench` prints."""

    description: str
    parameters: int
    training_rate: float  # seconds of audio per wall second
    pipeline_rate: float
    inference_rtf: float  # wall seconds per second of audio
    inference_seconds: float  # of audio
    peak_rss_mib: float
    peak_device_mib: float | None  # GPU memory, when there is a GPU
    profile: Path | None = None  # the trace's run directory, when one was asked for

    def report(self) -> str:
        lines = [
            self.description,
            f"parameters: {self.parameters:,}",
            f"training: {self.training_rate:.2f} s of audio per second",
            f"input pipeline alone: {self.pipeline_rate:.2f} s of audio per second",
            f"inference: real-time factor {self.inference_rtf:.4f} ({self.inference_seconds:.1f} s of audio)",
            f"peak memory: {self.peak_rss_mib:.0f} MiB (process max RSS)",
        ]
        if self.peak_device_mib is not None:
            lines.append(f"peak GPU memory: {self.peak_device_mib:.0f} MiB")
        if self.profile is not None:
            lines.append(f"profile of the timed steps: {self.profile} (the training figure includes the "
                         f"profiler's overhead; tensorboard --logdir {self.profile.parents[2]}, Profile tab)")
        return "\n".join(lines)


def _step_clock():
    """A Keras callback whose `ends` lists when each training step had really finished."""
    import keras

    class StepClock(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.ends: list[float] = []

        def on_train_batch_end(self, batch, logs=None):
            float(logs["loss"])  # accelerators run asynchronously: wait for this step's result
            self.ends.append(time.perf_counter())

    return StepClock()


def _profiler(log_dir: Path, warmup: int):
    """A Keras callback that traces the steps after the first `warmup` into `log_dir` with
    TensorFlow's profiler; placed before the step clock, its start-up is not timed."""
    import keras
    import tensorflow as tf

    from ds2_keras.core.fileio import reporting_tensorflow_errors

    class Profiler(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if batch == warmup - 1:
                float(logs["loss"])  # the trace starts when the last warm-up step has really finished
                with reporting_tensorflow_errors(log_dir):
                    tf.profiler.experimental.start(str(log_dir))

        def on_train_end(self, logs=None):
            with reporting_tensorflow_errors(log_dir):
                tf.profiler.experimental.stop()

    return Profiler()


def _newest_profile(log_dir: Path) -> Path:
    """The run directory the profiler just wrote: LOG_DIR/plugins/profile/<timestamp>."""
    return max((log_dir / "plugins" / "profile").iterdir(), key=lambda run: run.stat().st_mtime)


def _batch_seconds(utterances: Utterances, config: DS2Config, batch_size: int, epochs: range) -> np.ndarray:
    """Seconds of audio in each batch training_dataset yields for these epochs (same plans)."""
    from ds2_keras.data.dataset import plan_epoch

    plans = [plan_epoch(utterances.durations, batch_size, epoch, config) for epoch in epochs]
    return utterances.durations[np.concatenate(plans)].sum(axis=1)


def _epochs_to_time(per_epoch: int, total: int, first_epoch: int) -> range:
    """The epochs whose batches the first `total` steps from `first_epoch` on take."""
    return range(first_epoch, first_epoch - (-total // per_epoch))


def _timed_batches(utterances: Utterances, config: DS2Config, batch_size: int, total: int,
                   first_epoch: int) -> tuple[range, np.ndarray]:
    """The epochs to draw `total` batches from, as `ds2 fit` plans them from `first_epoch` on, and
    the seconds of audio in each of those batches."""
    from ds2_keras.data.dataset import batches_per_epoch

    epochs = _epochs_to_time(batches_per_epoch(utterances, batch_size), total, first_epoch)
    return epochs, _batch_seconds(utterances, config, batch_size, epochs)[:total]


def _time_training(model, utterances: Utterances, config: DS2Config, batch_size: int, epochs: range,
                   seconds: np.ndarray, warmup: int, profile_dir: Path | None = None) -> float:
    """Seconds of audio per second over the batches after the first `warmup` of `seconds` (those
    `_timed_batches` planned), as Keras fit steps; with `profile_dir`, those steps are traced there."""
    from ds2_keras.data.dataset import training_dataset

    total = len(seconds)
    clock = _step_clock()
    callbacks = [clock] if profile_dir is None else [_profiler(profile_dir, warmup), clock]
    model.fit(training_dataset(utterances, config, batch_size, epochs).take(total), epochs=1, steps_per_epoch=total,
              callbacks=callbacks, verbose=0, shuffle=False)
    return float(seconds[warmup:].sum()) / (clock.ends[-1] - clock.ends[warmup - 1])


def _bench_data(config: DS2Config, manifests: list[Path], fresh: bool) -> tuple[DS2Config, Utterances]:
    """The config to time (a fresh model speaks the manifests' alphabet, as `ds2 fit` would build
    it) and the utterances it can train on."""
    from ds2_keras.data.manifest import read_manifests
    from ds2_keras.train.fit import choose_alphabet, configure_precision, load_split

    rows = read_manifests(manifests)
    if fresh:
        language, alphabet = choose_alphabet(rows, None)
        config = config.replace(language=language, alphabet=alphabet.characters)
    configure_precision(config)
    return config, load_split(rows, manifests, config, "bench")


def training_rate(config: DS2Config, manifests: list[Path], batch_size: int, steps: int, warmup: int,
                  first_epoch: int = 0) -> float:
    """`ds2 bench`'s training figure alone (seconds of audio per second) for a fresh model: for
    scripts that compare builds or toolkits and need neither the pipeline nor inference figures."""
    from ds2_keras.data.dataset import batches_per_epoch
    from ds2_keras.core.distribute import choose_strategy
    from ds2_keras.train.fit import build_model_for_training

    strategy = choose_strategy()
    config, utterances = _bench_data(config, manifests, fresh=True)
    with strategy.scope():
        model = build_model_for_training(config, batches_per_epoch(utterances, batch_size))
    epochs, seconds = _timed_batches(utterances, config, batch_size, warmup + steps, first_epoch)
    return _time_training(model, utterances, config, batch_size, epochs, seconds, warmup)


def run_bench(config: DS2Config, manifests: list[Path], batch_size: int, steps: int, warmup: int,
              model_file: Path | None = None, first_epoch: int = 0, profile_dir: Path | None = None) -> Figures:
    """Time the pipeline alone and `warmup + steps` training batches (the last `steps` count), then inference.

    The batches are those `ds2 fit` trains on from `first_epoch` on: epoch 0 is shortest-first
    (sortagrad), so its first batches are the shortest; a later epoch's shuffled buckets time
    what most of a run spends its steps on. With `profile_dir`, the timed steps are also traced
    there by TensorFlow's profiler (the directory is checked first, before any work).
    """
    import tensorflow as tf

    from ds2_keras.model.checkpoints import load_model_file
    from ds2_keras.data.dataset import Utterances, batches_per_epoch, training_dataset
    from ds2_keras.core.distribute import choose_strategy
    from ds2_keras.core.errors import DS2Error
    from ds2_keras.core.fileio import check_writable, make_directory
    from ds2_keras.model.batch_inference import run_inference
    from ds2_keras.train.fit import build_model_for_training

    if profile_dir is not None:
        check_writable(make_directory(profile_dir) / ".ds2-bench-check")
    strategy = choose_strategy()
    if batch_size % strategy.num_replicas_in_sync:
        raise DS2Error(f"batch size {batch_size} must be a multiple of the {strategy.num_replicas_in_sync} replicas")
    with strategy.scope():
        loaded = load_model_file(model_file) if model_file is not None else None
    config, utterances = _bench_data(loaded.ds2_config if loaded is not None else config, manifests,
                                     fresh=loaded is None)
    per_epoch = batches_per_epoch(utterances, batch_size)
    total = warmup + steps
    epochs, seconds = _timed_batches(utterances, config, batch_size, total, first_epoch)

    # All batches, from the start: after a warm-up the prefetch buffer would already hold the timed ones.
    started = time.perf_counter()
    for _ in training_dataset(utterances, config, batch_size, epochs).take(total):
        pass
    pipeline_rate = float(seconds.sum()) / (time.perf_counter() - started)

    with strategy.scope():
        model = loaded if loaded is not None else build_model_for_training(config, per_epoch)
    training_rate = _time_training(model, utterances, config, batch_size, epochs, seconds, warmup, profile_dir)

    count = min(len(utterances), steps * batch_size)
    subset = Utterances(rows=utterances.rows.iloc[:count].reset_index(drop=True), labels=utterances.labels[:count])
    started = time.perf_counter()
    run_inference(model, subset, batch_size, progress=False)
    inference_seconds = float(subset.durations.sum())
    inference_rtf = (time.perf_counter() - started) / inference_seconds

    gpus = tf.config.list_logical_devices("GPU")
    peak_device = max(tf.config.experimental.get_memory_info(gpu.name)["peak"] for gpu in gpus) / 2**20 if gpus else None
    rss_unit = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, KiB on Linux
    description = (f"preset {config.preset}, {strategy.num_replicas_in_sync} replica(s) on "
                   f"{'GPU' if gpus else 'CPU'}, batch {batch_size}, {warmup} warm-up + {steps} timed steps"
                   f" from epoch {first_epoch + 1}")
    return Figures(
        description=description, parameters=model.count_params(), training_rate=training_rate,
        pipeline_rate=pipeline_rate, inference_rtf=inference_rtf, inference_seconds=inference_seconds,
        peak_rss_mib=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * rss_unit / 2**20,
        peak_device_mib=peak_device, profile=_newest_profile(profile_dir) if profile_dir is not None else None,
    )
