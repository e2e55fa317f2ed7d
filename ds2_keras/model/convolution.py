"""Keras' Conv2D with faster gradients on CPU.

On CPU, TensorFlow's Conv2DBackpropFilter and Conv2DBackpropInput are several times slower than
the forward convolution for the DS2 front end's shapes (11x41 and 11x21 kernels, strides of 2,
1 or 32 input channels). In a TF profile of one training step of the issue-12 network on a
2-core AVX2 machine, the 11x21 convolution's kernel gradient took 8.2 s and its input gradient
5.6 s, against 1.65 s for its forward pass. Both gradients are forward convolutions, which
oneDNN runs at forward speed:

- the kernel gradient, with batch and channels swapped,
      dW[i, j, ci, co] = sum over b, t, f of x[b, t * st + i, f * sf + j, ci] * dy[b, t, f, co]
                       = conv(x as [ci, T, F, b], dy as [t, f, b, co], dilated by the strides);
- the input gradient, one stride-1 convolution of dy per phase of the strides (input_gradient).

The forward pass is TensorFlow's own; the gradients equal TensorFlow's up to float rounding.
The layer is Keras' Conv2D under the same class name, so model files load unchanged. On a GPU
(cuDNN's gradients are fast) and for anything but a channels-last, valid, undilated, ungrouped
convolution, Keras' own operation runs.
"""
from __future__ import annotations

import keras
import tensorflow as tf
from keras import layers

_PACKAGE = "ds2"


def input_gradient(dy: tf.Tensor, kernel: tf.Tensor, input_shape: tf.Tensor, strides: tuple[int, int]) -> tf.Tensor:
    """The gradient of a valid, channels-last conv2d with respect to its input, as forward convolutions.

    For each phase (p, q) of the strides, the input rows p, p + sh, ... and columns q, q + sw, ...
    receive dy fully correlated with the kernel taps p, p + sh, ... and q, q + sw, ... flipped,
    input and output channels swapped: sh x sw stride-1 convolutions whose multiply-adds add up to
    the forward pass's, interleaved. (TensorFlow's Conv2DBackpropInput took 3x the forward pass
    here.)
    """
    stride_h, stride_w = strides
    rows = -(-input_shape[1] // stride_h)  # input rows of phase 0, the most of any phase
    columns = -(-input_shape[2] // stride_w)
    phase_rows = []
    for p in range(stride_h):
        phase_columns = []
        for q in range(stride_w):
            taps = kernel[p::stride_h, q::stride_w]
            if taps.shape[0] == 0 or taps.shape[1] == 0:  # a phase no tap reaches: no gradient
                part = tf.zeros(tf.stack([tf.shape(dy)[0], rows, columns, kernel.shape[2]]), dy.dtype)
            else:
                reach_h, reach_w = taps.shape[0] - 1, taps.shape[1] - 1
                flipped = tf.transpose(tf.reverse(taps, [0, 1]), [0, 1, 3, 2])
                full = tf.pad(dy, [[0, 0], [reach_h, reach_h], [reach_w, reach_w], [0, 0]])
                part = tf.nn.conv2d(full, flipped, strides=1, padding="VALID")
                # Rows past the last output's reach (the input's leftover after the last stride) get none.
                part = tf.pad(part, [[0, 0], [0, rows - tf.shape(part)[1]], [0, columns - tf.shape(part)[2]], [0, 0]])
            phase_columns.append(part)
        interleaved = tf.stack(phase_columns, axis=3)  # [batch, rows, columns, stride_w, channels]
        phase_rows.append(tf.reshape(interleaved, tf.stack([tf.shape(dy)[0], rows, columns * stride_w, -1])))
    dx = tf.reshape(tf.stack(phase_rows, axis=2), tf.stack([tf.shape(dy)[0], rows * stride_h, columns * stride_w, -1]))
    return dx[:, :input_shape[1], :input_shape[2]]


def conv2d_fast_gradients(x: tf.Tensor, kernel: tf.Tensor, strides: tuple[int, int]) -> tf.Tensor:
    """tf.nn.conv2d(x, kernel, strides, "VALID") (channels last) whose gradients are forward convolutions."""
    stride_h, stride_w = strides

    @tf.custom_gradient
    def convolve(x, kernel):
        def gradient(dy):
            dx = input_gradient(dy, kernel, tf.shape(x), strides)
            swapped = tf.nn.conv2d(tf.transpose(x, [3, 1, 2, 0]), tf.transpose(dy, [1, 2, 0, 3]), strides=1,
                                   padding="VALID", dilations=[1, stride_h, stride_w, 1])  # [ci, >=kh, >=kw, co]
            kernel_h, kernel_w = kernel.shape[0], kernel.shape[1]
            dkernel = tf.transpose(swapped[:, :kernel_h, :kernel_w, :], [1, 2, 0, 3])
            return dx, dkernel

        return tf.nn.conv2d(x, kernel, strides=[1, stride_h, stride_w, 1], padding="VALID"), gradient

    return convolve(x, kernel)


@keras.saving.register_keras_serializable(_PACKAGE)
class Conv2D(layers.Conv2D):
    """keras.layers.Conv2D whose gradients on CPU are forward convolutions (see the module)."""

    def convolution_op(self, inputs, kernel):
        plain = (self.padding == "valid" and self.data_format == "channels_last" and self.groups == 1
                 and tuple(self.dilation_rate) == (1, 1))
        if not plain or tf.config.list_logical_devices("GPU"):
            return super().convolution_op(inputs, kernel)
        return conv2d_fast_gradients(inputs, tf.convert_to_tensor(kernel), tuple(self.strides))
