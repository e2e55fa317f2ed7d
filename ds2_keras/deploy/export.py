"""`ds2 export`: a SavedModel for TF Serving that takes audio and answers with timed transcripts.

The saved graph is recognizer.recognizer's, the one `ds2 transcribe` runs: feature extraction,
the network, greedy decoding and word timing, so the server needs no ds2 Python code. Signatures:

- `serving_default`: waveforms float32 [batch, samples] (zero-padded, at the model's sample
  rate, 16 kHz for every preset) and lengths int32 [batch] -> transcripts string [batch],
  scores float32 [batch] (log-probability of the greedy path), words string [batch, max_words]
  (padded with ""), word_starts, word_ends (seconds) and word_confidences float32 [batch,
  max_words] (padded with 0), word_counts int32 [batch], logits float32 [batch, frames, classes],
  logit_lengths int32 [batch]. Every output is rectangular, as TF Serving's JSON needs.
- `transcribe_wav`: wav_bytes string [batch], each a whole 16-bit PCM WAV file (plain or
  WAVE_FORMAT_EXTENSIBLE), decoded in the graph with tf.audio.decode_wav (stereo mixed down) -> the same outputs. TF has no in-graph
  resampler, so a WAV at another rate is refused with an InvalidArgument error.
- `metadata`: no inputs -> symbols string [classes] (what each logit means: "_" the CTC blank,
  then the model's alphabet, the space last), language string, sample_rate int32 and
  frame_seconds float32 (seconds per logit frame). The same facts are in
  `assets.extra/ds2.json`, for tools that read files rather than run signatures.

We save with tf.saved_model.save on a tf.Module with explicit tf.function signatures rather
than keras.export.ExportArchive: the module is the very object `ds2 transcribe` calls, and two
endpoints with string inputs and outputs need nothing Keras-specific. The recognizer traces
the recurrent layers with their generic kernels, not cuDNN's, so a model exported on a GPU
machine still runs on a CPU-only server.

Versions follow TF Serving's layout, OUT_DIR/<integer>/; without --version the next integer
after the largest existing one is used (1 for a new directory), since Serving loads the highest
number. A version is written under a hidden temporary name and renamed into place, so Serving,
which ignores non-numeric names, never sees half a model. Exports into one directory at once
choose their versions one after the other (each holds a lock on the directory meanwhile) and pass over the versions being
written, so each gets its own.
"""
from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

from ds2_keras.core.fileio import (
    OutputError, atomic_write_text, make_directory, os_cause, reporting_os_errors, reporting_tensorflow_errors,
)
from ds2_keras.core.locks import holding_directory
from ds2_keras.deploy.recognizer import generic_rnn_kernels, recognizer
from ds2_keras.deploy.serving_versions import partial_directory, remove_dead_partials, version_to_write

if TYPE_CHECKING:
    import tensorflow as tf

    from ds2_keras.model.network import DS2Model


def serving_module(model: DS2Model) -> tf.Module:
    """The recognizer plus `recognize_wav`, the graph behind the `transcribe_wav` signature."""
    import tensorflow as tf

    from ds2_keras.deploy.serving_inputs import check_wav_bytes, plain_format_chunk

    module = recognizer(model)
    sample_rate = model.ds2_config.sample_rate

    def decode(contents: tf.Tensor) -> tf.Tensor:
        audio, rate = tf.audio.decode_wav(check_wav_bytes(plain_format_chunk(contents)))
        check = tf.debugging.assert_equal(
            rate, sample_rate, message=f"WAV audio must be sampled at {sample_rate} Hz (resample before sending)")
        with tf.control_dependencies([check]):
            return tf.reduce_mean(audio, axis=1)

    def recognize_wav(wav_bytes: tf.Tensor) -> dict[str, tf.Tensor]:
        waveforms = tf.map_fn(decode, wav_bytes,
                              fn_output_signature=tf.RaggedTensorSpec([None], tf.float32, ragged_rank=0))
        return module.recognize(waveforms.to_tensor(), tf.cast(waveforms.row_lengths(), tf.int32))

    module.recognize_wav = tf.function(recognize_wav, input_signature=[
        tf.TensorSpec([None], tf.string, name="wav_bytes")])
    facts = model_facts(model)
    module.metadata = tf.function(lambda: {
        "symbols": tf.constant(facts["symbols"]), "language": tf.constant(facts["language"]),
        "sample_rate": tf.constant(facts["sample_rate"], tf.int32),
        "frame_seconds": tf.constant(facts["frame_seconds"], tf.float32)}, input_signature=[])
    return module


def model_facts(model: DS2Model) -> dict:
    """What a client needs to read the outputs: the output symbols, language, rates."""
    from ds2_keras.core.frames import output_frame_seconds

    config = model.ds2_config
    return {"symbols": list(model.alphabet.symbols), "blank_index": 0, "language": config.language,
            "sample_rate": config.sample_rate, "frame_seconds": output_frame_seconds(config)}


def export_saved_model(model: DS2Model, out_dir: str | Path, version: int | None = None) -> Path:
    """Write OUT_DIR/<version>/ (saved_model.pb, variables/) atomically; return that directory.

    OS failures (permission, full disk, a file in the way) become one OutputError naming the
    version directory, and the staging directory is removed: nothing half written is left.
    """
    import tensorflow as tf

    out_dir = make_directory(out_dir)
    with contextlib.ExitStack() as staged:
        # One export at a time chooses its version and makes its staging directory: never the same version.
        with holding_directory(out_dir):
            remove_dead_partials(out_dir)
            version = version_to_write(out_dir, version)
            staging = staged.enter_context(partial_directory(out_dir, version))
        target = out_dir / str(version)
        with reporting_tensorflow_errors(staging, target), generic_rnn_kernels(model):  # saving traces again
            module = serving_module(model)
            signatures = {"serving_default": module.recognize, "transcribe_wav": module.recognize_wav,
                          "metadata": module.metadata}
            if model.ds2_config.streaming:
                from ds2_keras.deploy.streaming import add_serving_signatures

                signatures.update(add_serving_signatures(module, model))
            # A server computes no gradients: gru_recurrence's hand-written backward pass stays out.
            options = tf.saved_model.SaveOptions(experimental_custom_gradients=False)
            tf.saved_model.save(module, str(staging), signatures=signatures, options=options)
        with reporting_os_errors(staging / "assets.extra"):
            (staging / "assets.extra").mkdir()
            atomic_write_text(staging / "assets.extra" / "ds2.json", json.dumps(model_facts(model), indent=1, ensure_ascii=False) + "\n")
        try:
            os.rename(staging, target)
        except OSError as error:  # another export took this version meanwhile
            raise OutputError(target, f"cannot move the export into place ({os_cause(error)})") from None
    return target
