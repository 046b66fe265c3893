"""The AGW non-local (self-attention) block for 2-D feature maps."""

import keras
from keras import ops

from keras_asanet.layers.data_format import (
    compute_data_format,
    from_compute,
    shape_to_compute,
    to_compute,
)
from keras_asanet.layers.fused_batch_norm import FusedBatchNormalization
from keras_asanet.layers.sublayer_call import call_sublayer
from keras_asanet.layers.validation import standardize_data_format


def torch_default_conv_initializer():
    """PyTorch's default `nn.Conv2d` kernel initializer.

    `kaiming_uniform_(a=sqrt(5))` is a uniform distribution on `[-1/sqrt(fan_in),
    1/sqrt(fan_in)]`, i.e. `VarianceScaling(1/3, "fan_in", "uniform")`.
    """
    return keras.initializers.VarianceScaling(
        scale=1.0 / 3.0, mode="fan_in", distribution="uniform"
    )


@keras.saving.register_keras_serializable(package="keras_asanet")
class NonLocalBlock2D(keras.layers.Layer):
    """A residual non-local block (dot-product form) as used by the AGW re-ID baseline.

    It lets every position of a frame's feature map aggregate features from every other
    position, which AGW (and ASA-Net, built on AGW) inserts into ResNet-50's layer2 and
    layer3. With `x` of `C` channels and `N = H * W` positions:

    ```
    theta, phi, g = conv1x1(x)            # each C -> C_i channels (with bias)
    f = theta phi^T / N                   # (N, N) pairwise affinities, "dot product" form
    y = f g                               # (N, C_i)
    z = x + BN(conv1x1(y))                # C_i -> C channels, then batch norm
    ```

    The batch norm's `gamma` and `beta` start at zero (`zero_init=True`), so the block is
    exactly the identity when created and the pretrained backbone it is inserted into keeps
    its behaviour at the start of training.

    `C_i = C // reduction` (AGW: `reduction=2`) unless `inter_channels` is given. Note that the
    released AGW code computes `reduc_ratio // reduc_ratio`, i.e. `C_i = 1`; pass
    `inter_channels=1` to reproduce that literally.

    Args:
        reduction: int, `C_i = C // reduction`. Defaults to 2.
        inter_channels: int or None, overrides `reduction` when given.
        zero_init: bool, initialise the output batch norm's `gamma` (and `beta`) to zero so
            that the block starts as the identity. Defaults to `True`. With `False`, `gamma`
            starts at one.
        kernel_initializer: initializer of the four 1x1 convolution kernels. Defaults to
            PyTorch's default convolution initializer. Biases start at zero.
        bn_epsilon: float, batch-norm epsilon. Defaults to `1e-5` (PyTorch).
        bn_momentum: float, batch-norm momentum (Keras convention). Defaults to `0.9`.
        data_format: `"channels_last"` or `"channels_first"`; `None` uses
            `keras.config.image_data_format()`. On TensorFlow without a GPU a channels-first
            layer computes channels-last inside (same weights), as TensorFlow's CPU
            convolutions may not support channels-first.
        **kwargs: base `keras.layers.Layer` arguments.

    Call arguments:
        inputs: a 4-D tensor `(N, H, W, C)` (or `(N, C, H, W)` channels-first).
        training: bool, batch statistics (`True`) or moving statistics for the output
            batch norm.

    Returns:
        A tensor with the shape of `inputs`.

    Example:

    >>> block = NonLocalBlock2D()
    >>> x = np.random.rand(2, 16, 8, 64).astype("float32")
    >>> np.allclose(keras.ops.convert_to_numpy(block(x)), x)  # the identity at first
    True

    Reference:
        Wang et al., "Non-local Neural Networks", CVPR 2018; Ye et al., "Deep Learning for
        Person Re-identification: A Survey and Outlook" (AGW), TPAMI 2021. ASA-Net uses AGW as
        its baseline (paper §IV-B).
    """

    def __init__(
        self,
        reduction=2,
        inter_channels=None,
        zero_init=True,
        kernel_initializer=None,
        bn_epsilon=1e-5,
        bn_momentum=0.9,
        data_format=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if isinstance(reduction, bool) or not isinstance(reduction, int) or reduction < 1:
            raise ValueError(
                f"`reduction` must be a positive integer; received reduction={reduction!r}."
            )
        if inter_channels is not None and (
            isinstance(inter_channels, bool)
            or not isinstance(inter_channels, int)
            or inter_channels < 1
        ):
            raise ValueError(
                "`inter_channels` must be None or a positive integer; received "
                f"inter_channels={inter_channels!r}."
            )
        self.reduction = reduction
        self.inter_channels = inter_channels
        self.zero_init = bool(zero_init)
        if kernel_initializer is None:
            kernel_initializer = torch_default_conv_initializer()
        self.kernel_initializer = keras.initializers.serialize(
            keras.initializers.get(kernel_initializer)
        )
        self.bn_epsilon = float(bn_epsilon)
        self.bn_momentum = float(bn_momentum)
        self.data_format = standardize_data_format(data_format)
        self._channel_axis = -1 if self.data_format == "channels_last" else 1
        # The format the sublayers run in: channels-last on TensorFlow-CPU (see data_format.py).
        self._compute_format = compute_data_format(self.data_format)

    def _conv(self, filters, name):
        return keras.layers.Conv2D(
            filters,
            1,
            use_bias=True,
            kernel_initializer=keras.initializers.deserialize(self.kernel_initializer),
            bias_initializer="zeros",
            data_format=self._compute_format,
            dtype=self.dtype_policy,
            name=name,
        )

    def build(self, input_shape):
        input_shape = tuple(input_shape)
        if len(input_shape) != 4:
            raise ValueError(
                f"NonLocalBlock2D expects a 4-D input; received input_shape={input_shape}."
            )
        channels = input_shape[self._channel_axis]
        if channels is None:
            raise ValueError(
                "NonLocalBlock2D needs a known channel dimension; received "
                f"input_shape={input_shape}."
            )
        inter = self.inter_channels or channels // self.reduction
        if inter < 1:
            raise ValueError(
                f"`reduction`={self.reduction} leaves no channels for an input with "
                f"{channels} channels (input_shape={input_shape}); expected "
                "reduction <= channels."
            )
        self.channels = channels
        self.inter_dim = inter
        self.g = self._conv(inter, "g")
        self.theta = self._conv(inter, "theta")
        self.phi = self._conv(inter, "phi")
        self.w_conv = self._conv(channels, "w_conv")
        gamma = "zeros" if self.zero_init else "ones"
        self.w_bn = FusedBatchNormalization(
            axis=-1 if self._compute_format == "channels_last" else 1,
            epsilon=self.bn_epsilon,
            momentum=self.bn_momentum,
            gamma_initializer=gamma,
            beta_initializer="zeros",
            dtype=self.dtype_policy,
            name="w_bn",
        )
        input_shape = shape_to_compute(input_shape, self.data_format, self._compute_format)
        for conv in (self.g, self.theta, self.phi):
            conv.build(input_shape)
        inner_shape = self.g.compute_output_shape(input_shape)
        self.w_conv.build(inner_shape)
        self.w_bn.build(input_shape)
        self.built = True

    def _positions(self, t):
        """`(N, H, W, C_i)` or `(N, C_i, H, W)` -> channels-last `(N, H, W, C_i)`."""
        if self._compute_format == "channels_first":
            t = ops.transpose(t, (0, 2, 3, 1))
        return t

    def call(self, inputs, training=None):
        inputs = to_compute(inputs, self.data_format, self._compute_format)
        theta = self._positions(call_sublayer(self.theta, inputs))
        phi = self._positions(call_sublayer(self.phi, inputs))
        g = self._positions(call_sublayer(self.g, inputs))
        nhwc_shape = ops.shape(theta)
        flat = (nhwc_shape[0], -1, self.inter_dim)
        theta = ops.reshape(theta, flat)
        phi = ops.reshape(phi, flat)
        g = ops.reshape(g, flat)
        f = ops.matmul(theta, ops.transpose(phi, (0, 2, 1)))
        num_positions = ops.cast(ops.shape(f)[-1], f.dtype)
        y = ops.matmul(f / num_positions, g)
        y = ops.reshape(y, nhwc_shape)
        if self._compute_format == "channels_first":
            y = ops.transpose(y, (0, 3, 1, 2))
        outputs = inputs + call_sublayer(
            self.w_bn, call_sublayer(self.w_conv, y), training=training
        )
        return from_compute(outputs, self.data_format, self._compute_format)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "reduction": self.reduction,
                "inter_channels": self.inter_channels,
                "zero_init": self.zero_init,
                "kernel_initializer": self.kernel_initializer,
                "bn_epsilon": self.bn_epsilon,
                "bn_momentum": self.bn_momentum,
                "data_format": self.data_format,
            }
        )
        return config
