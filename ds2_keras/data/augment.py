"""Training-time augmentation: SpecAugment masks, speed perturbation, additive noise.

Noise and SpecAugment are layers of the model, active only in training, so they run on the
accelerator with the features; speed perturbation resamples on the host while decoding.
Every random draw is seeded from its position in the run (the example's for speed
perturbation, the batch's first example's for noise and SpecAugment: the model's
`augment_seed` input) and a purpose number, so a resumed fit sees the same augmented batches
the interrupted one would have.
"""
from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf
from keras import layers

from ds2_keras.data.audio import resample
from ds2_keras.core.config import DS2Config

_SPEED_FACTORS = (0.9, 0.95, 1.0, 1.05, 1.1)
_NOISE, _FREQUENCY_MASK, _TIME_MASK = 1, 2, 3


def _seed(position: tf.Tensor, purpose: int, draw: int = 0) -> tf.Tensor:
    """A stateless seed that no other draw shares: (position, purpose, draw) are all distinct."""
    return tf.stack([position, tf.constant(1000 * purpose + draw, tf.int64)])


def speed_perturb(samples: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Play faster or slower (pitch moves too, as in Ko et al. 2015) by resampling."""
    factor = rng.choice(_SPEED_FACTORS)
    if factor == 1.0:
        return samples
    return resample(samples, int(round(100 * factor)), 100)


def add_noise(samples: tf.Tensor, lengths: tf.Tensor, snr_db: float, seed: tf.Tensor) -> tf.Tensor:
    """White noise at a random SNR between snr_db and snr_db + 10, inside each utterance."""
    mask = tf.sequence_mask(lengths, tf.shape(samples)[1], dtype=samples.dtype)
    count = tf.maximum(tf.reduce_sum(mask, axis=1, keepdims=True), 1.0)
    power = tf.reduce_sum(tf.square(samples) * mask, axis=1, keepdims=True) / count
    snr = tf.random.stateless_uniform([tf.shape(samples)[0], 1], _seed(seed, _NOISE, 0), snr_db, snr_db + 10.0)
    noise = tf.random.stateless_normal(tf.shape(samples), _seed(seed, _NOISE, 1))
    return samples + noise * tf.sqrt(power / tf.pow(10.0, snr / 10.0)) * mask


def _band_masks(size: tf.Tensor, limit: tf.Tensor, count: int, width: int, seed: tf.Tensor, purpose: int) -> tf.Tensor:
    """[batch, size] float mask with `count` random bands of up to `width` zeroed below `limit`."""
    batch = tf.shape(limit)[0]
    keep = tf.ones([batch, size])
    positions = tf.range(size)[None, :]
    for index in range(count):
        widths = tf.random.stateless_uniform([batch], _seed(seed, purpose, 2 * index), 0, width + 1, dtype=tf.int32)
        widths = tf.minimum(widths, limit)
        starts = tf.random.stateless_uniform([batch], _seed(seed, purpose, 2 * index + 1), 0, 2**30, dtype=tf.int32)
        starts = starts % tf.maximum(limit - widths + 1, 1)
        band = (positions >= starts[:, None]) & (positions < (starts + widths)[:, None])
        keep *= 1.0 - tf.cast(band, tf.float32)
    return keep


def spec_augment(features: tf.Tensor, frame_lengths: tf.Tensor, config: DS2Config, seed: tf.Tensor) -> tf.Tensor:
    """SpecAugment (Park et al. 2019) frequency and time masks, without time warping."""
    frames, bins = tf.shape(features)[1], tf.shape(features)[2]
    batch_bins = tf.fill([tf.shape(features)[0]], bins)
    freq_keep = _band_masks(bins, batch_bins, config.freq_masks, config.freq_mask_width, seed, _FREQUENCY_MASK)
    time_keep = _band_masks(frames, frame_lengths, config.time_masks, config.time_mask_width, seed, _TIME_MASK)
    return features * freq_keep[:, None, :] * time_keep[:, :, None]


@keras.saving.register_keras_serializable("ds2")
class WaveformNoise(layers.Layer):
    """`add_noise` in training when the config asks for it (noise_snr_db > 0); identity otherwise."""

    def __init__(self, snr_db: float, **kwargs):
        super().__init__(dtype="float32", **{k: v for k, v in kwargs.items() if k != "dtype"})
        self.snr_db = snr_db

    def call(self, waveforms, lengths, seed=None, training=None):
        if not training or seed is None or self.snr_db <= 0:
            return waveforms
        return add_noise(waveforms, lengths, self.snr_db, seed[0])

    def get_config(self):
        return {**super().get_config(), "snr_db": self.snr_db}


@keras.saving.register_keras_serializable("ds2")
class SpecAugment(layers.Layer):
    """`spec_augment` in training when the config asks for it; identity otherwise."""

    def __init__(self, ds2_config: DS2Config | dict, **kwargs):
        super().__init__(dtype="float32", **{k: v for k, v in kwargs.items() if k != "dtype"})
        self.ds2_config = ds2_config if isinstance(ds2_config, DS2Config) else DS2Config.from_dict(ds2_config)

    def call(self, features, frame_lengths, seed=None, training=None):
        if not training or seed is None or not self.ds2_config.spec_augment:
            return features
        return spec_augment(features, frame_lengths, self.ds2_config, seed[0])

    def get_config(self):
        return {**super().get_config(), "ds2_config": self.ds2_config.to_dict()}
