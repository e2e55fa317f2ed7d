"""The recognizer graph: waveforms -> DS2Model (features inside) -> greedy decoding and timed words, one tf.function.

`ds2 transcribe` calls it and `ds2 export` saves it for TF Serving, so a transcript from either
comes from the same ops. TensorFlow is imported on first use so that `ds2 --help` stays fast.

The graph is traced with the recurrent layers' generic kernels, never cuDNN's, on any device:
cuDNN kernels have no CPU implementation (an export from a GPU machine would not load on a
CPU-only server) and Keras' cuDNN path rejects a batch holding an utterance with no frames
(audio shorter than one analysis window), which transcription must accept.
"""
from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Iterator

if TYPE_CHECKING:
    import tensorflow as tf

    from ds2_keras.model.network import DS2Model


def recognizer(model: DS2Model) -> tf.Module:
    """A tf.Module whose `recognize(waveforms, lengths)` runs the whole pipeline in one graph.

    waveforms: float32 [batch, samples] at the model's sample rate, zero-padded; lengths: int32
    [batch] valid samples. Returns decoding.greedy_outputs_tf's tensors ("transcripts" string
    [batch], "scores" float32 [batch], and words.WORD_OUTPUTS: "words" string [batch, max_words],
    "word_starts", "word_ends", "word_confidences" float32 [batch, max_words], "word_counts"
    int32 [batch]) plus "logits" [batch, frames, classes] and "logit_lengths" int32 [batch]. The
    module tracks the model, so it can be saved as is.
    """
    import tensorflow as tf

    from ds2_keras.decode.decoders import greedy_outputs_tf
    from ds2_keras.core.frames import output_frame_seconds
    from ds2_keras.deploy.serving_inputs import check_serving_inputs

    frame_seconds = output_frame_seconds(model.ds2_config)

    def recognize(waveforms: tf.Tensor, lengths: tf.Tensor) -> dict[str, tf.Tensor]:
        waveforms, lengths = check_serving_inputs(waveforms, lengths)
        logits, logit_lengths = model.logits(waveforms, lengths)
        return {**greedy_outputs_tf(logits, logit_lengths, frame_seconds, model.alphabet), "logits": logits,
                "logit_lengths": logit_lengths}

    module = tf.Module(name="ds2_recognizer")
    module.model = model
    module.recognize = tf.function(recognize, input_signature=[
        tf.TensorSpec([None, None], tf.float32, name="waveforms"),
        tf.TensorSpec([None], tf.int32, name="lengths"),
    ])
    with generic_rnn_kernels(model):
        module.recognize.get_concrete_function()  # traced now, reused by every call from Python
    return module


@contextlib.contextmanager
def generic_rnn_kernels(model: DS2Model) -> Iterator[None]:
    """Within the block, Keras traces the model's GRU/LSTM layers without cuDNN; restored after."""
    import keras

    rnns = []
    for layer in model.layers:
        if isinstance(layer, keras.layers.Bidirectional):
            rnns += [layer.forward_layer, layer.backward_layer]
        elif isinstance(layer, (keras.layers.GRU, keras.layers.LSTM)):
            rnns.append(layer)
    saved = [layer.use_cudnn for layer in rnns]
    for layer in rnns:
        layer.use_cudnn = False
    try:
        yield
    finally:
        for layer, value in zip(rnns, saved):
            layer.use_cudnn = value
