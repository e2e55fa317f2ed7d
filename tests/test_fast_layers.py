"""ds2's GRU, LSTM (inputs projected before the loop; the GRU's backward pass written out) and
Conv2D (gradients as forward convolutions) against Keras' and TensorFlow's own on the same weights."""
from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from ds2_keras.model.recurrent import GRU, LSTM, _recurrence_written_out

LENGTHS = [9, 4, 1, 7]  # right-padded to 9 frames, as the model's masks are


def _pair(kind: str, go_backwards: bool, **options):
    """(Keras' layer, ds2's layer) holding the same weights, built on [batch, 9, 5] inputs."""
    keras_class, ds2_class = (keras.layers.GRU, GRU) if kind == "gru" else (keras.layers.LSTM, LSTM)
    reference = keras_class(6, return_sequences=True, go_backwards=go_backwards, **options)
    projected = ds2_class(6, return_sequences=True, go_backwards=go_backwards, **options)
    reference.build((None, 9, 5))
    projected.build((None, 9, 5))
    rng = np.random.default_rng(0)
    weights = [rng.normal(0, 0.5, w.shape).astype(np.float32) for w in reference.get_weights()]
    reference.set_weights(weights)
    projected.set_weights(weights)
    return reference, projected


def _inputs():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(len(LENGTHS), 9, 5)).astype(np.float32)
    mask = np.arange(9)[None, :] < np.array(LENGTHS)[:, None]
    return tf.constant(x * mask[..., None]), tf.constant(mask)


def _output_weights(y):
    """A different weight for every output, so that every output's gradient counts."""
    return tf.reshape(tf.cos(tf.range(tf.size(y), dtype=tf.float32)), tf.shape(y))


def _outputs_and_gradients(layer, x, mask, training):
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = layer(x, mask=mask, training=training)
        loss = tf.reduce_sum(y * _output_weights(y))
    return y.numpy(), [g.numpy() for g in tape.gradient(loss, [x] + layer.trainable_weights)]


@pytest.mark.parametrize("kind", ["gru", "lstm"])
@pytest.mark.parametrize("go_backwards", [False, True])
@pytest.mark.parametrize("training", [False, True])
def test_projected_layer_equals_keras_layer_with_masking(kind, go_backwards, training):
    reference, projected = _pair(kind, go_backwards)
    x, mask = _inputs()
    expected, expected_gradients = _outputs_and_gradients(reference, x, mask, training)
    got, gradients = _outputs_and_gradients(projected, x, mask, training)
    np.testing.assert_allclose(got, expected, atol=1e-5)
    for g, e in zip(gradients, expected_gradients):
        np.testing.assert_allclose(g, e, atol=1e-5)


@pytest.mark.parametrize("go_backwards", [False, True])
def test_gru_final_state_and_initial_state_gradients_equal_keras(go_backwards):
    """The hand-written backward pass (gru_recurrence) also carries the gradients of a returned final
    state and last output back into a given initial state."""
    reference, projected = _pair("gru", go_backwards, return_state=True)
    assert _recurrence_written_out(projected.cell)
    x, mask = _inputs()
    initial = tf.constant(np.random.default_rng(3).normal(size=(len(LENGTHS), 6)).astype(np.float32))
    results = []
    for layer in (reference, projected):
        with tf.GradientTape() as tape:
            tape.watch([x, initial])
            outputs, state = layer(x, mask=mask, initial_state=initial)
            loss = tf.reduce_sum(outputs * _output_weights(outputs)) + tf.reduce_sum(state * _output_weights(state))
        gradients = tape.gradient(loss, [x, initial] + layer.trainable_weights)
        results.append([outputs.numpy(), state.numpy()] + [g.numpy() for g in gradients])
    for got, expected in zip(results[1], results[0]):
        np.testing.assert_allclose(got, expected, atol=1e-5)


def test_gru_without_reset_after_equals_keras_gru():
    reference, projected = _pair("gru", False, reset_after=False)
    x, mask = _inputs()
    np.testing.assert_allclose(projected(x, mask=mask).numpy(), reference(x, mask=mask).numpy(), atol=1e-5)


def test_bidirectional_projected_gru_equals_keras_in_a_graph():
    """As the model runs it: Bidirectional with an explicit backward layer, traced in a tf.function."""
    layers = []
    for gru in (keras.layers.GRU, GRU):
        layer = keras.layers.Bidirectional(gru(6, return_sequences=True),
                                           backward_layer=gru(6, return_sequences=True, go_backwards=True))
        layer.build((None, 9, 5))
        layers.append(layer)
    layers[1].set_weights(layers[0].get_weights())
    x, mask = _inputs()
    expected, got = (tf.function(lambda x, m, layer=layer: layer(x, mask=m, training=True))(x, mask).numpy()
                     for layer in layers)
    np.testing.assert_allclose(got, expected, atol=1e-5)
    padded = ~mask.numpy()
    assert np.all(got[padded] == 0)  # padded frames stay zero, as Keras' own


def test_model_uses_the_projected_layers():
    from ds2_keras.core.config import preset
    from ds2_keras.model.network import build_model

    model = build_model(preset("tiny"))
    bidirectional = model.get_layer("bigru0")
    assert isinstance(bidirectional.forward_layer, GRU) and isinstance(bidirectional.backward_layer, GRU)


@pytest.mark.parametrize("shape, kernel, strides", [
    ((3, 23, 50, 1), (11, 41), (2, 2)),   # the DS2 front end's first convolution (odd leftovers included)
    ((3, 20, 31, 4), (11, 21), (1, 2)),   # and its second
    ((2, 9, 12, 3), (3, 3), (1, 1)),
    ((2, 25, 40, 1), (11, 21), (3, 2)),   # the small preset's first
    ((2, 9, 12, 3), (1, 3), (2, 2)),      # a stride phase that no kernel tap reaches
])
def test_conv2d_fast_gradients_equal_tensorflow(shape, kernel, strides):
    from ds2_keras.model.convolution import conv2d_fast_gradients

    rng = np.random.default_rng(2)
    x = tf.constant(rng.normal(size=shape).astype(np.float32))
    w = tf.constant(rng.normal(size=kernel + (shape[-1], 5)).astype(np.float32))
    results = []
    for convolve in (lambda x, w: tf.nn.conv2d(x, w, strides=[1, *strides, 1], padding="VALID"),
                     lambda x, w: conv2d_fast_gradients(x, w, strides)):
        with tf.GradientTape() as tape:
            tape.watch([x, w])
            y = convolve(x, w)
            loss = tf.reduce_sum(y * _output_weights(y))
        results.append([y.numpy()] + [g.numpy() for g in tape.gradient(loss, [x, w])])
    for got, expected in zip(results[1], results[0]):
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-4)


def test_model_uses_the_fast_convolution():
    from ds2_keras.core.config import preset
    from ds2_keras.model.convolution import Conv2D
    from ds2_keras.model.network import build_model

    assert isinstance(build_model(preset("tiny")).get_layer("conv0"), Conv2D)
