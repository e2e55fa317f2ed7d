"""Frame arithmetic in one place: samples -> analysis frames -> network output frames -> seconds.

The feature layer, the convolutions' length bookkeeping, the pipeline's "too short for its
transcript" check and anything that turns an output frame into a time all call these, so they
cannot disagree. Each function works on Python ints, numpy arrays and TF tensors alike.
"""
from __future__ import annotations

from ds2_keras.core.config import DS2Config


def analysis_frames(samples, config: DS2Config):
    """Whole STFT windows in `samples` samples (0 for audio shorter than one window)."""
    frames = (samples - config.window_samples) // config.hop_samples + 1
    return (frames + abs(frames)) // 2  # max(frames, 0), for ints, arrays and tensors alike


def samples_spanned(frames, config: DS2Config):
    """Samples from the start of the first of `frames` (>= 1) analysis windows to the end of the last."""
    return (frames - 1) * config.hop_samples + config.window_samples


def strided(frames, stride: int):
    """Frames after a convolution of time stride `stride` padded to keep every input frame: ceil."""
    return (frames + stride - 1) // stride


def output_frames(samples, config: DS2Config):
    """Logit frames the network emits for `samples` samples of audio (before CTC)."""
    frames = analysis_frames(samples, config)
    for stride, _ in config.conv_strides:
        frames = strided(frames, stride)
    return frames


def output_frame_seconds(config: DS2Config) -> float:
    """Seconds between two consecutive logit frames (hop times the network's time stride)."""
    return config.hop_samples * config.time_stride / config.sample_rate


def frame_span_seconds(first, last, frame_seconds):
    """(start, end) in seconds of output frames `first` to `last` inclusive: frame i covers [i, i + 1) * frame_seconds.

    frame_seconds is output_frame_seconds(config); first and last are floats (cast integer
    tensors first), so this works on numbers, arrays and tensors alike.
    """
    return first * frame_seconds, (last + 1) * frame_seconds
