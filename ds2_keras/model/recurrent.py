"""Keras' GRU and LSTM layers, with the inputs of all time steps projected before the recurrent loop.

Keras runs its generic (non-cuDNN) recurrent kernel as a loop whose every step multiplies that
step's input by the input kernel, then the state by the recurrent kernel: 2 x T small matmuls of
[batch, features] per layer and direction, and as many again in the backward pass. The input
part does not depend on the state, so here it is one [batch x T, features] x [features, gates]
matmul before the loop (and one for its gradient), and each step multiplies only the state.
The GRU's loop then runs with a hand-written backward pass (gru_recurrence.py), which keeps the
recurrent kernel's gradient out of the loop.
Same weights, same masking (Keras' own loop, `keras.src.backend.rnn`, carries the state over
masked steps exactly as before), same results up to float rounding.

The layers are the Keras classes under the same class names, so model files keep their weight
paths and load unchanged either way. Where cuDNN can run (a GPU, `use_cudnn` not False), Keras'
own path is taken unchanged: cuDNN already projects the inputs in one matmul.
"""
from __future__ import annotations

import importlib

import keras
import tensorflow as tf
from keras import layers, ops
from keras.src import backend as keras_backend

from ds2_keras.model.gru_recurrence import gru_recurrence

_PACKAGE = "ds2"
# The module itself: the package's `rnn` attribute is a function of the same name.
_KERAS_TF_RNN = importlib.import_module("keras.src.backend.tensorflow.rnn")


def _cudnn_possible(layer: layers.RNN) -> bool:
    """Keras' own test for a GPU, so this path and Keras' cuDNN choice never disagree."""
    return layer.use_cudnn is not False and _KERAS_TF_RNN._is_gpu_available()


def _projectable(layer: layers.RNN, training: bool) -> bool:
    """The projected loop covers what the model uses: no dropout inside the cell, no unrolling."""
    cell = layer.cell
    return not layer.unroll and not cell.recurrent_dropout and not (training and cell.dropout)


def _recurrence_written_out(cell: layers.GRUCell) -> bool:
    """gru_recurrence covers Keras' default GRU cell."""
    return (cell.reset_after and cell.use_bias and cell.activation is keras.activations.get("tanh")
            and cell.recurrent_activation is keras.activations.get("sigmoid"))


def _loop(layer: layers.RNN, step, projected, initial_state, mask):
    """Keras' generic recurrent loop over `projected` (as RNN.inner_loop runs it over the inputs)."""
    return keras_backend.rnn(
        step, projected, list(initial_state), go_backwards=layer.go_backwards, mask=mask, unroll=False,
        input_length=projected.shape[1], zero_output_for_mask=layer.zero_output_for_mask,
        return_all_outputs=layer.return_sequences)


@keras.saving.register_keras_serializable(_PACKAGE)
class GRU(layers.GRU):
    """keras.layers.GRU whose generic kernel projects all inputs with one matmul before the loop."""

    def inner_loop(self, sequences, initial_state, mask, training=False):
        if _cudnn_possible(self) or not _projectable(self, training):
            return super().inner_loop(sequences, initial_state, mask, training=training)
        if tf.nest.is_nested(initial_state):
            initial_state = initial_state[0]
        if tf.nest.is_nested(mask):
            mask = mask[0]
        cell = self.cell
        units = cell.units
        kernel, recurrent_kernel = cell.kernel, cell.recurrent_kernel
        input_bias = recurrent_bias = None
        if cell.use_bias:
            if cell.reset_after:
                input_bias, recurrent_bias = cell.bias[0], cell.bias[1]
            else:
                input_bias = cell.bias
        projected = ops.matmul(sequences, kernel)
        if input_bias is not None:
            projected = projected + input_bias
        if _recurrence_written_out(cell):
            return self._written_out_loop(projected, initial_state, mask, recurrent_kernel, recurrent_bias)

        def step(x, states):
            h_tm1 = states[0]
            x_z, x_r, x_h = ops.split(x, 3, axis=-1)
            if cell.reset_after:
                inner = ops.matmul(h_tm1, recurrent_kernel)
                if recurrent_bias is not None:
                    inner = inner + recurrent_bias
                recurrent_z, recurrent_r, recurrent_h = ops.split(inner, 3, axis=-1)
                z = cell.recurrent_activation(x_z + recurrent_z)
                r = cell.recurrent_activation(x_r + recurrent_r)
                hh = cell.activation(x_h + r * recurrent_h)
            else:
                inner = ops.matmul(h_tm1, recurrent_kernel[:, : 2 * units])
                recurrent_z, recurrent_r = ops.split(inner, 2, axis=-1)
                z = cell.recurrent_activation(x_z + recurrent_z)
                r = cell.recurrent_activation(x_r + recurrent_r)
                hh = cell.activation(x_h + ops.matmul(r * h_tm1, recurrent_kernel[:, 2 * units:]))
            h = z * h_tm1 + (1 - z) * hh
            return h, [h]

        return _loop(self, step, projected, [initial_state], mask)

    def _written_out_loop(self, projected, initial_state, mask, recurrent_kernel, recurrent_bias):
        """Keras' loop's results, from gru_recurrence and its hand-written backward pass."""
        time_major = tf.transpose(projected, (1, 0, 2))
        if mask is None:
            mask = tf.ones(tf.shape(time_major)[:2], tf.bool)
        else:
            mask = tf.transpose(tf.cast(mask, tf.bool))
        mask = mask[..., tf.newaxis]  # [T, batch, 1], as the time-major inputs
        if self.go_backwards:
            time_major, mask = tf.reverse(time_major, [0]), tf.reverse(mask, [0])
        outputs, state = gru_recurrence(time_major, mask, initial_state, tf.convert_to_tensor(recurrent_kernel),
                                        recurrent_bias, self.zero_output_for_mask)
        return outputs[-1], tf.transpose(outputs, (1, 0, 2)), [state]


@keras.saving.register_keras_serializable(_PACKAGE)
class LSTM(layers.LSTM):
    """keras.layers.LSTM whose generic kernel projects all inputs with one matmul before the loop."""

    def inner_loop(self, sequences, initial_state, mask, training=False):
        if _cudnn_possible(self) or not _projectable(self, training):
            return super().inner_loop(sequences, initial_state, mask, training=training)
        if tf.nest.is_nested(mask):
            mask = mask[0]
        cell = self.cell
        recurrent_kernel = cell.recurrent_kernel
        projected = ops.matmul(sequences, cell.kernel)
        if cell.use_bias:
            projected = projected + cell.bias

        def step(x, states):
            h_tm1, c_tm1 = states
            z = x + ops.matmul(h_tm1, recurrent_kernel)
            z0, z1, z2, z3 = ops.split(z, 4, axis=-1)
            i = cell.recurrent_activation(z0)
            f = cell.recurrent_activation(z1)
            c = f * c_tm1 + i * cell.activation(z2)
            o = cell.recurrent_activation(z3)
            h = o * cell.activation(c)
            return h, [h, c]

        return _loop(self, step, projected, initial_state, mask)
