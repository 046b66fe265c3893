"""The ResNet bottleneck residual block (torchvision's v1.5 layout by default)."""

import keras
from keras import ops

from keras_asanet.layers.data_format import (
    compute_data_format,
    from_compute,
    shape_to_compute,
    to_compute,
)
from keras_asanet.layers.fused_batch_norm import FusedBatchNormalization
from keras_asanet.layers.instance_batch_norm import InstanceBatchNormalization
from keras_asanet.layers.sublayer_call import call_sublayer
from keras_asanet.layers.validation import standardize_data_format


def torch_resnet_kernel_initializer():
    """The convolution initializer torchvision's ResNet uses.

    `kaiming_normal_(mode="fan_out", nonlinearity="relu")`: a normal distribution with variance
    `2 / fan_out` (not truncated).
    """
    return keras.initializers.VarianceScaling(
        scale=2.0, mode="fan_out", distribution="untruncated_normal"
    )


def _positive_int(name, value):
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"`{name}` must be a positive integer; received {name}={value!r}.")
    return value


def _conv_output_size(size, stride):
    """Spatial size after a 3x3/pad-1 (or 1x1/pad-0) convolution with `stride`."""
    if size is None:
        return None
    return (size - 1) // stride + 1


@keras.saving.register_keras_serializable(package="keras_asanet")
class BottleneckBlock(keras.layers.Layer):
    """A ResNet bottleneck block: 1x1 -> 3x3 -> 1x1 convolutions plus a shortcut.

    The building block of ResNet-50 and of the residual branches of ASA-Net. Each convolution
    is bias-free and followed by batch normalisation; ReLU follows the first two and the sum
    with the shortcut. The output has `filters * expansion` channels.

    By default the block follows torchvision's "ResNet v1.5" layout: the stride sits in the
    3x3 convolution, which is explicitly zero-padded by one pixel on every side (as PyTorch's
    `padding=1`; Keras' `"same"` padding would pad asymmetrically for stride 2 and shift the
    sampling grid). With `stride_in_1x1=True` the stride sits in the first 1x1 convolution
    instead (the original "v1" layout of `keras.applications.ResNet50` and Caffe); the weights
    of both layouts have the same shapes. The shortcut is the identity when the input already
    has `filters * expansion` channels and `strides == 1`, otherwise a strided 1x1 convolution
    plus batch normalisation (the "projection shortcut"). Batch normalisation uses PyTorch's
    defaults (`epsilon=1e-5`, Keras `momentum=0.9` = PyTorch `momentum=0.1`) so imported
    torchvision weights give the same numbers.

    Args:
        filters: int, width of the two inner convolutions (torchvision's `planes`).
        strides: int, the stride of the block (1 or 2 in ResNets). Defaults to 1.
        expansion: int, the output has `filters * expansion` channels. Defaults to 4.
        use_projection: bool or None. `None` (default) picks a projection shortcut exactly
            when the input width or the stride asks for one; `True` forces it; `False`
            forbids it (an error if the shapes then do not match).
        stride_in_1x1: bool, put the stride in the first 1x1 convolution (ResNet v1) instead
            of the 3x3 one (v1.5, default `False`).
        kernel_initializer: initializer of the convolution kernels. Defaults to
            torchvision's `kaiming_normal_(mode="fan_out")`.
        bn_epsilon: float, batch-norm epsilon. Defaults to `1e-5` (PyTorch).
        bn_momentum: float, batch-norm moving-average momentum. Defaults to `0.9`.
        ibn: bool, replace the first batch norm by `InstanceBatchNormalization` (IBN-a:
            half the channels instance-normalised), for camera-style invariance. Defaults
            to `False` (torchvision's block).
        data_format: `"channels_last"` or `"channels_first"`; `None` uses
            `keras.config.image_data_format()`. On TensorFlow without a GPU a channels-first
            layer computes channels-last inside (same weights), as TensorFlow's CPU
            convolutions may not support channels-first.
        **kwargs: base `keras.layers.Layer` arguments (`name`, `dtype`, ...).

    Call arguments:
        inputs: a 4-D tensor `(N, H, W, C_in)` (channels-last) or `(N, C_in, H, W)`.
        training: bool, batch statistics (`True`) or moving statistics (`False`/`None`).

    Returns:
        A tensor `(N, H', W', filters * expansion)` with `H' = (H - 1) // strides + 1`
        (likewise `W'`), i.e. PyTorch's output size.

    Example:

    >>> block = BottleneckBlock(filters=16, strides=2)
    >>> tuple(block(np.zeros((2, 32, 16, 32), "float32")).shape)
    (2, 16, 8, 64)

    Reference:
        He et al., "Deep Residual Learning for Image Recognition", CVPR 2016 (the residual
        modules `F_residual` of the ASA-Net paper, Eq. 1).
    """

    def __init__(
        self,
        filters,
        strides=1,
        expansion=4,
        use_projection=None,
        stride_in_1x1=False,
        kernel_initializer=None,
        bn_epsilon=1e-5,
        bn_momentum=0.9,
        ibn=False,
        data_format=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.filters = _positive_int("filters", filters)
        self.strides = _positive_int("strides", strides)
        self.expansion = _positive_int("expansion", expansion)
        if use_projection not in (None, True, False):
            raise ValueError(
                f"`use_projection` must be None, True or False; received {use_projection!r}."
            )
        self.use_projection = use_projection
        self.stride_in_1x1 = bool(stride_in_1x1)
        if kernel_initializer is None:
            kernel_initializer = torch_resnet_kernel_initializer()
        # Kept serialised: every convolution gets its own copy, because one unseeded Keras
        # initializer object returns the same values each time it is called.
        self.kernel_initializer = keras.initializers.serialize(
            keras.initializers.get(kernel_initializer)
        )
        self.bn_epsilon = float(bn_epsilon)
        self.bn_momentum = float(bn_momentum)
        self.data_format = standardize_data_format(data_format)
        self._channel_axis = -1 if self.data_format == "channels_last" else 1
        # The format the sublayers run in: channels-last on TensorFlow-CPU (see data_format.py).
        self._compute_format = compute_data_format(self.data_format)
        self.output_channels = self.filters * self.expansion

        stride_1x1 = self.strides if self.stride_in_1x1 else 1
        stride_3x3 = 1 if self.stride_in_1x1 else self.strides
        self.conv1 = self._conv(self.filters, 1, stride_1x1, "conv1")
        self.ibn = bool(ibn)
        if self.ibn:
            self.bn1 = InstanceBatchNormalization(
                epsilon=self.bn_epsilon,
                momentum=self.bn_momentum,
                data_format=self._compute_format,
                dtype=self.dtype_policy,
                name="bn1",
            )
        else:
            self.bn1 = self._bn("bn1")
        self.pad2 = keras.layers.ZeroPadding2D(
            1, data_format=self._compute_format, dtype=self.dtype_policy, name="pad2"
        )
        self.conv2 = self._conv(self.filters, 3, stride_3x3, "conv2")
        self.bn2 = self._bn("bn2")
        self.conv3 = self._conv(self.output_channels, 1, 1, "conv3")
        self.bn3 = self._bn("bn3")
        # The projection shortcut is created in `build`, once the input width is known.
        self.shortcut_conv = None
        self.shortcut_bn = None

    def _conv(self, filters, kernel_size, strides, name):
        return keras.layers.Conv2D(
            filters,
            kernel_size,
            strides=strides,
            padding="valid",
            use_bias=False,
            kernel_initializer=keras.initializers.deserialize(self.kernel_initializer),
            data_format=self._compute_format,
            dtype=self.dtype_policy,
            name=name,
        )

    def _bn(self, name):
        return FusedBatchNormalization(
            axis=-1 if self._compute_format == "channels_last" else 1,
            epsilon=self.bn_epsilon,
            momentum=self.bn_momentum,
            dtype=self.dtype_policy,
            name=name,
        )

    def _needs_projection(self, in_channels):
        return self.strides != 1 or in_channels != self.output_channels

    def build(self, input_shape):
        input_shape = tuple(input_shape)
        if len(input_shape) != 4:
            raise ValueError(
                f"BottleneckBlock expects a 4-D input; received input_shape={input_shape}."
            )
        in_channels = input_shape[self._channel_axis]
        if in_channels is None:
            raise ValueError(
                "BottleneckBlock needs a known channel dimension; received "
                f"input_shape={input_shape}."
            )
        needs = self._needs_projection(in_channels)
        if self.use_projection is False and needs:
            raise ValueError(
                "`use_projection=False` needs an input with `filters * expansion` = "
                f"{self.output_channels} channels and strides=1; received "
                f"input_shape={input_shape} and strides={self.strides}."
            )
        self.has_projection = needs if self.use_projection is None else self.use_projection

        input_shape = shape_to_compute(input_shape, self.data_format, self._compute_format)
        shape = input_shape
        self.conv1.build(shape)
        shape = self.conv1.compute_output_shape(shape)
        self.bn1.build(shape)
        shape = self.pad2.compute_output_shape(shape)
        self.conv2.build(shape)
        shape = self.conv2.compute_output_shape(shape)
        self.bn2.build(shape)
        self.conv3.build(shape)
        shape = self.conv3.compute_output_shape(shape)
        self.bn3.build(shape)
        if self.has_projection:
            self.shortcut_conv = self._conv(self.output_channels, 1, self.strides, "shortcut_conv")
            self.shortcut_bn = self._bn("shortcut_bn")
            self.shortcut_conv.build(input_shape)
            self.shortcut_bn.build(self.shortcut_conv.compute_output_shape(input_shape))
        self.built = True

    def call(self, inputs, training=None):
        inputs = to_compute(inputs, self.data_format, self._compute_format)
        x = call_sublayer(self.conv1, inputs)
        x = ops.relu(call_sublayer(self.bn1, x, training=training))
        x = call_sublayer(self.conv2, call_sublayer(self.pad2, x))
        x = ops.relu(call_sublayer(self.bn2, x, training=training))
        x = call_sublayer(self.bn3, call_sublayer(self.conv3, x), training=training)
        if self.has_projection:
            shortcut = call_sublayer(
                self.shortcut_bn, call_sublayer(self.shortcut_conv, inputs), training=training
            )
        else:
            shortcut = inputs
        return from_compute(ops.relu(x + shortcut), self.data_format, self._compute_format)

    def compute_output_shape(self, input_shape):
        shape = list(input_shape)
        spatial = (1, 2) if self.data_format == "channels_last" else (2, 3)
        for axis in spatial:
            shape[axis] = _conv_output_size(shape[axis], self.strides)
        shape[self._channel_axis] = self.output_channels
        return tuple(shape)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "filters": self.filters,
                "strides": self.strides,
                "expansion": self.expansion,
                "use_projection": self.use_projection,
                "stride_in_1x1": self.stride_in_1x1,
                "kernel_initializer": self.kernel_initializer,
                "bn_epsilon": self.bn_epsilon,
                "bn_momentum": self.bn_momentum,
                "ibn": self.ibn,
                "data_format": self.data_format,
            }
        )
        return config
