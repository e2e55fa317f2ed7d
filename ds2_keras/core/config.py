"""The one configuration dataclass: features, network and training settings.

It is saved inside every model file (and as config.json beside it), so a checkpoint alone
rebuilds its model and its feature extraction. Presets give named starting points; any field
can be overridden from the CLI with `--set field=value`.
"""
from __future__ import annotations

import dataclasses
import json
import typing
from dataclasses import dataclass
from pathlib import Path

from ds2_keras.core.alphabet import ENGLISH, ENGLISH_CHARACTERS, Alphabet
from ds2_keras.core.fileio import atomic_write_text


@dataclass
class DS2Config:
    preset: str = "small"
    # Features (computed inside the TF graph, see features.py).
    sample_rate: int = 16000
    window_ms: float = 20.0
    hop_ms: float = 10.0
    feature_type: str = "linear"  # "linear": DS2's 161 log-power bins; "mel": log-mel
    mel_bins: int = 80
    # Convolutional front end: one entry per Conv2D, kernels and strides as (time, frequency).
    conv_filters: tuple[int, ...] = (32, 32)
    conv_kernels: tuple[tuple[int, int], ...] = ((11, 41), (11, 21))
    conv_strides: tuple[tuple[int, int], ...] = ((2, 2), (1, 2))
    # Recurrent stack.
    rnn_type: str = "gru"  # "gru" or "lstm"
    rnn_layers: int = 3
    rnn_units: int = 256
    bidirectional: bool = True
    lookahead: int = 0  # future frames seen by the row convolution of a unidirectional model
    # Streamable (needs bidirectional=False): causal convolutions and feature normalization by
    # statistics fixed at training time, so nothing depends on audio not yet heard but the lookahead.
    streaming: bool = False
    relu_clip: float = 20.0
    batchnorm_momentum: float = 0.99  # lower for short runs, so inference statistics catch up
    dropout: float = 0.0
    # Optimization.
    optimizer: str = "adam"  # "adam" or "sgd" (Nesterov momentum, as the neon seed)
    learning_rate: float = 1e-3  # the peak rate, reached after warmup_steps
    lr_schedule: str = "epoch"  # "epoch": x lr_decay after every epoch; "cosine": down to lr_floor at the run's end
    lr_decay: float = 1.0
    lr_floor: float = 0.02  # "cosine": the final rate, as a fraction of learning_rate
    warmup_steps: int = 0
    momentum: float = 0.99
    clipnorm: float = 400.0
    # Data.
    max_duration: float = 30.0
    sortagrad: bool = True
    spec_augment: bool = False
    freq_masks: int = 2
    freq_mask_width: int = 15
    time_masks: int = 2
    time_mask_width: int = 40
    speed_perturb: bool = False  # random 0.9x-1.1x resampling
    noise_snr_db: float = 0.0  # >0 adds white noise at about this SNR
    seed: int = 1234
    # Output symbols and the language whose normalization the transcripts had, chosen by the
    # run's first fit from its training data (training.choose_alphabet); these defaults are
    # what every model file written before alphabets were configurable means.
    language: str = ENGLISH
    alphabet: str = ENGLISH_CHARACTERS  # Alphabet.characters: the blank is output 0, then these
    # Layers kept fixed in training: every layer whose name starts with one of these prefixes.
    freeze: tuple[str, ...] = ()
    # Accelerator switches.
    mixed_precision: bool = False
    jit_compile: bool = False

    @property
    def window_samples(self) -> int:
        return int(round(self.sample_rate * self.window_ms / 1000))

    @property
    def hop_samples(self) -> int:
        return int(round(self.sample_rate * self.hop_ms / 1000))

    @property
    def num_features(self) -> int:
        return self.window_samples // 2 + 1 if self.feature_type == "linear" else self.mel_bins

    @property
    def time_stride(self) -> int:
        stride = 1
        for time, _ in self.conv_strides:
            stride *= time
        return stride

    @property
    def output_alphabet(self) -> Alphabet:
        return Alphabet(self.alphabet)

    def architecture_changes(self, other: "DS2Config") -> dict[str, tuple]:
        """{field: (ours, other's)} for the fields that shape the network (the output layer aside)."""
        return {name: (getattr(self, name), getattr(other, name)) for name in ARCHITECTURE_FIELDS
                if getattr(self, name) != getattr(other, name)}

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "DS2Config":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"unknown config fields: {sorted(unknown)}")
        hints = typing.get_type_hints(cls)
        return cls(**{k: _coerce(hints[k], v) for k, v in values.items()})

    def replace(self, **changes) -> "DS2Config":
        return DS2Config.from_dict({**self.to_dict(), **changes})

    def with_overrides(self, assignments: list[str]) -> "DS2Config":
        """Apply CLI `field=value` strings, each parsed as its field's declared type."""
        hints = typing.get_type_hints(DS2Config)
        changes = {}
        for assignment in assignments:
            name, sep, raw = (part.strip() for part in assignment.partition("="))
            if not sep:
                raise ValueError(f"expected field=value, got {assignment!r}")
            if name not in hints:
                raise ValueError(f"unknown config field {name!r}")
            if name in DATA_FIELDS:
                raise ValueError(f"{name} is chosen from the training data at a run's first fit "
                                 "(ingest --language, fit --alphabet FILE), not with --set")
            changes[name] = _parse(name, hints[name], raw)
        return self.replace(**changes)

    def save(self, path: str | Path) -> None:
        atomic_write_text(path, json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n")

    def __post_init__(self) -> None:
        """Reject settings the model or pipeline cannot honour, before anything is built."""
        choices = {"feature_type": ("linear", "mel"), "rnn_type": ("gru", "lstm"), "optimizer": ("adam", "sgd"),
                   "lr_schedule": ("epoch", "cosine")}
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {', '.join(allowed)}, not {getattr(self, name)!r}")
        if not len(self.conv_filters) == len(self.conv_kernels) == len(self.conv_strides) >= 1:
            raise ValueError("conv_filters, conv_kernels and conv_strides need one entry per convolution (at least one)")
        for name, valid in RANGES.items():
            valid.check(name, getattr(self, name))
        if any(value <= 0 for pair in self.conv_kernels + self.conv_strides for value in pair):
            raise ValueError("conv kernels and strides must be positive")
        if any(filters <= 0 for filters in self.conv_filters):
            raise ValueError("conv_filters must be positive")
        if self.feature_type == "mel" and self.mel_bins > self.window_samples // 2 + 1:
            raise ValueError(f"mel_bins must be at most the {self.window_samples // 2 + 1} frequency bins of a "
                             f"{self.window_ms:g} ms window, not {self.mel_bins}")
        Alphabet(self.alphabet)  # raises AlphabetError, naming what is wrong
        if self.streaming and self.bidirectional:
            raise ValueError("streaming=true needs bidirectional=false: a backward RNN waits for the end of the audio")
        if self.streaming and any(kernel[0] <= stride[0] for kernel, stride in zip(self.conv_kernels, self.conv_strides)):
            raise ValueError("streaming=true needs each convolution's time kernel longer than its time stride")


@dataclass(frozen=True)
class Range:
    """The values a numeric field may take: [low, high], either end open or absent."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False

    def check(self, name: str, value: float) -> None:
        below = self.low is not None and (value <= self.low if self.low_open else value < self.low)
        above = self.high is not None and (value >= self.high if self.high_open else value > self.high)
        if below or above:
            raise ValueError(f"{name} must be in {self}, not {value!r}")

    def __str__(self) -> str:
        low = "-inf" if self.low is None else f"{self.low:g}"
        high = "inf" if self.high is None else f"{self.high:g}"
        return f"{'(' if self.low_open or self.low is None else '['}{low}, {high}{')' if self.high_open or self.high is None else ']'}"


POSITIVE = Range(0, low_open=True)
FRACTION = Range(0, 1, high_open=True)
NONNEGATIVE = Range(0)
# Every numeric field's valid values, checked whenever a config is made (a preset, --set, a model
# file): a value out of range fails at once, naming the field, instead of as a deep error or an
# exhausted memory an hour later. Upper ends are far past any sensible recipe.
RANGES: dict[str, Range] = {
    "sample_rate": Range(1000, 192000), "window_ms": Range(0, 1000, low_open=True),
    "hop_ms": Range(0, 1000, low_open=True), "mel_bins": Range(1, 1024),
    "rnn_layers": Range(1, 64), "rnn_units": Range(1, 16384), "lookahead": Range(0, 1000),
    "relu_clip": POSITIVE, "batchnorm_momentum": FRACTION, "dropout": FRACTION,
    "learning_rate": Range(0, 100, low_open=True), "lr_decay": POSITIVE, "lr_floor": Range(0, 1),
    "warmup_steps": NONNEGATIVE, "momentum": FRACTION, "clipnorm": POSITIVE,
    "max_duration": POSITIVE, "freq_masks": NONNEGATIVE, "freq_mask_width": NONNEGATIVE,
    "time_masks": NONNEGATIVE, "time_mask_width": NONNEGATIVE, "noise_snr_db": NONNEGATIVE, "seed": NONNEGATIVE,
}


# Fields whose change alters the network's weights' shapes or what its inputs mean: a run that
# starts from another model's weights (fit --init-from) must keep them.
ARCHITECTURE_FIELDS = ("sample_rate", "window_ms", "hop_ms", "feature_type", "mel_bins", "conv_filters", "conv_kernels",
                       "conv_strides", "rnn_type", "rnn_layers", "rnn_units", "bidirectional", "lookahead", "streaming")
DATA_FIELDS = ("language", "alphabet")

_TRUE, _FALSE = ("true", "1", "yes", "on"), ("false", "0", "no", "off")


def _parse(name: str, hint, raw: str):
    """One CLI value as the field's type: `spec_augment=False` must really switch it off."""
    try:
        if hint is bool:
            if raw.lower() not in _TRUE + _FALSE:
                raise ValueError
            return raw.lower() in _TRUE
        if hint in (int, float):
            return hint(raw)
        if hint is str:
            return raw
        return _coerce(hint, json.loads(raw))
    except (ValueError, json.JSONDecodeError):
        kind = getattr(hint, "__name__", str(hint))
        raise ValueError(f"{name}={raw!r} is not a valid {kind}") from None


def _coerce(hint, value):
    """Turn JSON lists back into the tuples the dataclass declares."""
    origin = typing.get_origin(hint)
    if origin is tuple and isinstance(value, (list, tuple)):
        inner = typing.get_args(hint)[0]
        return tuple(_coerce(inner, v) for v in value)
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


PRESETS: dict[str, DS2Config] = {
    # Seconds per test on 2 CPU cores; enough capacity to overfit a handful of utterances.
    "tiny": DS2Config(
        preset="tiny", feature_type="mel", mel_bins=40, conv_filters=(16,), conv_kernels=((11, 21),),
        conv_strides=((2, 2),), rnn_layers=1, rnn_units=64, learning_rate=2e-3, batchnorm_momentum=0.9,
    ),
    # Sized for an hour on 2 CPU cores: 64 log-mel bins, small kernels and stride 3 in time, and
    # narrow GRUs buy more epochs per hour, which paid more than width did. The recipe is shaped
    # for short runs: warm up to a high rate, anneal to the run's end, let batch-norm statistics
    # follow the fast-moving weights, and regularize (dropout, SpecAugment) for unseen speakers
    # (docs/benchmarks.md: "The small recipe").
    "small": DS2Config(
        preset="small", feature_type="mel", mel_bins=64, conv_filters=(32, 24),
        conv_kernels=((11, 21), (5, 11)), conv_strides=((3, 2), (1, 2)), rnn_layers=3,
        rnn_units=192, learning_rate=2e-3, lr_schedule="cosine", warmup_steps=100, batchnorm_momentum=0.95,
        dropout=0.2, spec_augment=True, time_masks=4,
    ),
    # The paper-sized model (DS2, Amodei et al. 2016): 3 convolutions, 7 BiGRU layers of 1024.
    "ds2": DS2Config(
        preset="ds2", feature_type="linear", conv_filters=(32, 32, 96),
        conv_kernels=((11, 41), (11, 21), (11, 21)), conv_strides=((2, 2), (1, 2), (1, 2)),
        rnn_layers=7, rnn_units=1024, learning_rate=3e-4, lr_decay=0.91, spec_augment=True,
    ),
}


def preset(name: str) -> DS2Config:
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose from {', '.join(PRESETS)}")
    return dataclasses.replace(PRESETS[name])
