"""ds2's GRU and LSTM (inputs projected before the loop) against Keras' own layers on the same weights."""
from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from ds2_keras.recurrent import GRU, LSTM

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


def _outputs_and_gradients(layer, x, mask, training):
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = layer(x, mask=mask, training=training)
        weights = tf.reshape(tf.cos(tf.range(tf.size(y), dtype=tf.float32)), tf.shape(y))  # every output counts
        loss = tf.reduce_sum(y * weights)
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
    from ds2_keras.config import preset
    from ds2_keras.model import build_model

    model = build_model(preset("tiny"))
    bidirectional = model.get_layer("bigru0")
    assert isinstance(bidirectional.forward_layer, GRU) and isinstance(bidirectional.backward_layer, GRU)

