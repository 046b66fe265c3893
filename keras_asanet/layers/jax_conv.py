"""Keras' `Conv2D` on JAX for maps smaller than its kernel, as patches times kernel (JAX only).

Why it exists: XLA's algebraic simplifier swaps a convolution's operands when the kernel has
more taps than the (unpadded) input has positions: it then convolves the kernel with the
input as if the input were the kernel. At the main job's 64x32 frames the stride-16 maps are
4x2 (8 positions), so every 3x3 stride-1 convolution on them (`layer4`'s and both attribute
branches' `conv2`, 9 taps) takes that path, and XLA's CPU backend runs the swapped form, and
its gradients, slowly: in a profile of the main job's JAX training step those three
convolutions took about half of the step (forward and backward), and a third of a
dense-extraction batch (`docs/performance.md`).

Here such a convolution is computed as what it is for a tiny map: the `kh * kw` shifted
views of the input side by side (the patches, `(B, H', W', kh * kw * C)`), times the kernel
reshaped to `(kh * kw * C, filters)`. That is one matrix product forward and two backward,
which XLA runs on its fast dot path. It is the same sum of products in another order, so it
agrees with Keras' convolution to float rounding (tested), not to the bit; larger maps keep
Keras' convolution, which is faster there. `call_sublayer` decides when this applies.
"""

import jax
import jax.numpy as jnp
import keras


def applies(layer, inputs):
    """Whether `conv2d_call(layer, inputs)` computes what `layer.call(inputs)` would.

    True for a built, plain `keras.layers.Conv2D` (not a subclass, which may override `call`
    or `convolution_op`) in channels-last format with stride 1, no dilation, one group and
    `"valid"` padding (ASA-Net's blocks pad explicitly before their 3x3 convolutions) whose
    output has fewer positions than the kernel has taps: the case XLA swaps.
    """
    if type(layer) is not keras.layers.Conv2D or not layer.built:
        return False
    if layer.quantization_mode is not None:
        return False
    if layer.data_format != "channels_last" or layer.padding != "valid" or layer.groups != 1:
        return False
    if any(s != 1 for s in layer.strides) or any(d != 1 for d in layer.dilation_rate):
        return False
    if not isinstance(inputs, jax.Array) or inputs.ndim != 4:
        return False
    if inputs.dtype != jnp.dtype(layer.compute_dtype):
        return False  # Keras' `__call__` would cast the input first
    kh, kw = layer.kernel_size
    out_h, out_w = inputs.shape[1] - kh + 1, inputs.shape[2] - kw + 1
    return 0 < out_h * out_w < kh * kw


def conv2d_call(layer, inputs):
    """`layer.call(inputs)` for a layer that `applies`, as patches times kernel.

    Args:
        layer: a built `keras.layers.Conv2D` that `applies` to `inputs`.
        inputs: a JAX array `(B, H, W, C)`.

    Returns:
        The layer's output `(B, H - kh + 1, W - kw + 1, filters)`: convolution, bias and
        activation, in the order of `keras.layers.Conv2D.call`.
    """
    kernel = keras.ops.convert_to_tensor(layer.kernel)  # autocast as Keras' conv reads it
    kh, kw, channels, filters = kernel.shape
    out_h, out_w = inputs.shape[1] - kh + 1, inputs.shape[2] - kw + 1
    # Tap (i, j) of every output position; the order (i, j, channel) is the kernel's own.
    patches = jnp.concatenate(
        [inputs[:, i : i + out_h, j : j + out_w, :] for i in range(kh) for j in range(kw)],
        axis=-1,
    )
    outputs = jnp.matmul(
        patches.reshape(-1, kh * kw * channels), kernel.reshape(kh * kw * channels, filters)
    ).reshape(inputs.shape[0], out_h, out_w, filters)
    if layer.use_bias:
        outputs = outputs + keras.ops.convert_to_tensor(layer.bias)
    if layer.activation is not None:
        outputs = layer.activation(outputs)
    return outputs
