"""A GRU's recurrent loop over projected inputs, with its backward pass written out.

TensorFlow differentiates a while loop step by step, and for a weight the loop reads (the
recurrent kernel) it computes that weight's whole gradient in every step: a [units, batch] x
[batch, 3 units] outer product, then a sum into the running total. At the batches a CPU trains
with (8-16) that product is mostly memory traffic: in a TensorFlow profile of six steps of the
`small` preset at batch 8 on 2 cores, the loops' gradient matmuls and sums took 20 of the 45
busy CPU-seconds. The backward loop here carries only what the recurrence needs (the state's
gradient, one [batch, 3 units] x [3 units, units] matmul a step) and keeps each step's gradient
at the gates; the recurrent kernel's and bias's gradients are then one [units, T x batch] x
[T x batch, 3 units] matmul and one sum after the loop.

Covers Keras' default cell (reset_after, tanh and sigmoid); recurrent.py falls back to
TensorFlow's own differentiation for any other.
"""
from __future__ import annotations

import tensorflow as tf


def gru_recurrence(projected: tf.Tensor, mask: tf.Tensor, initial_state: tf.Tensor, recurrent_kernel: tf.Tensor,
                   recurrent_bias: tf.Tensor, zero_output_for_mask: bool) -> tuple[tf.Tensor, tf.Tensor]:
    """(outputs [T, batch, units], final state [batch, units]) over time-major inputs.

    projected: [T, batch, 3 units], each frame's input through the input kernel and bias (z, r, h
    gates); mask: [T, batch, 1] bool. A masked frame carries the state over; it outputs zeros
    with `zero_output_for_mask`, else the previous frame's output (as Keras' loop does): the
    carried state, or zeros before the first unmasked frame.
    """
    if zero_output_for_mask:
        output_mask = mask
    else:
        output_mask = tf.cumsum(tf.cast(mask, tf.int32), axis=0) > 0

    @tf.custom_gradient
    def recurrence(projected, initial_state, recurrent_kernel, recurrent_bias):
        frames = tf.shape(projected)[0]
        # Element shapes given: TFLite's converter lowers the loop to builtin ops only with them.
        inputs = tf.TensorArray(projected.dtype, size=frames, element_shape=projected.shape[1:]).unstack(projected)
        masks = tf.TensorArray(tf.bool, size=frames, clear_after_read=False,  # read by both loops
                               element_shape=mask.shape[1:]).unstack(mask)
        # What the backward pass needs, one write each a step: the state, and the gates z, r, hh
        # with the recurrent part of hh's input (before r scales it).
        states = tf.TensorArray(projected.dtype, size=frames, element_shape=initial_state.shape)
        gates = tf.TensorArray(projected.dtype, size=frames, element_shape=initial_state.shape[:-1].concatenate(
            [4 * initial_state.shape[-1]]))

        def forward_step(t, h_prev, states, gates):
            x_z, x_r, x_h = tf.split(inputs.read(t), 3, axis=-1)
            inner = tf.matmul(h_prev, recurrent_kernel) + recurrent_bias
            recurrent_z, recurrent_r, recurrent_h = tf.split(inner, 3, axis=-1)
            z = tf.sigmoid(x_z + recurrent_z)
            r = tf.sigmoid(x_r + recurrent_r)
            hh = tf.tanh(x_h + r * recurrent_h)
            h = tf.where(masks.read(t), z * h_prev + (1 - z) * hh, h_prev)
            return t + 1, h, states.write(t, h), gates.write(t, tf.concat([z, r, hh, recurrent_h], axis=-1))

        _, final_state, states, gates = tf.while_loop(
            lambda t, *_: t < frames, forward_step, (0, initial_state, states, gates))
        states, gates = states.stack(), gates.stack()
        zeros = tf.zeros_like(states)
        outputs = tf.where(output_mask, states, zeros)
        previous_states = tf.concat([initial_state[tf.newaxis], states[:-1]], axis=0)

        def gradient(d_outputs, d_final_state):
            d_outputs = tf.TensorArray(projected.dtype, size=frames).unstack(tf.where(output_mask, d_outputs, zeros))
            saved = [tf.TensorArray(projected.dtype, size=frames).unstack(tensor)
                     for tensor in (previous_states, gates)]
            d_inputs = tf.TensorArray(projected.dtype, size=frames)
            d_inners = tf.TensorArray(projected.dtype, size=frames)
            kernel_transposed = tf.transpose(recurrent_kernel)  # once: a transposing matmul is slower

            def backward_step(t, d_h, d_inputs, d_inners):
                h_prev, step_gates = (array.read(t) for array in saved)
                z, r, hh, recurrent_h = tf.split(step_gates, 4, axis=-1)
                total = d_h + d_outputs.read(t)  # into h
                d_new = tf.where(masks.read(t), total, tf.zeros_like(total))  # into h_new, where the frame counts
                d_z = d_new * (h_prev - hh) * z * (1 - z)
                d_hh = d_new * (1 - z) * (1 - hh * hh)
                d_r = d_hh * recurrent_h * r * (1 - r)
                d_inner = tf.concat([d_z, d_r, d_hh * r], axis=-1)
                d_prev = (total - d_new) + d_new * z + tf.matmul(d_inner, kernel_transposed)
                return (t - 1, d_prev, d_inputs.write(t, tf.concat([d_z, d_r, d_hh], axis=-1)),
                        d_inners.write(t, d_inner))

            _, d_initial, d_inputs, d_inners = tf.while_loop(
                lambda t, *_: t >= 0, backward_step, (frames - 1, d_final_state, d_inputs, d_inners))
            d_inners = d_inners.stack()
            units = tf.shape(initial_state)[-1]
            d_kernel = tf.matmul(tf.reshape(previous_states, [-1, units]), tf.reshape(d_inners, [-1, 3 * units]),
                                 transpose_a=True)
            return d_inputs.stack(), d_initial, d_kernel, tf.reduce_sum(d_inners, axis=[0, 1])

        return (outputs, final_state), gradient

    return recurrence(projected, initial_state, recurrent_kernel, recurrent_bias)
