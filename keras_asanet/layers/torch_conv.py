"""Keras' channels-last `Conv2D` on PyTorch without its two layout copies (torch backend only).

Why it exists: PyTorch stores a convolution's input as `(B, C, H, W)` with channels-last
*memory* (`torch.channels_last`), which is exactly the bytes of a contiguous `(B, H, W, C)`
tensor. Keras' torch convolution does not use that: for `data_format="channels_last"` it
copies the input to channels-first memory (`permute(...).contiguous()`), then copies it back
to channels-last memory before calling `conv2d`. ASA-Net's 1x1 convolutions on the identity
map (`f_re`, `f_ir`, `f_id`) and inside ASRE (query, key, value, mask) pay those two copies
on every call, forward and backward, and for a 1x1 convolution they cost more than the
convolution itself (measured in `docs/performance.md`).

Here the input is permuted as a view, which already has the memory layout Keras' second copy
produces, so `conv2d` receives the same bytes with the same strides and runs the same kernel:
the outputs and gradients equal Keras' to the bit (tested). `call_sublayer` decides when this
applies; everything it does not cover goes through Keras.
"""

import keras
import torch

CHANNELS_LAST = torch.channels_last


def applies(layer):
    """Whether `conv2d_call(layer, x)` computes exactly what `layer.call(x)` would.

    True for a plain `keras.layers.Conv2D` (not a subclass, which may override `call` or
    `convolution_op`) in channels-last format whose padding torch can take as one symmetric
    number per side: `"valid"`, or `"same"` with stride 1 and an odd dilated kernel.
    """
    if type(layer) is not keras.layers.Conv2D or layer.data_format != "channels_last":
        return False
    return _torch_padding(layer) is not None


def _torch_padding(layer):
    """`conv2d`'s `padding` for the layer, or None where Keras would pad asymmetrically."""
    if layer.padding == "valid":
        return 0
    if layer.padding != "same" or any(stride != 1 for stride in layer.strides):
        return None
    # Stride 1: Keras pads (k - 1) * d in all, half on each side when that is even.
    totals = [(size - 1) * rate for size, rate in zip(layer.kernel_size, layer.dilation_rate)]
    if any(total % 2 for total in totals):
        return None
    return [total // 2 for total in totals]


def conv2d_call(layer, inputs):
    """`layer.call(inputs)` for a layer that `applies`, with the input permuted as a view.

    Args:
        layer: a built `keras.layers.Conv2D` with `data_format="channels_last"`.
        inputs: a torch tensor `(B, H, W, C)`.

    Returns:
        The layer's output `(B, H', W', filters)`: convolution, bias, activation, in the
        order and dtype of `keras.layers.Conv2D.call`.
    """
    kernel = keras.ops.convert_to_tensor(layer.kernel)  # autocast as Keras' conv reads it
    # (kh, kw, C / groups, F) -> (F, C / groups, kh, kw), then the kernel layout Keras gives.
    kernel = kernel.permute(3, 2, 0, 1).contiguous(memory_format=CHANNELS_LAST)
    # (B, H, W, C) -> (B, C, H, W): a view; `contiguous` copies only an input whose memory
    # is not already channels-last (e.g. a non-contiguous slice).
    x = inputs.permute(0, 3, 1, 2).contiguous(memory_format=CHANNELS_LAST)
    outputs = torch.nn.functional.conv2d(
        x,
        kernel,
        stride=tuple(layer.strides),
        padding=_torch_padding(layer),
        dilation=tuple(layer.dilation_rate),
        groups=layer.groups,
    ).permute(0, 2, 3, 1)
    if layer.use_bias:
        outputs = keras.ops.add(outputs, keras.ops.reshape(layer.bias, (1, 1, 1, layer.filters)))
    if layer.activation is not None:
        return layer.activation(outputs)
    return outputs
