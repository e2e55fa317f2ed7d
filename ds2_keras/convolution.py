"""Keras' Conv2D with a faster kernel gradient on CPU.

On CPU, TensorFlow's Conv2DBackpropFilter is several times slower than the forward convolution
for the DS2 front end's shapes (11x41 and 11x21 kernels, strides of 2, 1 or 32 input channels):
measured on a 2-core AVX2 machine, the filter gradient of the 11x21 convolution took 3-5x the
forward pass and was the largest single cost of a training step. The same sums are a forward
convolution with batch and channels swapped,

    dW[i, j, ci, co] = sum over b, t, f of x[b, t * st + i, f * sf + j, ci] * dy[b, t, f, co]
                     = conv(x as [ci, T, F, b], dy as [t, f, b, co], dilated by the strides),

which runs at forward-convolution speed. The forward pass and the input gradient are
TensorFlow's own; only the kernel gradient is computed this way, equal up to float rounding.
The layer is Keras' Conv2D under the same class name, so model files load unchanged. On a GPU
(cuDNN's gradients are fast) and for anything but a channels-last, valid, undilated, ungrouped
convolution, Keras' own operation runs.
"""
from __future__ import annotations

import keras
import tensorflow as tf
from keras import layers

_PACKAGE = "ds2"


def conv2d_fast_filter_gradient(x: tf.Tensor, kernel: tf.Tensor, strides: tuple[int, int]) -> tf.Tensor:
    """tf.nn.conv2d(x, kernel, strides, "VALID") (channels last) whose kernel gradient is a forward convolution."""
    stride_h, stride_w = strides

    @tf.custom_gradient
    def convolve(x, kernel):
        def gradient(dy):
            dx = tf.raw_ops.Conv2DBackpropInput(input_sizes=tf.shape(x), filter=kernel, out_backprop=dy,
                                                strides=[1, stride_h, stride_w, 1], padding="VALID")
            swapped = tf.nn.conv2d(tf.transpose(x, [3, 1, 2, 0]), tf.transpose(dy, [1, 2, 0, 3]), strides=1,
                                   padding="VALID", dilations=[1, stride_h, stride_w, 1])  # [ci, >=kh, >=kw, co]
            kernel_h, kernel_w = kernel.shape[0], kernel.shape[1]
            dkernel = tf.transpose(swapped[:, :kernel_h, :kernel_w, :], [1, 2, 0, 3])
            return dx, dkernel

        return tf.nn.conv2d(x, kernel, strides=[1, stride_h, stride_w, 1], padding="VALID"), gradient

    return convolve(x, kernel)


@keras.saving.register_keras_serializable(_PACKAGE)
class Conv2D(layers.Conv2D):
    """keras.layers.Conv2D whose kernel gradient on CPU is a forward convolution (see the module)."""

    def convolution_op(self, inputs, kernel):
        plain = (self.padding == "valid" and self.data_format == "channels_last" and self.groups == 1
                 and tuple(self.dilation_rate) == (1, 1))
        if not plain or tf.config.list_logical_devices("GPU"):
            return super().convolution_op(inputs, kernel)
        return conv2d_fast_filter_gradient(inputs, tf.convert_to_tensor(kernel), tuple(self.strides))
