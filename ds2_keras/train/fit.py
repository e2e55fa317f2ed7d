"""`ds2 fit`: build or restore a model, stream the manifests through it, checkpoint, validate.

Resume semantics follow the neon seed ("train to 16 epochs, then to 20"): the model file
carries the epoch and step it reached, its optimizer state and schedule; fitting continues
from there to the new total. A killed run resumes mid-epoch from its last checkpoint.

A new run starts from random weights, or from another model's (`init_from`, finetune.py). Its
first fit chooses the alphabet and language from the training manifests (choose_alphabet).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from ds2_keras.core.alphabet import Alphabet
from ds2_keras.train.averaging import (
    AVERAGED_FILENAME, EpochWeights, forget_epochs, remove_stale_epoch_temporaries, write_average,
)
from ds2_keras.model.checkpoints import BEST_FILENAME, HISTORY_FILENAME, MODEL_FILENAME, Checkpointer, load_model_file
from ds2_keras.core.config import DS2Config
from ds2_keras.data.dataset import (
    Shard, Utterances, batches_per_epoch, check_cache_fits, evaluation_dataset, evaluation_utterances,
    scorable_utterances, select_utterances, training_dataset,
)
from ds2_keras.core.distribute import choose_strategy, describe, is_chief
from ds2_keras.core.errors import DS2Error
from ds2_keras.train.finetune import init_config, transfer_weights
from ds2_keras.core.fileio import check_writable, make_directory, remove_stale_temporaries, reporting_tensorflow_errors
from ds2_keras.core.interruption import FitInterrupted, StopRequests
from ds2_keras.core.locks import exclusive_use
from ds2_keras.data.manifest import read_manifests
from ds2_keras.model.network import DS2Model
from ds2_keras.model.optim import make_optimizer, rate_after
from ds2_keras.train.validation import ValidationCallback, validate

CONFIG_FILENAME = "config.json"
FIT_LOCK = ".fit.lock"  # held by the running fit (see locks.py); records its pid and host


class WallClockBudget(keras.callbacks.Callback):
    """Stops training after the batch that ends past `minutes`; validation and the checkpoint follow.

    After the second epoch (the first one also traces the graphs and fills the cache) it projects
    where the budget ends at that epoch's pace, and says so when that is short of the planned
    epochs: the cosine schedule is sized by -e, so a run whose -e does not fit the machine stops
    at a high learning rate (an epoch of the `small` recipe in docs/benchmarks.md takes 2.7 minutes on one
    2-core machine and nearly 6 on another), and the person learns what -e to give instead.
    """

    def __init__(self, minutes: float, planned_epochs: int, rate_after: Callable[[int], float] | None,
                 clock: Callable[[], float] = time.monotonic):
        """rate_after(n): the run's learning rate after n epochs, as a fraction of its peak; given
        for a new run's cosine schedule (a resume keeps its first fit's), else None."""
        super().__init__()
        self.minutes = minutes
        self.planned_epochs = planned_epochs
        self.rate_after = rate_after
        self.clock = clock
        self.deadline = clock() + 60 * minutes
        self.ran_out = False
        self.whole_epochs = 0  # whole epochs finished in this fit
        self.epoch_started = clock()
        self.whole_epoch = False

    def on_train_batch_end(self, batch, logs=None):
        if self.clock() > self.deadline:
            self.model.stop_training = self.ran_out = True

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch_started = self.clock()
        self.whole_epoch = self.model.progress["step"] == 0  # not the rest of a resumed epoch

    def on_epoch_end(self, epoch, logs=None):
        if not self.whole_epoch or self.ran_out:
            return
        self.whole_epochs += 1
        if self.whole_epochs != 2 or not is_chief():
            return
        minutes_per_epoch = max(self.clock() - self.epoch_started, 1e-6) / 60
        last = epoch + 1 + int(max(self.deadline - self.clock(), 0) / 60 / minutes_per_epoch)
        if last >= self.planned_epochs:
            return
        advice = ""
        if self.rate_after is not None:
            advice = (f"; the cosine learning-rate schedule, sized for {self.planned_epochs} epochs, will be at "
                      f"about {100 * self.rate_after(last):.0f} % of its peak there, not at its floor "
                      f"({100 * self.rate_after(self.planned_epochs):.2g} %): on this machine, a new run with "
                      f"-e {last} fits this budget")
        pace = f"{minutes_per_epoch:.1f} minutes" if minutes_per_epoch >= 1 else f"{60 * minutes_per_epoch:.0f} s"
        print(f"--max-minutes {self.minutes:g}: an epoch takes about {pace} here, so "
              f"the budget ends near epoch {last} of the {self.planned_epochs} planned{advice}")


class ElapsedMinutes(keras.callbacks.Callback):
    """Logs `wall_minutes` at every epoch end: the run's training time so far, validation included,
    continued across resumes (a killed epoch's lost part aside), for CER-against-time curves."""

    def on_train_begin(self, logs=None):
        self.started = time.monotonic()
        self.before = (self.model.progress.get("history", {}).get("wall_minutes") or [0.0])[-1]

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["wall_minutes"] = self.before + (time.monotonic() - self.started) / 60


@dataclass
class FitRequest:
    train_manifests: list[Path]
    val_manifests: list[Path]
    epochs: int
    batch_size: int
    output_dir: Path
    config: DS2Config
    model_file: Path | None = None
    fresh: bool = False
    cache: bool = False
    save_every_steps: int = 200
    verbose: int | str = "auto"
    callbacks: list[keras.callbacks.Callback] = field(default_factory=list)  # library users' own, run last
    max_minutes: float | None = None  # wall-clock budget: stop, validate and save when it runs out
    init_from: Path | None = None  # a new run starting from this model's weights (finetune.py)
    chosen_fields: frozenset[str] = frozenset()  # of `config`, what --init-from applies over the model's
    alphabet_file: Path | None = None  # the new run's alphabet (default: the training transcripts' characters)
    average_last: int = 0  # keep the last N epochs' weights and write their mean to averaged.keras (averaging.py)


def configure_precision(config: DS2Config) -> None:
    keras.mixed_precision.set_global_policy("mixed_float16" if config.mixed_precision else "float32")


def _restore(request: FitRequest) -> DS2Model | None:
    """The model to resume: the output directory's own checkpoint (newest: a restarted command must
    not fall back to --model-file or start --init-from again), else --model-file; --fresh ignores
    the output directory."""
    checkpoint = request.output_dir / MODEL_FILENAME
    source = checkpoint if checkpoint.exists() and not request.fresh else request.model_file
    if source is None:
        return None
    model = load_model_file(source)
    print(f"resuming from {source}: epoch {model.progress['epoch']}, step {model.progress['step']} "
          f"(with the config saved in it; --preset/--set/--freeze apply to new runs only)")
    return model


def _check_resumable(model: DS2Model, batch_size: int, steps: int) -> None:
    """Mid-epoch resume replays the epoch's batch plan, which depends on batch size and data."""
    progress = model.progress
    saved = progress.get("batch_size"), progress.get("steps_per_epoch")
    if progress["step"] and None not in saved and saved != (batch_size, steps):
        raise DS2Error(f"cannot resume mid-epoch {progress['epoch'] + 1} (step {progress['step']}): it was planned "
                       f"with batch size {saved[0]} and {saved[1]} batches per epoch, now {batch_size} and {steps}; "
                       "use the same -z and manifests, or --fresh")


def build_model_for_training(config: DS2Config, steps_per_epoch: int, epochs: int = 1) -> DS2Model:
    """A new compiled model, seeded from the config so the same command builds the same model;
    its schedule is planned for `epochs` of `steps_per_epoch` (optim.make_schedule)."""
    configure_precision(config)
    keras.utils.set_random_seed(config.seed)
    model = DS2Model(config)
    model.compile(optimizer=make_optimizer(config, steps_per_epoch, epochs), jit_compile=config.jit_compile)
    return model


NORMALIZATION_UTTERANCES = 500  # enough for stable per-bin statistics, a few seconds of decoding


def adapt_normalization(model: DS2Model, utterances: Utterances, batch_size: int) -> None:
    """Fix a streaming model's feature statistics from the real frames of up to 500 training utterances.

    Streaming cannot normalize by an utterance's own statistics (they need its end), so the
    mean and variance per bin are measured once here and saved with the weights.
    """
    rng = np.random.default_rng(model.ds2_config.seed)
    chosen = np.sort(rng.permutation(len(utterances))[:NORMALIZATION_UTTERANCES])
    sample = Utterances(rows=utterances.rows.iloc[chosen].reset_index(drop=True),
                        labels=[utterances.labels[i] for i in chosen])
    spectrogram = model.get_layer("log_spectrogram")

    def real_frames(inputs, targets, indices):
        features, lengths = spectrogram(inputs["waveforms"], inputs["lengths"])
        return tf.boolean_mask(features, tf.sequence_mask(lengths, tf.shape(features)[1]))[None]  # [1, frames, bins]

    dataset, _ = evaluation_dataset(sample, model.ds2_config, batch_size)
    model.get_layer("global_normalization").adapt(dataset.map(real_frames))
    print(f"feature statistics from {len(sample)} training utterances")


def load_split(rows: pd.DataFrame, manifests: list[Path], config: DS2Config, name: str) -> Utterances:
    utterances = select_utterances(rows, config)
    print(utterances.report(name))
    _check_not_empty(utterances, manifests, name)
    return utterances


def load_validation(manifests: list[Path], config: DS2Config) -> Utterances | None:
    """The val split, scored as `ds2 evaluate` scores it, less the rows no score can use (counted);
    checked before training so that a bad val manifest fails now, not at the first epoch's end."""
    if not manifests:
        return None
    val = scorable_utterances(evaluation_utterances(read_manifests(manifests), config.output_alphabet))
    print(val.report("val"))
    _check_not_empty(val, manifests, "val")
    return val


def _check_not_empty(utterances: Utterances | pd.DataFrame, manifests: list[Path], name: str) -> None:
    if not len(utterances):
        raise DS2Error(f"no usable utterances in {name} manifests {[str(m) for m in manifests]}")


def _check_batch_size(batch_size: int, train: Utterances) -> None:
    """A batch is topped up with repeated rows (data.plan_epoch): past the corpus it only costs memory."""
    if batch_size > len(train):
        raise DS2Error(f"-z {batch_size} is larger than the {len(train)} usable training utterances; "
                       f"give -z {len(train)} or less")


def choose_alphabet(rows: pd.DataFrame, alphabet_file: Path | None) -> tuple[str, Alphabet]:
    """A new run's (language, alphabet): the manifests' language(s), and the --alphabet file or
    else every character of the training transcripts (English: the seed's whole alphabet)."""
    language = "+".join(sorted(set(rows["language"])))
    if alphabet_file is not None:
        return language, Alphabet.read(alphabet_file)
    return language, Alphabet.of(set().union(*map(set, rows["text"])), language)


def new_run_config(request: FitRequest, rows: pd.DataFrame, source: DS2Model | None) -> DS2Config:
    """The config of a run's first fit: the request's (over the source model's, with --init-from),
    with the language and alphabet of its training data."""
    config = request.config
    if source is not None:
        config = init_config(source.ds2_config, config, request.chosen_fields, request.init_from)
    language, alphabet = choose_alphabet(rows, request.alphabet_file)
    config = config.replace(language=language, alphabet=alphabet.characters)
    origin = f"--alphabet {request.alphabet_file}" if request.alphabet_file else "the training transcripts"
    print(f"alphabet: {alphabet.describe()}, from {origin} (language {language})")
    return config


def _new_model(request: FitRequest, config: DS2Config, train: Utterances, steps: int,
               source: DS2Model | None) -> DS2Model:
    """A new run's model, from random weights or the source's (--init-from); says which, and what is frozen."""
    model = build_model_for_training(config, steps, request.epochs)
    kept = transfer_weights(source, model) if source is not None else ""
    if config.streaming and source is None:  # a source brings the statistics its weights were trained with
        adapt_normalization(model, train, request.batch_size)
    print(_start_line(request, source, kept))
    if config.freeze:
        frozen = [layer.name for layer in model.layers if layer.weights and not layer.trainable]
        print(f"frozen (--freeze {' '.join(config.freeze)}): {', '.join(frozen)}")
    return model


def _start_line(request: FitRequest, source: DS2Model | None, kept: str) -> str:
    """What a new run starts from, in one line."""
    if source is not None:
        progress = source.progress
        return (f"starting a new run from the weights of {request.init_from} (trained {progress['epoch']} epochs"
                f"{', ' + str(progress['step']) + ' steps into the next' if progress['step'] else ''}): epoch 0, "
                f"a new optimizer and schedule; {kept}")
    ignored = f" (--fresh: {request.output_dir / MODEL_FILENAME} is ignored)" if request.fresh else ""
    return f"starting a new run from random weights{ignored}"


def fit(request: FitRequest) -> DS2Model:
    """Train as requested; the chief holds the output directory's lock throughout, so a second
    fit on the same directory is refused instead of overwriting the first one's checkpoints."""
    make_directory(request.output_dir)
    if not is_chief():  # other workers write nothing there
        return _fit(request)
    with exclusive_use(request.output_dir, FIT_LOCK, "ds2 fit"):
        check_writable(request.output_dir / MODEL_FILENAME)  # not a directory, say, found only at the first save
        for name in (MODEL_FILENAME, BEST_FILENAME, HISTORY_FILENAME, CONFIG_FILENAME, AVERAGED_FILENAME):
            remove_stale_temporaries(request.output_dir / name)  # left by a fit killed mid-write
        remove_stale_epoch_temporaries(request.output_dir)
        return _fit(request)


def _fit(request: FitRequest) -> DS2Model:
    strategy = choose_strategy()
    replicas = strategy.num_replicas_in_sync
    if is_chief():
        print(describe(strategy))
    if request.batch_size % replicas:
        raise DS2Error(f"batch size {request.batch_size} must be a multiple of the {replicas} replicas")
    with strategy.scope():
        model = _restore(request)
        source = load_model_file(request.init_from, compile=False) if model is None and request.init_from else None
        rows = read_manifests(request.train_manifests)
        _check_not_empty(rows, request.train_manifests, "train")
        # A resumed model brings its own config; it decides which utterances can train.
        config = new_run_config(request, rows, source) if model is None else model.ds2_config
        train = load_split(rows, request.train_manifests, config, "train")
        _check_batch_size(request.batch_size, train)
        # Validation scores every scorable row, as `ds2 evaluate` does, so the two figures agree.
        val = load_validation(request.val_manifests, config)
        if request.cache:
            check_cache_fits(train, config)
        steps = batches_per_epoch(train, request.batch_size)
        if model is None:
            model = _new_model(request, config, train, steps, source)
            if is_chief():
                forget_epochs(request.output_dir)
        _check_resumable(model, request.batch_size, steps)
        model.progress = {**model.progress, "batch_size": request.batch_size, "steps_per_epoch": steps}
    if is_chief():
        config.save(request.output_dir / CONFIG_FILENAME)
    epoch = model.progress["epoch"]
    if epoch >= request.epochs:
        print(f"model already trained for {epoch} epochs (asked for {request.epochs}); nothing to do")
        return model
    _train(model, request, train, val, steps, strategy)
    if is_chief():
        print(f"model saved to {request.output_dir / MODEL_FILENAME}")
        if request.average_last:
            _write_average(request, val)
    return model


def _write_average(request: FitRequest, val: Utterances | None) -> None:
    """averaged.keras from the kept epochs, scored on the val set as each epoch was."""
    averaged, path = write_average(request.output_dir, request.average_last)
    epochs = averaged.progress["averaged_epochs"]
    print(f"weights of epochs {epochs[0]}-{epochs[-1]} averaged into {path}")
    if val is not None:
        result = validate(averaged, val, request.batch_size, progress=request.verbose in (1, "auto"))
        print("\n" + result.report(f"averaged epochs {epochs[0]}-{epochs[-1]}"))


def _train(model: DS2Model, request: FitRequest, train: Utterances, val: Utterances | None, steps: int,
           strategy: tf.distribute.Strategy) -> None:
    """Fit from the model's progress to request.epochs: a partial epoch first (if resuming
    mid-epoch), then whole epochs, since Keras needs a fixed steps_per_epoch per fit call."""
    epoch, step = model.progress["epoch"], model.progress["step"]
    segments = [(epoch, epoch + 1, step), (epoch + 1, request.epochs, 0)] if step else [(epoch, request.epochs, 0)]
    logs = request.output_dir / "logs"
    budget = None
    if request.max_minutes:
        config = model.ds2_config
        new_cosine = config.lr_schedule == "cosine" and epoch == step == 0  # else not sized by this -e
        planned_rate = rate_after(config, steps, request.epochs) if new_cosine else None
        budget = WallClockBudget(request.max_minutes, request.epochs, planned_rate)
    with StopRequests() as stops, reporting_tensorflow_errors(logs):  # TensorBoard writes with TF's file system
        for first, last, skip in segments:
            if first >= last:
                continue
            # Each input pipeline (one per worker) decodes only its slice of every planned batch.
            dataset = strategy.distribute_datasets_from_function(
                lambda context, first=first, last=last, skip=skip: training_dataset(
                    train, model.ds2_config, request.batch_size, range(first, last), skip_batches=skip,
                    cache=request.cache, shard=Shard.of(context, request.batch_size)))
            callbacks = [
                ValidationCallback(val, request.batch_size, stops) if val is not None else None,
                ElapsedMinutes(),
                Checkpointer(request.output_dir, request.save_every_steps, step_offset=skip, stops=stops),
                EpochWeights(request.output_dir, request.average_last) if request.average_last else None,
                keras.callbacks.TensorBoard(log_dir=str(logs)) if is_chief() else None,
                budget,
            ]
            model.fit(
                dataset,
                epochs=last,
                initial_epoch=first,
                steps_per_epoch=steps - skip,
                callbacks=[c for c in callbacks if c is not None] + request.callbacks,
                verbose=request.verbose,
                shuffle=False,  # batches are planned (SortaGrad, buckets) in data.plan_epoch
            )
            if model.stop_training:
                if stops.requested and model.progress["epoch"] < request.epochs:
                    raise FitInterrupted(_interrupted_line(stops.signal_name, model.progress, request.output_dir),
                                         stops.signal_number)
                if budget is not None and budget.ran_out and is_chief():
                    progress = model.progress
                    print(f"--max-minutes {request.max_minutes:g} reached at epoch {progress['epoch'] + 1}, step "
                          f"{progress['step']}: saved; the same command continues from there")
                break


def _interrupted_line(signal_name: str, progress: dict, output_dir: Path) -> str:
    """Where a signal stopped the run, what was saved, and how to go on, in one line."""
    where = (f"epoch {progress['epoch'] + 1} step {progress['step']}" if progress["step"]
             else f"the end of epoch {progress['epoch']}")
    return (f"interrupted ({signal_name}) at {where}: saved {output_dir / MODEL_FILENAME}; "
            "run the same command to continue")
