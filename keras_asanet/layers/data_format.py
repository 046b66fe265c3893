"""Where a channels-first layer has to compute channels-last, and the transposes to do it.

TensorFlow's CPU kernels of `Conv2D` and `MaxPool` only accept NHWC unless TensorFlow was
built with oneDNN and oneDNN is enabled: on CPUs where it is not (e.g. some AMD EPYC builds, or
`TF_ENABLE_ONEDNN_OPTS=0`) a channels-first convolution fails with "The Conv2D op currently
only supports the NHWC tensor format on the CPU". The layers of this package that take a
`data_format` therefore run their convolutions channels-last on the TensorFlow backend when
no GPU is visible: they transpose a channels-first input to channels-last, run their
sublayers channels-last and transpose the result back. Weights are identical in shape and
meaning either way (a Keras `Conv2D` kernel is `(kh, kw, C_in, C_out)` in both formats and
batch-norm vectors are per channel), so a channels-first layer's weights equal a
channels-last one's. The decision is made when a layer is created.

The other way round on the PyTorch backend without a GPU: Keras' torch convolution, pooling
and batch norm take channels-first tensors, so a channels-last layer pays a transpose (and a
memory-format copy) around every one of them. There the layers of this package compute
channels-first inside and transpose once at their boundary: measured faster on CPU
(`docs/performance.md`). On a GPU, Keras' channels-last memory format is what cuDNN's tensor
cores prefer, so nothing changes there.

Layers use `compute_data_format` once in `__init__` and the `to_compute` / `from_compute` /
`shape_to_compute` helpers (plain `keras.ops`) in `build` and `call`; the backend detection
lives only here.
"""

import functools

import keras
from keras import ops

_TO_LAST = (0, 2, 3, 1)
_TO_FIRST = (0, 3, 1, 2)


@functools.cache
def _tensorflow_sees_a_gpu():
    import tensorflow as tf

    return bool(tf.config.list_physical_devices("GPU"))


def channels_first_needs_channels_last_compute():
    """True when channels-first convolutions cannot run as such: TensorFlow without a GPU."""
    return keras.backend.backend() == "tensorflow" and not _tensorflow_sees_a_gpu()


@functools.cache
def _torch_sees_a_gpu():
    import torch

    return bool(torch.cuda.is_available())


def channels_last_computes_channels_first():
    """True when channels-last layers run faster channels-first inside: PyTorch on CPU."""
    return keras.backend.backend() == "torch" and not _torch_sees_a_gpu()


def compute_data_format(data_format):
    """The format a layer with public `data_format` runs its sublayers in.

    `"channels_first"` becomes `"channels_last"` where
    `channels_first_needs_channels_last_compute()` (TensorFlow on CPU); `"channels_last"`
    becomes `"channels_first"` where `channels_last_computes_channels_first()` (PyTorch on
    CPU); otherwise the format stays.
    """
    if data_format == "channels_first" and channels_first_needs_channels_last_compute():
        return "channels_last"
    if data_format == "channels_last" and channels_last_computes_channels_first():
        return "channels_first"
    return data_format


def to_compute(x, data_format, compute_format):
    """A rank-4 tensor in the public `data_format` -> the `compute_format`."""
    if data_format == compute_format:
        return x
    return ops.transpose(x, _TO_LAST if compute_format == "channels_last" else _TO_FIRST)


def from_compute(x, data_format, compute_format):
    """A rank-4 tensor in the `compute_format` -> the public `data_format`."""
    if data_format == compute_format:
        return x
    return ops.transpose(x, _TO_FIRST if compute_format == "channels_last" else _TO_LAST)


def shape_to_compute(shape, data_format, compute_format):
    """A rank-4 shape tuple in the public `data_format` -> the `compute_format`."""
    shape = tuple(shape)
    if data_format == compute_format:
        return shape
    order = _TO_LAST if compute_format == "channels_last" else _TO_FIRST
    return tuple(shape[i] for i in order)


def shape_from_compute(shape, data_format, compute_format):
    """A rank-4 shape tuple in the `compute_format` -> the public `data_format`."""
    shape = tuple(shape)
    if data_format == compute_format:
        return shape
    order = _TO_FIRST if compute_format == "channels_last" else _TO_LAST
    return tuple(shape[i] for i in order)
