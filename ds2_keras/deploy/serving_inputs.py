"""The serving input contract, checked in the graph: a bad request is refused with a readable
InvalidArgument error that names the cause, never answered with a silently wrong transcript.

Without these checks a lengths vector shorter than the batch would be broadcast over it, NaN
samples would come back as an empty transcript, and tf.audio.decode_wav would put the bytes it
did not expect into its error message, which a Python client then fails to decode as text
(UnicodeDecodeError instead of the error). Messages never echo the request's data.
"""
from __future__ import annotations

import tensorflow as tf

_WAV_MAGIC = ((0, b"RIFF"), (8, b"WAVE"), (12, b"fmt "))  # what decode_wav reads before anything else
_WAV_HEADER_BYTES = 36  # up to the end of a 16-byte fmt chunk, where decode_wav's chunk walk starts
_INT32_MAX = 2**31 - 1
_EXTENSIBLE = 0xFFFE  # WAVE_FORMAT_EXTENSIBLE's format tag
_EXTENSIBLE_FMT_BYTES = 40


def check_serving_inputs(waveforms: tf.Tensor, lengths: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """`waveforms` [batch, width] and `lengths` [batch], once they are known to agree: one length
    per row, each within [0, width], and only finite samples."""
    checks = [
        tf.debugging.assert_equal(tf.shape(waveforms)[0], tf.shape(lengths)[0],
                                  message="waveforms and lengths must have the same batch size"),
        tf.debugging.assert_non_negative(lengths, message="lengths must be >= 0"),
        tf.debugging.assert_less_equal(lengths, tf.shape(waveforms)[1],
                                       message="lengths must not exceed the padded width of the waveforms"),
    ]
    with tf.control_dependencies(checks):
        return tf.debugging.assert_all_finite(waveforms, "waveforms must hold finite samples"), tf.identity(lengths)


def check_wav_bytes(contents: tf.Tensor) -> tf.Tensor:
    """`contents` (one WAV file's bytes), once decode_wav is known to report any fault in words.

    decode_wav puts two things it read into its messages: the RIFF/WAVE/fmt magic it expected,
    and the id of a chunk whose size is past 2**31 - 1. Both are checked first, walking the
    chunks the way decode_wav does, so its own errors are left to the readable ones.
    """
    header = _padded_header(contents)
    magic = tf.reduce_all([tf.strings.substr(header, start, len(text)) == text for start, text in _WAV_MAGIC])
    # tf.debugging.Assert with the message only: the usual asserts would print the bytes too.
    checks = [tf.debugging.Assert(magic, ["wav_bytes must hold whole WAV files (RIFF/WAVE header not found)"])]
    with tf.control_dependencies(checks):
        sizes = _chunk_sizes_fit(contents, header)
    checks.append(tf.debugging.Assert(sizes, ["wav_bytes must hold whole WAV files (a chunk size is out of range)"]))
    with tf.control_dependencies(checks):
        return tf.identity(contents)


def plain_format_chunk(contents: tf.Tensor) -> tf.Tensor:
    """`contents` with a WAVE_FORMAT_EXTENSIBLE fmt chunk rewritten as the plain 16-byte one.

    Windows tools and soundfile write 16-bit mono PCM as WAVE_FORMAT_EXTENSIBLE (format tag
    0xFFFE, a 40-byte fmt chunk whose sub-format GUID starts with the real format tag), which
    decode_wav refuses ("Expected 16 or 18") and whose extension the chunk walk would read as a
    chunk. The plain chunk takes the sub-format's tag, so non-PCM audio still gets decode_wav's
    own "Expected 1 (PCM)". decode_wav does not read the RIFF size, which is left as it was.
    """
    header = _padded_header(contents)
    fmt_size = _little_endian(header, 16, 4)
    extensible = (_little_endian(header, 20, 2) == _EXTENSIBLE) & (fmt_size >= _EXTENSIBLE_FMT_BYTES) & (
        tf.cast(tf.strings.length(contents), tf.int64) >= 20 + fmt_size)

    def rewritten() -> tf.Tensor:
        sub_format = tf.strings.substr(contents, 20 + 24, 2)  # the GUID's first two bytes: the format tag
        rest = tf.strings.substr(contents, 20 + tf.cast(fmt_size, tf.int32), -1)
        return tf.strings.join([tf.strings.substr(contents, 0, 16), b"\x10\0\0\0", sub_format,
                                tf.strings.substr(contents, 22, 14), rest])

    return tf.cond(extensible, rewritten, lambda: contents)


def _padded_header(contents: tf.Tensor) -> tf.Tensor:
    """The first _WAV_HEADER_BYTES of `contents`, zero-padded: every header field exists even in
    a request shorter than a header."""
    return tf.strings.substr(tf.strings.join([tf.strings.substr(contents, 0, _WAV_HEADER_BYTES),
                                              b"\0" * _WAV_HEADER_BYTES]), 0, _WAV_HEADER_BYTES)


def _chunk_sizes_fit(contents: tf.Tensor, header: tf.Tensor) -> tf.Tensor:
    """Whether every chunk decode_wav would visit after the fmt chunk has a size within int32,
    offsets included (decode_wav keeps them in an int)."""
    length = tf.cast(tf.strings.length(contents), tf.int64)
    bytes_per_sample = tf.maximum(_little_endian(header, 32, 2), 1)
    first = _WAV_HEADER_BYTES + tf.where(_little_endian(header, 16, 4) == 18, 2, 0)  # its optional 2 bytes

    def next_chunk(offset, fits):
        size = _little_endian(contents, offset + 4, 4)
        # decode_wav steps over whole samples of the data chunk, over the whole of any other chunk.
        step = tf.where(tf.strings.substr(contents, offset, 4) == b"data",
                        size // bytes_per_sample * bytes_per_sample, size)
        return offset + 8 + step, (size <= _INT32_MAX) & (offset + 8 + step <= _INT32_MAX)

    _, fits = tf.while_loop(lambda offset, fits: fits & (offset + 8 <= length), next_chunk,
                            [tf.cast(first, tf.int64), tf.constant(True)])
    return fits


def _little_endian(contents: tf.Tensor, offset: tf.Tensor | int, size: int) -> tf.Tensor:
    """The unsigned little-endian integer in contents[offset:offset + size], as int64."""
    raw = tf.cast(tf.io.decode_raw(tf.strings.substr(contents, offset, size), tf.uint8), tf.int64)
    return tf.reduce_sum(raw * tf.constant([256**i for i in range(size)], tf.int64))
