"""Log-spectrogram features computed inside the TF graph.

One batched function serves training (tf.data), evaluation, transcription and the exported
SavedModel, so features cannot drift between them. Per-utterance normalization uses only the
frames inside each utterance's length, so padding a batch never changes an utterance's features.
"""
from __future__ import annotations

import tensorflow as tf

from .config import DS2Config

_LOG_FLOOR = 1e-10


def frame_counts(sample_counts: tf.Tensor, config: DS2Config) -> tf.Tensor:
    """Number of whole analysis windows in each waveform (0 for audio shorter than one window)."""
    sample_counts = tf.cast(sample_counts, tf.int32)
    frames = (sample_counts - config.window_samples) // config.hop_samples + 1
    return tf.maximum(frames, 0)


def log_spectrogram(waveforms: tf.Tensor, lengths: tf.Tensor, config: DS2Config) -> tuple[tf.Tensor, tf.Tensor]:
    """[batch, samples] float waveforms at config.sample_rate -> ([batch, frames, bins], frame lengths)."""
    waveforms = tf.convert_to_tensor(waveforms, tf.float32)
    frame_lengths = frame_counts(lengths, config)
    # Pad so that even a batch of very short clips yields at least one frame.
    waveforms = tf.pad(waveforms, [[0, 0], [0, tf.maximum(config.window_samples - tf.shape(waveforms)[1], 0)]])
    stft = tf.signal.stft(
        waveforms,
        frame_length=config.window_samples,
        frame_step=config.hop_samples,
        fft_length=config.window_samples,
        window_fn=tf.signal.hann_window,
        pad_end=False,
    )
    power = tf.math.square(tf.abs(stft))
    if config.feature_type == "mel":
        mel_matrix = tf.signal.linear_to_mel_weight_matrix(
            num_mel_bins=config.mel_bins,
            num_spectrogram_bins=config.window_samples // 2 + 1,
            sample_rate=config.sample_rate,
            lower_edge_hertz=20.0,
            upper_edge_hertz=config.sample_rate / 2,
        )
        power = tf.tensordot(power, mel_matrix, axes=1)
    features = tf.math.log(power + _LOG_FLOOR)
    return normalize_per_utterance(features, frame_lengths), frame_lengths


def normalize_per_utterance(features: tf.Tensor, frame_lengths: tf.Tensor) -> tf.Tensor:
    """Zero mean, unit variance per bin over each utterance's own frames; padding set to 0."""
    mask = tf.sequence_mask(frame_lengths, tf.shape(features)[1], dtype=features.dtype)[:, :, None]
    count = tf.maximum(tf.reduce_sum(mask, axis=1, keepdims=True), 1.0)
    mean = tf.reduce_sum(features * mask, axis=1, keepdims=True) / count
    variance = tf.reduce_sum(tf.square(features - mean) * mask, axis=1, keepdims=True) / count
    return (features - mean) * tf.math.rsqrt(variance + 1e-5) * mask
