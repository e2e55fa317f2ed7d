"""Log-spectrogram features as Keras layers at the front of the model.

The model takes waveforms, so the features are computed wherever the model runs (on the GPU in
training, in the SavedModel when served) and training, evaluation, transcription and export
share one feature path: the model itself. The host only decodes and pads audio.

Per-utterance normalization uses only the frames inside each utterance's length, so padding a
batch never changes an utterance's features.

We use tf.signal here rather than Keras' own audio layers, which do not give these features:
`keras.layers.STFTSpectrogram` computes the DFT as a convolution whose kernels are stored as
two non-trainable weights (every model file would carry them, and files written before could not
load), and `keras.layers.MelSpectrogram` centres its frames with reflection padding (other
frame counts than the network's length bookkeeping) and clips at `top_db` below the loudest
value of the whole padded batch, so an utterance's features would depend on its batch.
"""
from __future__ import annotations

import math

import keras
import numpy as np
import tensorflow as tf
from keras import layers

from ds2_keras.core.config import DS2Config
from ds2_keras.core.frames import analysis_frames

_LOG_FLOOR = 1e-10
# The matmul DFT's power comes out times 2^20 (exact in any float format): a float16 export
# stores every constant as float16, where the floor 1e-10 is 0 (log 0 = -inf on silence) but
# 2^20 x 1e-10 is a normal number.
_MATMUL_SCALE = 2.0 ** 20
_PACKAGE = "ds2"


@keras.saving.register_keras_serializable(_PACKAGE)
class LogSpectrogram(layers.Layer):
    """[batch, samples] waveforms at config.sample_rate and sample lengths -> log (mel) power
    [batch, frames, bins] and frame lengths. Always float32, also under mixed precision."""

    def __init__(self, ds2_config: DS2Config | dict, **kwargs):
        super().__init__(dtype="float32", **{k: v for k, v in kwargs.items() if k != "dtype"})
        self.ds2_config = ds2_config if isinstance(ds2_config, DS2Config) else DS2Config.from_dict(ds2_config)
        # Set only while an export traces the model (litert.dft_as_matmul); never saved.
        self.dft_as_matmul = False

    def call(self, waveforms, lengths):
        config = self.ds2_config
        waveforms = tf.cast(waveforms, tf.float32)
        frame_lengths = analysis_frames(tf.cast(lengths, tf.int32), config)
        # Pad so that even a batch of very short clips yields at least one frame.
        waveforms = tf.pad(waveforms, [[0, 0], [0, tf.maximum(config.window_samples - tf.shape(waveforms)[1], 0)]])
        if self.dft_as_matmul:
            power = _power_by_matmul(waveforms, config)  # times _MATMUL_SCALE
        else:
            stft = tf.signal.stft(waveforms, frame_length=config.window_samples, frame_step=config.hop_samples,
                                  fft_length=config.window_samples, window_fn=tf.signal.hann_window, pad_end=False)
            power = tf.math.square(tf.abs(stft))
        if config.feature_type == "mel":
            power = tf.tensordot(power, mel_matrix(config), axes=1)
        if not self.dft_as_matmul:
            return tf.math.log(power + _LOG_FLOOR), frame_lengths
        return tf.math.log(power + _LOG_FLOOR * _MATMUL_SCALE) - math.log(_MATMUL_SCALE), frame_lengths

    def get_config(self):
        return {**super().get_config(), "ds2_config": self.ds2_config.to_dict()}


def _power_by_matmul(waveforms: tf.Tensor, config: DS2Config) -> tf.Tensor:
    """_MATMUL_SCALE x |STFT|^2 as tf.signal.stft computes it (periodic Hann window, fft_length = window), with the
    real DFT written as one matmul by windowed cos and sin matrices.

    LiteRT's RFFT2D takes only power-of-two lengths and the 20 ms window is 320 samples; a
    matmul is builtin everywhere and equals the FFT up to float rounding.
    """
    size = config.window_samples
    n = np.arange(size)
    window = 0.5 - 0.5 * np.cos(2 * np.pi * n / size)
    angles = 2 * np.pi * np.outer(n, np.arange(size // 2 + 1)) / size
    scale = math.sqrt(_MATMUL_SCALE) * window[:, None]
    frames = tf.signal.frame(waveforms, size, config.hop_samples, pad_end=False)
    # Two matmuls, not one split in two: an int8 export keeps these ops float by name (litert.py),
    # which a split's fused output names escape.
    real = tf.matmul(frames, tf.constant(scale * np.cos(angles), tf.float32))
    imaginary = tf.matmul(frames, tf.constant(scale * np.sin(angles), tf.float32))
    return tf.math.square(real) + tf.math.square(imaginary)


def mel_matrix(config: DS2Config) -> tf.Tensor:
    """[linear bins, mel bins] HTK-style triangular filters from 20 Hz to Nyquist (a constant, not a weight)."""
    return tf.signal.linear_to_mel_weight_matrix(
        num_mel_bins=config.mel_bins, num_spectrogram_bins=config.window_samples // 2 + 1,
        sample_rate=config.sample_rate, lower_edge_hertz=20.0, upper_edge_hertz=config.sample_rate / 2,
    )


@keras.saving.register_keras_serializable(_PACKAGE)
class UtteranceNormalization(layers.Layer):
    """Zero mean, unit variance per bin over each utterance's own frames; padding set to 0."""

    def __init__(self, **kwargs):
        super().__init__(dtype="float32", **{k: v for k, v in kwargs.items() if k != "dtype"})

    def call(self, features, frame_lengths):
        mask = tf.sequence_mask(frame_lengths, tf.shape(features)[1], dtype=features.dtype)[:, :, None]
        count = tf.maximum(tf.reduce_sum(mask, axis=1, keepdims=True), 1.0)
        mean = tf.reduce_sum(features * mask, axis=1, keepdims=True) / count
        variance = tf.reduce_sum(tf.square(features - mean) * mask, axis=1, keepdims=True) / count
        return (features - mean) * tf.math.rsqrt(variance + 1e-5) * mask


def normalized_features(waveforms, lengths, config: DS2Config) -> tuple[tf.Tensor, tf.Tensor]:
    """What the model's feature layers compute, outside a model (plots, tests): (features, frame lengths)."""
    features, frame_lengths = LogSpectrogram(config)(tf.convert_to_tensor(waveforms, tf.float32), lengths)
    return UtteranceNormalization()(features, frame_lengths), frame_lengths
