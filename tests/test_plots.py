"""Plots: each figure from small crafted data, the confusion counts exactly, and the saved PNGs."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from matplotlib.figure import Figure
from matplotlib.image import AxesImage

from ds2_keras.evaluate import plots
from ds2_keras.core.alphabet import BLANK_INDEX, ENGLISH_ALPHABET
from ds2_keras.model.checkpoints import PARTIAL_EPOCH, timed_cer
from ds2_keras.core.config import preset
from ds2_keras.decode.decoders import Hypothesis
from ds2_keras.evaluate.evaluation import Evaluation
from ds2_keras.core.metrics import cer, wer

REFERENCES = ["the cat sat", "a dog ran home", "hello", "go"]
PREDICTIONS = ["the cat sad", "a dg ran hom", "hallo there", "go"]
DURATIONS = np.array([1.2, 2.5, 0.8, 4.0])
CHARACTERS, SYMBOLS, encode = ENGLISH_ALPHABET.characters, ENGLISH_ALPHABET.symbols, ENGLISH_ALPHABET.encode
NOTHING = len(CHARACTERS)  # the "nothing" row/column of the confusion counts
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def images(figure: Figure) -> list[AxesImage]:
    return [image for axes in figure.axes for image in axes.get_images()]


def titles(figure: Figure) -> str:
    return " ".join(axes.get_title() for axes in figure.axes)


def render(figure: Figure, tmp_path: Path) -> Path:
    """Draw the figure for real: layout and text problems only show when it is rendered."""
    return plots.save_figure(figure, tmp_path / "figure.png")


def test_error_rate_by_length_bins_pooled_rates_and_counts(tmp_path):
    character_errors, word_errors = cer(REFERENCES, PREDICTIONS), wer(REFERENCES, PREDICTIONS)
    figure = plots.error_rate_by_length(DURATIONS, character_errors, word_errors, bins=2)
    rates_axes, counts_axes = figure.axes
    cer_line, wer_line = rates_axes.get_lines()
    # Bins [0.8, 2.4) and [2.4, 4.0]: utterances 0 and 2, then 1 and 3.
    first, second = [0, 2], [1, 3]
    for line, errors in ((cer_line, character_errors), (wer_line, word_errors)):
        expected = [errors.utterance_edits[b].sum() / errors.utterance_lengths[b].sum() for b in (first, second)]
        np.testing.assert_allclose(line.get_ydata(), expected)
    assert [bar.get_height() for bar in counts_axes.patches] == [2, 2]
    assert "CER" in titles(figure) and "4 utterances" in titles(figure)
    assert counts_axes.get_xlabel() == "duration (s)"
    render(figure, tmp_path)


def test_error_rate_by_length_takes_a_single_utterance_and_rejects_mismatches(tmp_path):
    one = plots.error_rate_by_length([3.0], cer(["abc"], ["abd"]), wer(["abc"], ["abd"]))
    assert one.axes[0].get_lines()[0].get_ydata().tolist() == pytest.approx([1 / 3])
    render(one, tmp_path)
    with pytest.raises(ValueError, match="durations"):
        plots.error_rate_by_length(DURATIONS[:2], cer(REFERENCES, PREDICTIONS), wer(REFERENCES, PREDICTIONS))


def test_confusion_counts_follow_the_edit_alignment():
    counts = plots.confusion_counts(["abc", "ab", "x"], ["abd", "abe", ""])
    index = {character: i for i, character in enumerate(CHARACTERS)}
    assert counts[index["c"], index["d"]] == 1  # substitution
    assert counts[NOTHING, index["e"]] == 1  # insertion
    assert counts[index["x"], NOTHING] == 1  # deletion
    assert counts[index["a"], index["a"]] == 2 and counts[index["b"], index["b"]] == 2  # correct
    assert counts.sum() == 7
    # Every reference character is in its row exactly once, matched or not.
    assert counts[:NOTHING].sum() == len("abc" + "ab" + "x")
    # The error cells add up to the Levenshtein distance that CER counts.
    errors = counts.sum() - np.trace(counts[:NOTHING, :NOTHING])
    assert errors == cer(["abc", "ab", "x"], ["abd", "abe", ""]).edits


def test_confusion_counts_reject_characters_outside_the_alphabet():
    with pytest.raises(ValueError, match="outside the alphabet"):
        plots.confusion_counts(["abc"], ["aBc"])
    with pytest.raises(ValueError, match="references"):
        plots.confusion_counts(["abc"], [])


def test_character_confusion_shows_errors_only(tmp_path):
    figure = plots.character_confusion(REFERENCES, PREDICTIONS)
    (matrix,) = images(figure)
    shown = matrix.get_array()
    assert shown.shape == (NOTHING + 1, NOTHING + 1)
    assert shown.mask[np.diag_indices(NOTHING)].all()  # correct characters are left out
    counts = plots.confusion_counts(REFERENCES, PREDICTIONS)
    np.fill_diagonal(counts, 0)
    assert shown.sum() == counts.sum() == cer(REFERENCES, PREDICTIONS).edits
    assert "substitutions" in titles(figure)
    assert matrix.colorbar.ax.get_xlabel() == "errors (count)"
    render(figure, tmp_path)


def test_training_curve_plots_each_logged_series(tmp_path):
    history = {"loss": [300.0, 200.0, 150.0], "val_loss": [280.0, 210.0, 190.0], "val_cer": [1.0, 0.8, 0.6],
               "nonfinite_losses": [0.0, 0.0, 0.0]}
    figure = plots.training_curve(history)
    lines = [line for axes in figure.axes for line in axes.get_lines()]
    assert {line.get_label() for line in lines} == {"loss (train)", "val_loss", "val_cer"}
    for line in lines:
        assert line.get_xdata().tolist() == [1, 2, 3]
    render(figure, tmp_path)
    train_only = plots.training_curve({"loss": [5.0]})
    assert [line.get_label() for axes in train_only.axes for line in axes.get_lines()] == ["loss (train)"]
    with pytest.raises(ValueError, match="no finished epoch"):
        plots.training_curve({})


def test_cer_against_time_draws_each_timed_run_from_an_untrained_start(tmp_path):
    runs = {"old": {"history": {"val_cer": [0.7, 0.5], "wall_minutes": [6.0, 12.5]}},
            "new": {"history": {"val_cer": [0.4, 0.3], "wall_minutes": [5.0, 10.0]},
                    PARTIAL_EPOCH: {"val_cer": 0.25, "wall_minutes": 12.0, "val_loss": 9.0}},  # --max-minutes ran out
            "untimed": {"history": {"val_cer": [0.9]}}}  # a model file from before wall_minutes was logged
    figure = plots.cer_against_time({label: timed_cer(progress) for label, progress in runs.items()})
    lines = {line.get_label(): line for line in figure.axes[0].get_lines()}
    assert set(lines) == {"old", "new"}
    assert lines["new"].get_xdata().tolist() == [0.0, 5.0, 10.0, 12.0]
    assert lines["new"].get_ydata().tolist() == [1.0, 0.4, 0.3, 0.25]
    assert lines["old"].get_xdata().tolist() == [0.0, 6.0, 12.5]
    render(figure, tmp_path)
    with pytest.raises(ValueError, match="wall_minutes and val_cer"):
        plots.cer_against_time({"untimed": timed_cer(runs["untimed"])})


@pytest.mark.parametrize("feature_type", ["mel", "linear"])
def test_waveform_and_spectrogram_shows_the_model_features(feature_type, tmp_path):
    config = preset("tiny").replace(feature_type=feature_type)
    seconds = 0.5
    time = np.arange(int(seconds * config.sample_rate)) / config.sample_rate
    samples = 0.3 * np.sin(2 * np.pi * 440 * time).astype(np.float32)
    figure = plots.waveform_and_spectrogram(samples, config, title="a tone")
    (spectrogram,) = images(figure)
    frames = (len(samples) - config.window_samples) // config.hop_samples + 1
    assert spectrogram.get_array().shape == (config.num_features, frames)
    assert figure.axes[0].get_title() == "a tone"
    assert spectrogram.colorbar is not None
    assert figure.axes[0].get_xlim() == pytest.approx((0, seconds))
    render(figure, tmp_path)


def test_ctc_posteriors_overlays_the_greedy_path(tmp_path):
    # Frames spelling "hi" through blanks, a repeated "i" and a trailing blank.
    path = [BLANK_INDEX, *encode("h"), BLANK_INDEX, *encode("i"), *encode("i"), BLANK_INDEX]
    logits = np.full((len(path), len(SYMBOLS)), -5.0, dtype=np.float32)
    logits[np.arange(len(path)), path] = 5.0
    figure = plots.ctc_posteriors(logits, reference="hi")
    (posteriors,) = images(figure)
    assert posteriors.get_array().shape == (len(SYMBOLS), len(path))
    assert posteriors.colorbar.ax.get_ylabel() == "posterior probability"
    np.testing.assert_allclose(posteriors.get_array().sum(axis=0), 1.0, rtol=1e-5)  # probabilities
    (greedy,) = figure.axes[0].get_lines()
    assert greedy.get_ydata().tolist() == path
    assert "greedy: 'hi'" in titles(figure) and "reference: 'hi'" in titles(figure)
    render(figure, tmp_path)
    with pytest.raises(ValueError, match="frames"):
        plots.ctc_posteriors(logits[None])


def test_save_evaluation_plots_writes_pngs(tmp_path):
    evaluation = Evaluation(
        references=REFERENCES, hypotheses=[Hypothesis(text, (), 0.0) for text in PREDICTIONS],
        audio_paths=[f"{i}.flac" for i in range(4)],
        durations=DURATIONS, character_errors=cer(REFERENCES, PREDICTIONS),
        word_errors=wer(REFERENCES, PREDICTIONS), decoder="greedy", alphabet=ENGLISH_ALPHABET,
    )
    paths = plots.save_evaluation_plots(evaluation, tmp_path / "plots")
    assert [path.name for path in paths] == ["error_rate_by_length.png", "character_confusion.png"]
    for path in paths:
        assert path.read_bytes().startswith(PNG_MAGIC) and path.stat().st_size > 10_000
    assert sorted(p.name for p in (tmp_path / "plots").iterdir()) == sorted(p.name for p in paths)  # no temporaries
