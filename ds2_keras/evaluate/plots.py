"""Figures for looking inside a model: error rates, character confusions, training, features, CTC.

The notebook and `ds2 evaluate --plots DIR` draw the same figures from these functions. Each
returns a matplotlib Figure built without pyplot, so nothing needs a display, no global
backend is switched and no figure outlives its caller; Jupyter shows a returned Figure inline.
"""
from __future__ import annotations

import textwrap
from pathlib import Path
from typing import TYPE_CHECKING, Mapping, Sequence

import numpy as np
from matplotlib.colors import LogNorm, Normalize
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator, PercentFormatter
from rapidfuzz.distance import Levenshtein
from scipy.special import log_softmax

from ds2_keras.core.alphabet import BLANK, ENGLISH_ALPHABET, ENGLISH_CHARACTERS, Alphabet
from ds2_keras.core.config import DS2Config
from ds2_keras.decode.decoders import greedy_decode
from ds2_keras.core.fileio import atomic_path, check_writable
from ds2_keras.core.metrics import ErrorRate

if TYPE_CHECKING:  # evaluate imports Keras; the error plots need neither it nor TensorFlow
    from ds2_keras.evaluate.evaluation import Evaluation

# Readable tick labels for symbols that are invisible or ambiguous when printed.
_SHOWN = {" ": "␣", BLANK: "blank"}
_NOTHING = "∅"  # the missing side of an insertion or deletion
_WRAP = 100  # characters per line of a transcript shown in a title


def _label(symbol: str) -> str:
    return _SHOWN.get(symbol, symbol)


def error_rate_by_length(durations: Sequence[float], character_errors: ErrorRate, word_errors: ErrorRate,
                         bins: int = 8) -> Figure:
    """Per-utterance CER and WER against duration, with each length bin's pooled rate and count.

    Shows whether errors come from long utterances (alignment, memory) or short ones (little
    context); the pooled rate per bin is total edits / total reference length, as in metrics.
    """
    durations = np.asarray(durations, dtype=np.float64)
    for errors in (character_errors, word_errors):
        if len(errors.utterance_edits) != len(durations):
            raise ValueError(f"{len(durations)} durations but {len(errors.utterance_edits)} {errors.name} utterances")
    if not len(durations):
        raise ValueError("no utterances to plot")
    edges = np.histogram_bin_edges(durations, bins=min(bins, len(durations)))
    which = np.digitize(durations, edges[1:-1])
    counts = np.bincount(which, minlength=len(edges) - 1)
    centers = (edges[:-1] + edges[1:]) / 2

    figure = Figure(figsize=(9, 6), layout="constrained")
    rates_axes, counts_axes = figure.subplots(2, 1, sharex=True, height_ratios=[3, 1])
    for errors, color in ((character_errors, "tab:blue"), (word_errors, "tab:orange")):
        edits = np.bincount(which, weights=errors.utterance_edits, minlength=len(counts))
        lengths = np.bincount(which, weights=errors.utterance_lengths, minlength=len(counts))
        pooled = np.where(counts > 0, edits / np.maximum(lengths, 1), np.nan)
        rates_axes.scatter(durations, errors.utterance_rates, s=10, alpha=0.3, color=color,
                           label=f"{errors.name} per utterance")
        rates_axes.plot(centers, pooled, marker="o", color=color, label=f"{errors.name} pooled per bin")
    rates_axes.yaxis.set_major_formatter(PercentFormatter(1.0))
    rates_axes.set_ylabel("error rate")
    rates_axes.legend(loc="best", fontsize="small")
    rates_axes.grid(alpha=0.3)
    rates_axes.set_title(f"Error rate by utterance length ({len(durations)} utterances; "
                         f"CER {character_errors.rate:.1%}, WER {word_errors.rate:.1%})")

    bars = counts_axes.bar(centers, counts, width=np.diff(edges) * 0.9, color="0.6")
    counts_axes.bar_label(bars, fontsize="small")
    counts_axes.set_ylabel("utterances")
    counts_axes.set_xlabel("duration (s)")
    counts_axes.set_ylim(0, counts.max() * 1.3)
    counts_axes.yaxis.set_major_locator(MaxNLocator(integer=True))
    return figure


def confusion_counts(references: Sequence[str], predictions: Sequence[str],
                     characters: str = ENGLISH_CHARACTERS) -> np.ndarray:
    """[C + 1, C + 1] counts of reference character (row) -> predicted character (column).

    Rows and columns follow `characters`, plus a last index for "nothing": the last column counts
    deletions, the last row insertions, the diagonal correct characters. The alignment is a
    minimum-edit-distance one (rapidfuzz), the same that CER counts.
    """
    if len(references) != len(predictions):
        raise ValueError(f"{len(references)} references but {len(predictions)} predictions")
    nothing = len(characters)
    index = {character: i for i, character in enumerate(characters)}
    counts = np.zeros((nothing + 1, nothing + 1), dtype=np.int64)
    for reference, prediction in zip(references, predictions):
        unknown = set(reference + prediction) - set(characters)
        if unknown:
            raise ValueError(f"characters outside the alphabet: {sorted(unknown)} in {reference!r} / {prediction!r}")
        for tag, ref_start, ref_end, pred_start, pred_end in Levenshtein.opcodes(reference, prediction):
            ref_ids = np.array([index[ch] for ch in reference[ref_start:ref_end]], dtype=np.int64)
            pred_ids = np.array([index[ch] for ch in prediction[pred_start:pred_end]], dtype=np.int64)
            if tag in ("equal", "replace"):
                np.add.at(counts, (ref_ids, pred_ids), 1)
            elif tag == "delete":
                np.add.at(counts, (ref_ids, nothing), 1)
            else:  # insert
                np.add.at(counts, (nothing, pred_ids), 1)
    return counts


def character_confusion(references: Sequence[str], predictions: Sequence[str],
                        alphabet: Alphabet = ENGLISH_ALPHABET) -> Figure:
    """Substitutions, deletions and insertions per character, and each character's error rate.

    Correct characters (the diagonal) are left blank so the errors stand out; the side bars say
    how often each reference character is lost or mistaken. Rows follow the model's alphabet,
    then any reference characters it cannot output.
    """
    characters = alphabet.characters + "".join(sorted(set("".join(references)) - set(alphabet.characters)))
    counts = confusion_counts(references, predictions, characters)
    nothing = len(characters)
    errors = counts.copy()
    np.fill_diagonal(errors, 0)
    substitutions = int(errors[:nothing, :nothing].sum())
    deletions, insertions = int(errors[:nothing, nothing].sum()), int(errors[nothing, :nothing].sum())
    labels = [_label(c) for c in characters] + [_NOTHING]

    figure = Figure(figsize=(11, 9.5), layout="constrained")
    grid = figure.add_gridspec(2, 2, width_ratios=[5, 1.2], height_ratios=[25, 1])
    matrix_axes = figure.add_subplot(grid[0, 0])
    rate_axes = figure.add_subplot(grid[0, 1], sharey=matrix_axes)
    colorbar_axes = figure.add_subplot(grid[1, 0])
    peak = max(int(errors.max()), 1)
    logarithmic = peak > 10  # a few frequent errors would otherwise wash out all the rare ones
    norm = LogNorm(vmin=1, vmax=peak) if logarithmic else Normalize(vmin=0, vmax=peak)
    image = matrix_axes.imshow(np.ma.masked_equal(errors, 0), cmap="viridis", norm=norm, aspect="auto")
    matrix_axes.plot([-0.5, nothing - 0.5], [-0.5, nothing - 0.5], color="0.85", lw=0.8, zorder=0)  # correct
    ticks = np.arange(len(labels))
    matrix_axes.set_xticks(ticks, labels)
    matrix_axes.set_yticks(ticks, labels)
    matrix_axes.set_xlabel(f"predicted character ({_NOTHING}: deleted)")
    matrix_axes.set_ylabel(f"reference character ({_NOTHING}: inserted)")
    matrix_axes.axhline(nothing - 0.5, color="0.5", lw=0.8)
    matrix_axes.axvline(nothing - 0.5, color="0.5", lw=0.8)
    matrix_axes.set_title(f"Character errors: {substitutions} substitutions, {deletions} deletions, "
                          f"{insertions} insertions ({int(np.trace(counts[:nothing, :nothing]))} correct)")
    figure.colorbar(image, cax=colorbar_axes, orientation="horizontal", label="errors (count)",
                    ticks=None if logarithmic else MaxNLocator(integer=True))

    occurrences = counts[:nothing].sum(axis=1)
    rates = errors[:nothing].sum(axis=1) / np.maximum(occurrences, 1)
    rate_axes.barh(np.arange(nothing), rates, color="tab:red", height=0.7)
    rate_axes.xaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    rate_axes.set_xlabel("errors per occurrence")
    rate_axes.set_title("per reference character", fontsize="medium")
    rate_axes.tick_params(labelleft=False)
    rate_axes.grid(axis="x", alpha=0.3)
    return figure


def training_curve(history: Mapping[str, Sequence[float]]) -> Figure:
    """Training and validation loss, and validation CER, by epoch (a model's progress["history"]).

    Loss falling while val_loss rises means overfitting; val_cer is what the loss is for.
    """
    epochs = len(history.get("loss", ()))
    if not epochs:
        raise ValueError("the history holds no finished epoch (no 'loss' values)")
    numbers = np.arange(1, epochs + 1)
    figure = Figure(figsize=(8, 4.5), layout="constrained")
    loss_axes = figure.subplots()
    lines = loss_axes.plot(numbers, history["loss"], marker="o", label="loss (train)")
    if "val_loss" in history:
        lines += loss_axes.plot(numbers, history["val_loss"], marker="o", label="val_loss")
    loss_axes.set_xlabel("epoch")
    loss_axes.set_ylabel("CTC loss per utterance")
    loss_axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    loss_axes.grid(alpha=0.3)
    if "val_cer" in history:
        cer_axes = loss_axes.twinx()
        lines += cer_axes.plot(numbers, history["val_cer"], marker="s", color="tab:green", label="val_cer")
        cer_axes.yaxis.set_major_formatter(PercentFormatter(1.0))
        cer_axes.set_ylabel("validation CER (greedy)")
        cer_axes.set_ylim(bottom=0)
    figure.legend(lines, [line.get_label() for line in lines], loc="outside lower center", ncols=len(lines))
    loss_axes.set_title(f"Training curve ({epochs} epochs)")
    return figure


def cer_against_time(runs: Mapping[str, tuple[Sequence[float], Sequence[float]]]) -> Figure:
    """Validation CER against minutes of training, one line per run ({label: (minutes, CER)}, as
    checkpoints.timed_cer reads them from a fit's progress; a run with no points is left out).

    What a fixed budget buys: recipes compared at equal wall time rather than equal epochs.
    """
    timed = {label: (minutes, cer) for label, (minutes, cer) in runs.items() if len(minutes)}
    if not timed:
        raise ValueError("no run's history holds both wall_minutes and val_cer (fit with a val manifest)")
    figure = Figure(figsize=(8, 4.5), layout="constrained")
    axes = figure.subplots()
    for label, (minutes, cer) in timed.items():
        axes.plot([0.0, *minutes], [1.0, *cer], marker="o", label=label)
    axes.set_xlabel("minutes of training (validation included)")
    axes.set_ylabel("validation CER (greedy)")
    axes.yaxis.set_major_formatter(PercentFormatter(1.0))
    axes.set_ylim(0, 1)
    axes.set_xlim(left=0)
    axes.grid(alpha=0.3)
    axes.legend()
    axes.set_title("CER against training time")
    return figure


def waveform_and_spectrogram(samples: np.ndarray, config: DS2Config, title: str | None = None) -> Figure:
    """An utterance's waveform above the features the model sees (features.normalized_features).

    The features come from the model's own feature layers, so the picture is exactly what the
    network's convolutions see, normalization included. TensorFlow is imported here only, so the error
    plots of `ds2 evaluate --plots` do not need it.
    """
    from ds2_keras.model.features import normalized_features
    from ds2_keras.core.frames import samples_spanned

    samples = np.asarray(samples, dtype=np.float32)
    features, lengths = normalized_features(samples[None, :], np.array([len(samples)], np.int32), config)
    features = features.numpy()[0, : int(lengths[0])]
    duration = len(samples) / config.sample_rate
    end = samples_spanned(len(features), config) / config.sample_rate

    figure = Figure(figsize=(10, 6), layout="constrained")
    wave_axes, feature_axes = figure.subplots(2, 1, sharex=True, height_ratios=[1, 2])
    wave_axes.plot(np.arange(len(samples)) / config.sample_rate, samples, lw=0.5)
    wave_axes.set_ylabel("amplitude")
    wave_axes.set_title(textwrap.fill(title, _WRAP) if title else f"Waveform ({duration:.2f} s)")
    if config.feature_type == "linear":
        extent, ylabel = (0, end, 0, config.sample_rate / 2000), "frequency (kHz)"
    else:
        extent, ylabel = (0, end, 0, config.num_features), "mel band"
    image = feature_axes.imshow(features.T, origin="lower", aspect="auto", extent=extent, cmap="magma")
    feature_axes.set_xlabel("time (s)")
    feature_axes.set_ylabel(ylabel)
    feature_axes.set_title(f"Model input: {config.feature_type} log spectrogram, {len(features)} frames "
                           f"of {config.window_ms:g} ms every {config.hop_ms:g} ms")
    figure.colorbar(image, ax=feature_axes, label="log power, normalized per bin")
    wave_axes.set_xlim(0, duration)  # after imshow, which sets the shared axis to the frames' extent
    return figure


def ctc_posteriors(logits: np.ndarray, reference: str | None = None, alphabet: Alphabet = ENGLISH_ALPHABET) -> Figure:
    """One utterance's per-frame symbol probabilities [frames, classes] with the greedy path on top.

    A trained model's posteriors are mostly blank with a sharp spike per character; the greedy
    path (argmax per frame) is what greedy decoding collapses into the transcript in the title.
    """
    log_probs = log_softmax(np.asarray(logits, dtype=np.float32), axis=-1)
    symbols = alphabet.symbols
    if log_probs.ndim != 2 or log_probs.shape[1] != len(symbols):
        raise ValueError(f"expected one utterance's [frames, {len(symbols)}] scores, got shape {log_probs.shape}")
    hypothesis = greedy_decode(log_probs[None], alphabet=alphabet)[0]
    best = log_probs.argmax(axis=-1)
    frames = np.arange(len(best))

    figure = Figure(figsize=(max(8.0, min(20.0, len(best) / 12)), 6.5), layout="constrained")
    axes = figure.subplots()
    image = axes.imshow(np.exp(log_probs).T, aspect="auto", cmap="Blues", vmin=0, vmax=1, interpolation="nearest")
    axes.plot(frames, best, color="tab:red", ls="none", marker="o", ms=3, label="greedy path (argmax per frame)")
    axes.set_yticks(np.arange(len(symbols)), [_label(s) for s in symbols], fontsize="small")
    axes.set_xlabel("output frame")
    axes.set_ylabel("symbol")
    figure.legend(loc="outside lower center", fontsize="small")
    lines = [f"greedy: {hypothesis!r}"] + ([f"reference: {reference!r}"] if reference is not None else [])
    axes.set_title("CTC posteriors\n" + "\n".join(textwrap.fill(line, _WRAP) for line in lines), fontsize="medium")
    figure.colorbar(image, ax=axes, label="posterior probability")
    return figure


def save_figure(figure: Figure, path: str | Path, dpi: int = 110) -> Path:
    """Write a PNG atomically: a reader never sees half an image."""
    path = Path(path)
    with atomic_path(path) as temporary:
        figure.savefig(temporary, format="png", dpi=dpi)
    return path


EVALUATION_PLOTS = ("error_rate_by_length.png", "character_confusion.png")


def check_evaluation_plots_writable(plots_dir: str | Path) -> None:
    """Raise now, before the decoding, the OutputError that saving a plot into plots_dir would."""
    for name in EVALUATION_PLOTS:
        check_writable(Path(plots_dir) / name)


def save_evaluation_plots(evaluation: Evaluation, plots_dir: str | Path) -> list[Path]:
    """The error plots of one `ds2 evaluate` run as PNGs in plots_dir (named as EVALUATION_PLOTS)."""
    plots_dir = Path(plots_dir)
    figures = dict(zip(EVALUATION_PLOTS, (
        error_rate_by_length(evaluation.durations, evaluation.character_errors, evaluation.word_errors),
        character_confusion(evaluation.references, evaluation.predictions, evaluation.alphabet),
    ), strict=True))
    return [save_figure(figure, plots_dir / name) for name, figure in figures.items()]
