"""The waveform-input model: features as layers, files from before load unchanged, and an input
pipeline whose graph does not grow with the corpus.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

from ds2_keras.core.alphabet import ENGLISH_ALPHABET
from ds2_keras.model.checkpoints import load_model_file
from ds2_keras.core.config import preset
from ds2_keras.data.dataset import AudioLoader, check_cache_fits, evaluation_utterances, select_utterances, training_dataset
from ds2_keras.core.errors import DS2Error
from ds2_keras.model.features import normalized_features
from ds2_keras.data.manifest import REQUIRED_COLUMNS, read_manifest

DATA = Path(__file__).parent / "data"
TINY = preset("tiny")


def legacy_inputs() -> tuple[np.ndarray, np.ndarray]:
    """The waveforms the 0.1 logits in tests/data were computed on (tones in noise; one shorter than a window)."""
    rng = np.random.default_rng(0)
    lengths = np.array([16000, 9000, 200], np.int32)
    waveforms = np.zeros((3, 16000), np.float32)
    seconds = np.arange(16000) / 16000
    for row, length in enumerate(lengths):
        tone = 0.3 * np.sin(2 * np.pi * (200 + 300 * row) * seconds[:length])
        waveforms[row, :length] = (tone + 0.05 * rng.standard_normal(length)).astype(np.float32)
    return waveforms, lengths


def test_a_model_file_written_by_the_feature_input_version_loads_and_gives_the_same_logits():
    """tests/data holds a tiny model saved by ds2-keras 0.1 (features in, computed outside the model)
    and its logits on legacy_inputs(), computed then. The waveform model must reproduce them."""
    model = load_model_file(DATA / "ds2-keras-0.1-tiny.keras", compile=False)
    expected = np.load(DATA / "ds2-keras-0.1-tiny-logits.npz")
    assert model.alphabet == ENGLISH_ALPHABET and model.ds2_config.language == "en"  # saved before alphabets were
    logits, lengths = model.logits(*legacy_inputs())
    np.testing.assert_array_equal(lengths.numpy(), expected["logit_lengths"])
    np.testing.assert_allclose(logits.numpy(), expected["logits"], atol=1e-5)


def numpy_features(waveform: np.ndarray, window: int, hop: int) -> np.ndarray:
    """DS2's linear features written out independently: periodic Hann, |rfft|^2, log, per-bin z-score."""
    frames = (len(waveform) - window) // hop + 1
    hann = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(window) / window)
    spectra = np.stack([np.fft.rfft(waveform[i * hop: i * hop + window] * hann) for i in range(frames)])
    features = np.log(np.abs(spectra) ** 2 + 1e-10)
    return (features - features.mean(axis=0)) / np.sqrt(features.var(axis=0) + 1e-5)


def test_feature_layers_compute_ds2_linear_features():
    config = TINY.replace(feature_type="linear")
    waveforms, lengths = legacy_inputs()
    features, frames = (t.numpy() for t in normalized_features(waveforms, lengths, config))
    for row in range(2):
        expected = numpy_features(waveforms[row, : lengths[row]].astype(np.float64), config.window_samples,
                                  config.hop_samples)
        assert frames[row] == len(expected)
        np.testing.assert_allclose(features[row, : frames[row]], expected, atol=2e-3)


def test_the_model_ignores_augment_seed_outside_training_and_augments_inside():
    model = load_model_file(DATA / "ds2-keras-0.1-tiny.keras", compile=False)
    waveforms, lengths = legacy_inputs()
    inputs = {"waveforms": waveforms, "lengths": lengths, "augment_seed": np.arange(3, dtype=np.int64)}
    plain, _ = model.logits(waveforms, lengths)
    np.testing.assert_array_equal(model(inputs, training=False)[0].numpy(), plain.numpy())
    augmenting = type(model)(model.ds2_config.replace(spec_augment=True, noise_snr_db=10.0))
    augmenting.set_weights(model.get_weights())
    first, second = (augmenting(inputs, training=True)[0].numpy() for _ in range(2))
    np.testing.assert_array_equal(first, second)  # seeded by position: a resume replays it
    assert not np.allclose(first, augmenting(inputs, training=False)[0].numpy(), atol=1e-3)


def synthetic_rows(count: int) -> pd.DataFrame:
    """Manifest rows for `count` utterances (paths repeat; nothing is read to build a dataset)."""
    rng = np.random.default_rng(0)
    return pd.DataFrame({
        "audio_path": [f"/corpus/{i % 7}.flac" for i in range(count)],
        "transcript_path": [f"/corpus/{i % 7}.txt" for i in range(count)],
        "text": ["the quick brown fox jumps over the lazy dog"[: 10 + i % 30] for i in range(count)],
        "duration": rng.uniform(2.0, 15.0, count).round(2),
    }, columns=REQUIRED_COLUMNS)


def test_the_training_graph_does_not_grow_with_the_corpus():
    """Labels, paths and plans stay in Python, looked up per element: no corpus-sized constant."""
    sizes = []
    for count in (10, 20000):
        dataset = training_dataset(select_utterances(synthetic_rows(count), TINY), TINY, 8, range(0, 3))
        sizes.append(len(dataset._as_serialized_graph().numpy()))
    assert sizes[1] < sizes[0] + 1000, sizes


def test_cache_holds_int16_and_yields_the_same_batches_as_decoding(corpus):
    utterances = select_utterances(read_manifest(corpus["train"]), TINY)
    decoded = list(training_dataset(utterances, TINY, 4, range(0, 2)))
    cached = list(training_dataset(utterances, TINY, 4, range(0, 2), cache=True))
    for (inputs, _), (expected, _) in zip(cached, decoded):
        np.testing.assert_array_equal(inputs["waveforms"], expected["waveforms"])
    loader = AudioLoader(utterances, TINY, lambda position: position, cache=True)
    loader(np.int64(0), np.array([0, 0]))
    assert [samples.dtype for samples in loader.cache.values()] == [np.int16]


def test_cache_that_will_not_fit_is_refused_with_the_size_it_needs():
    utterances = evaluation_utterances(synthetic_rows(281241), ENGLISH_ALPHABET)
    check_cache_fits(utterances, TINY, available_bytes=10**12)
    with pytest.raises(DS2Error, match=r"--cache needs \d+\.\d GB to hold \d+\.\d h of audio as int16, but only 8\.0 GB"):
        check_cache_fits(utterances, TINY, available_bytes=8 * 10**9)
