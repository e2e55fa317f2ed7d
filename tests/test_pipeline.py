"""The input pipeline: padding-invariant features, epoch plans, drops, augmentation, bad audio.

These properties are what make batched training, evaluation and an exact mid-epoch resume
agree with each other, so each is checked directly rather than through a training run.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

from corpus_fixtures import write_garbage
from ds2_keras.data import augment
from ds2_keras.model.checkpoints import load_model_file
from ds2_keras.core.config import DS2Config, preset
from ds2_keras.data.dataset import Utterances, evaluation_dataset, plan_epoch, select_utterances, training_dataset
from ds2_keras.model.features import normalized_features
from ds2_keras.core.frames import analysis_frames
from ds2_keras.model.batch_inference import run_inference
from ds2_keras.data.manifest import REQUIRED_COLUMNS, read_manifest

TINY = preset("tiny")


def durations(count: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0.5, 15.0, size=count)


@pytest.mark.parametrize("feature_type", ["mel", "linear"])
def test_features_of_a_padded_batch_equal_each_waveform_alone(feature_type):
    config = TINY.replace(feature_type=feature_type)
    rng = np.random.default_rng(0)
    waveforms = [0.1 * rng.standard_normal(n).astype(np.float32) for n in (16000, 9001, 4100, 200)]
    batch = np.zeros((len(waveforms), 16000), np.float32)
    for row, waveform in enumerate(waveforms):
        batch[row, : len(waveform)] = waveform
    features, lengths = (t.numpy() for t in normalized_features(batch, np.array([len(w) for w in waveforms], np.int32), config))
    for row, waveform in enumerate(waveforms):
        alone, alone_lengths = (t.numpy() for t in normalized_features(waveform[None], np.array([len(waveform)], np.int32), config))
        frames = alone_lengths[0]
        assert lengths[row] == frames
        np.testing.assert_allclose(features[row, :frames], alone[0, :frames], atol=1e-4)
        assert not features[row, frames:].any()  # padding frames are exactly zero
    assert lengths[-1] == 0  # shorter than one 20 ms window: no frames, not an error


def test_model_output_of_a_padded_batch_equals_each_utterance_alone(trained_model, corpus):
    model = load_model_file(trained_model, compile=False)
    utterances = select_utterances(read_manifest(corpus["train"]).head(4), model.ds2_config)
    batched, alone = run_inference(model, utterances, 4, progress=False), run_inference(model, utterances, 1, progress=False)
    by_index = dict(zip(alone.indices, alone.logits))
    assert sorted(batched.indices) == list(range(len(utterances)))
    for index, logits in zip(batched.indices, batched.logits):
        np.testing.assert_allclose(logits, by_index[index], atol=1e-3)


def test_first_epoch_is_sorted_shortest_first():
    seconds = durations(23)
    plan = plan_epoch(seconds, 4, 0, TINY)
    order = plan.reshape(-1)[: len(seconds)]  # the rest tops up the last batch
    assert sorted(order) == list(range(len(seconds)))
    assert np.all(np.diff(seconds[order]) >= 0)


def test_later_epochs_differ_but_replay_exactly_from_seed_and_epoch():
    seconds = durations(40)
    plans = [plan_epoch(seconds, 4, epoch, TINY) for epoch in range(4)]
    for epoch in range(1, 4):
        np.testing.assert_array_equal(plan_epoch(seconds, 4, epoch, TINY), plans[epoch])
        assert not np.all(np.diff(seconds[plans[epoch].reshape(-1)]) >= 0)  # no longer sorted
    assert not np.array_equal(plans[1], plans[2]) and not np.array_equal(plans[2], plans[3])
    assert not np.array_equal(plan_epoch(seconds, 4, 1, TINY.replace(seed=TINY.seed + 1)), plans[1])


def test_no_sortagrad_shuffles_the_first_epoch_too():
    seconds = durations(40)
    plan = plan_epoch(seconds, 4, 0, TINY.replace(sortagrad=False))
    assert not np.all(np.diff(seconds[plan.reshape(-1)]) >= 0)


@pytest.mark.parametrize("count, batch_size", [(24, 4), (23, 4), (3, 4), (1, 8)])
def test_every_epoch_uses_every_utterance_in_full_batches(count, batch_size):
    seconds = durations(count)
    for epoch in range(4):
        plan = plan_epoch(seconds, batch_size, epoch, TINY)
        assert plan.shape == (-(-count // batch_size), batch_size)
        assert set(plan.ravel()) == set(range(count))


def rows_for(texts_and_seconds: list[tuple[str, float]]) -> pd.DataFrame:
    return pd.DataFrame(
        [(f"/data/{i}.flac", f"/data/{i}.txt", text, seconds) for i, (text, seconds) in enumerate(texts_and_seconds)],
        columns=REQUIRED_COLUMNS,
    )


def test_unusable_utterances_are_dropped_and_counted():
    rows = rows_for([
        ("hello world", 2.0),
        ("far too many characters for a fifth of a second", 0.2),
        ("a long lecture", 31.0),
        ("", 1.5),
        ("fits", 1.0),
    ])
    utterances = select_utterances(rows, TINY)
    assert utterances.rows["text"].tolist() == ["hello world", "fits"]
    assert [len(label) for label in utterances.labels] == [11, 4]
    assert utterances.dropped == {
        "longer than 30 s": 1, "with empty transcripts": 1, "too short for their transcripts": 1,
    }
    report = utterances.report("train")
    assert "2 utterances" in report and "1 too short for their transcripts" in report and "1 longer than 30 s" in report
    assert select_utterances(rows, TINY.replace(max_duration=1.5)).dropped["longer than 1.5 s"] == 2


def spec_augmented(seed: int, config: DS2Config = TINY.replace(spec_augment=True)) -> np.ndarray:
    """SpecAugment applied to all-ones features, so every masked cell reads 0."""
    features = tf.ones([3, 120, config.num_features])
    return augment.spec_augment(features, tf.constant([120, 70, 30]), config, tf.constant(seed, tf.int64)).numpy()


def test_spec_augment_masks_lie_within_each_utterance_and_replay_from_the_seed():
    masked = spec_augmented(5)
    masked_frames = (masked == 0).all(axis=2)  # [batch, frames]: a time mask zeroes a whole frame
    masked_bins = (masked == 0).all(axis=1)  # [batch, bins]: a frequency mask zeroes a whole bin
    for row, length in enumerate((120, 70, 30)):
        assert not masked_frames[row, length:].any()
    assert masked_frames.any() and masked_bins.any()
    assert set(np.unique(masked)) == {0.0, 1.0}
    np.testing.assert_array_equal(spec_augmented(5), masked)
    assert not np.array_equal(spec_augmented(6), masked)


def test_resumed_dataset_replays_the_remaining_batches_with_the_same_augmentation(corpus):
    """skip_batches must give exactly the batches (and random augmentations) a full run would."""
    config = TINY.replace(spec_augment=True, speed_perturb=True, noise_snr_db=20.0)
    utterances = select_utterances(read_manifest(corpus["train"]), config)
    full = list(training_dataset(utterances, config, 4, range(0, 2)))
    resumed = list(training_dataset(utterances, config, 4, range(0, 2), skip_batches=3))
    assert len(full) == 10 and len(resumed) == 7
    for (inputs, targets), (expected_inputs, expected_targets) in zip(resumed, full[3:]):
        for name in ("waveforms", "lengths", "augment_seed"):
            np.testing.assert_array_equal(inputs[name], expected_inputs[name])
        np.testing.assert_array_equal(targets["labels"], expected_targets["labels"])


def with_unreadable_file(manifest: Path, tmp_path: Path) -> tuple[Utterances, str]:
    """The manifest's utterances plus a copy of the first row whose audio file is not audio."""
    rows = read_manifest(manifest)
    broken = tmp_path / "broken.flac"
    write_garbage(broken)
    rows = pd.concat([rows, rows.head(1).assign(audio_path=str(broken))], ignore_index=True)
    return select_utterances(rows, TINY), str(broken)


def test_unreadable_audio_is_skipped_and_reported_by_the_pipeline(corpus, tmp_path, capsys):
    utterances, broken = with_unreadable_file(corpus["val"], tmp_path)
    dataset, loader = evaluation_dataset(utterances, TINY, 2)
    frames = {}
    for inputs, _, indices in dataset:
        frames.update(zip(indices.numpy(), analysis_frames(inputs["lengths"].numpy(), TINY)))
    assert sorted(frames) == list(range(len(utterances)))
    # The broken file stands in as one window of silence: no utterance ever has zero frames.
    assert frames.pop(len(utterances) - 1) == 1 and all(frames.values())
    assert list(loader.failures) == [broken] and "unreadable" in loader.failures[broken]
    printed = capsys.readouterr().err
    assert printed.count("skipping unreadable audio") == 1 and broken in printed


def test_inference_skips_and_reports_unreadable_audio(trained_model, corpus, tmp_path):
    utterances, broken = with_unreadable_file(corpus["val"], tmp_path)
    result = run_inference(load_model_file(trained_model, compile=False), utterances, 4, progress=False)
    assert sorted(result.indices) == list(range(len(utterances) - 1))
    assert list(result.failures) == [broken]
