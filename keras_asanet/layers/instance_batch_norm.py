"""IBN: instance normalisation on part of the channels, batch normalisation on the rest."""

import keras
from keras import ops

from keras_asanet.layers.fused_batch_norm import FusedBatchNormalization
from keras_asanet.layers.sublayer_call import call_sublayer
from keras_asanet.layers.validation import standardize_data_format


@keras.saving.register_keras_serializable(package="keras_asanet")
class InstanceBatchNormalization(keras.layers.Layer):
    """Instance norm on the first `ratio` of the channels, batch norm on the others (IBN-a).

    Instance normalisation removes each image's per-channel mean and scale, the part of a
    feature map that lighting, white balance and camera style change most, while the batch
    normalised channels keep the content that tells people apart. IBN-Net puts it in place
    of the first batch norm of the bottleneck blocks of ResNet stages 1-3, and re-ID
    codebases (fast-reid's `with_ibn`) use it for models that must work on cameras they were
    not trained on: the situation of the unseen synthetic scenes.

    The instance-normalised part normalises each sample and channel over the spatial
    positions (PyTorch's `InstanceNorm2d(affine=True)`: biased variance, no running
    statistics, so training and inference compute the same); the rest is a
    `keras.layers.BatchNormalization` with the given epsilon and momentum.

    Args:
        ratio: float in (0, 1), the share of channels that are instance-normalised (the first
            `int(channels * ratio)`, at least one). Defaults to `0.5`.
        epsilon: float, added to the variances. Defaults to `1e-5` (PyTorch).
        momentum: float, the batch norm's moving-average momentum. Defaults to `0.9`
            (PyTorch's 0.1).
        data_format: `"channels_last"` or `"channels_first"`; `None` uses
            `keras.config.image_data_format()`.
        **kwargs: base `keras.layers.Layer` arguments (`name`, `dtype`, ...).

    Call arguments:
        inputs: a 4-D tensor `(N, H, W, C)` (channels-last) or `(N, C, H, W)`.
        training: bool, whether the batch-normalised part uses batch statistics.

    Returns:
        A tensor of the input's shape.

    Example:
    >>> layer = InstanceBatchNormalization(ratio=0.5)
    >>> tuple(layer(np.random.rand(2, 8, 4, 6).astype("float32")).shape)
    (2, 8, 4, 6)

    Reference:
        Pan et al., "Two at Once: Enhancing Learning and Generalization Capacities via
        IBN-Net", ECCV 2018.
    """

    def __init__(self, ratio=0.5, epsilon=1e-5, momentum=0.9, data_format=None, **kwargs):
        super().__init__(**kwargs)
        ratio = float(ratio)
        if not 0.0 < ratio < 1.0:
            raise ValueError(f"`ratio` must be in (0, 1); received ratio={ratio!r}.")
        self.ratio = ratio
        self.epsilon = float(epsilon)
        self.momentum = float(momentum)
        self.data_format = standardize_data_format(data_format)
        self._channel_axis = -1 if self.data_format == "channels_last" else 1
        self._spatial_axes = (1, 2) if self.data_format == "channels_last" else (2, 3)
        self.batch_norm = FusedBatchNormalization(
            axis=self._channel_axis,
            epsilon=self.epsilon,
            momentum=self.momentum,
            dtype=self.dtype_policy,
            name="batch_norm",
        )

    def build(self, input_shape):
        if len(input_shape) != 4:
            raise ValueError(
                f"InstanceBatchNormalization expects 4-D maps; received shape {input_shape}."
            )
        channels = input_shape[self._channel_axis]
        if channels is None or channels < 2:
            raise ValueError(
                "InstanceBatchNormalization needs a known channel count of at least 2; "
                f"received shape {input_shape}."
            )
        self.instance_channels = min(channels - 1, max(1, int(channels * self.ratio)))
        self.gamma = self.add_weight(
            shape=(self.instance_channels,), initializer="ones", name="gamma"
        )
        self.beta = self.add_weight(
            shape=(self.instance_channels,), initializer="zeros", name="beta"
        )
        rest = list(input_shape)
        rest[self._channel_axis] = channels - self.instance_channels
        self.batch_norm.build(tuple(rest))

    def call(self, inputs, training=None):
        k = self.instance_channels
        axis = self._channel_axis
        first, second = ops.split(inputs, [k], axis=axis)
        # Statistics in float32 whatever the compute dtype (as Keras' own normalisations).
        x = ops.cast(first, "float32")
        mean = ops.mean(x, axis=self._spatial_axes, keepdims=True)
        var = ops.mean(ops.square(x - mean), axis=self._spatial_axes, keepdims=True)
        shape = [1, 1, 1, 1]
        shape[axis] = k
        gamma = ops.reshape(ops.cast(self.gamma, "float32"), shape)
        beta = ops.reshape(ops.cast(self.beta, "float32"), shape)
        x = (x - mean) * ops.rsqrt(var + self.epsilon) * gamma + beta
        x = ops.cast(x, inputs.dtype)
        y = call_sublayer(self.batch_norm, second, training=training)
        return ops.concatenate([x, y], axis=axis)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "ratio": self.ratio,
                "epsilon": self.epsilon,
                "momentum": self.momentum,
                "data_format": self.data_format,
            }
        )
        return config
