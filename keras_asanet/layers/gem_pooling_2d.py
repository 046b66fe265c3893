"""Generalized-mean (GeM) global pooling over the two spatial axes."""

import keras
from keras import ops

from keras_asanet.layers.validation import (
    check_positive_number,
    check_rank,
    standardize_data_format,
)


def generalized_mean(x, p, eps=1e-6, axis=(1, 2), keepdims=False):
    """`(mean(max(x, eps) ** p over axis)) ** (1 / p)`, computed in float32.

    The power is taken in float32 whatever the dtype of `x` so that `x ** p` cannot overflow
    float16 (e.g. `50 ** 3` does); the result is cast back to the dtype of `x`.

    Args:
        x: a tensor.
        p: the exponent, a Python number or a tensor broadcastable against the pooled result.
        eps: inputs are clamped at `eps` first, so negative activations and zeros are safe.
        axis: the axes averaged over.
        keepdims: keep the pooled axes with size 1.

    Returns:
        The pooled tensor, in the dtype of `x`.
    """
    dtype = x.dtype
    x = ops.maximum(ops.cast(x, "float32"), eps)
    p = ops.cast(p, "float32")
    pooled = ops.mean(ops.power(x, p), axis=axis, keepdims=keepdims)
    return ops.cast(ops.power(pooled, 1.0 / p), dtype)


@keras.saving.register_keras_serializable(package="keras_asanet")
class GeMPooling2D(keras.layers.Layer):
    """Generalized-mean (GeM) pooling over the height and width of a feature map.

    GeM interpolates between average pooling (`p = 1`) and max pooling (`p -> inf`):
    `f_c = (1/(HW) * sum_{h,w} max(x_{hwc}, eps) ** p) ** (1/p)`. With a trainable `p`
    (initialised at 3, as in AGW) the network learns how peaked the pooling should be. It is
    the spatial pooling `F_SP` of ASA-Net (used frame by frame before temporal averaging).

    Args:
        p: float > 0, the initial exponent. Default 3.0.
        trainable_p: whether `p` is learned. When False `p` is still stored as a
            (non-trainable) weight so that saved models keep it.
        eps: float > 0, inputs are clamped at `eps` before the power. Default 1e-6.
        keepdims: keep the spatial axes with size 1. Default False.
        data_format: `"channels_last"` (`(B, H, W, C)`) or `"channels_first"` (`(B, C, H, W)`);
            `None` means `keras.config.image_data_format()`.
        **kwargs: base `keras.layers.Layer` arguments (`name`, `dtype`, ...).

    Call arguments:
        inputs: a rank-4 tensor `(B, H, W, C)` (or `(B, C, H, W)` for channels_first).

    Returns:
        `(B, C)`, or `(B, 1, 1, C)` / `(B, C, 1, 1)` with `keepdims=True`. The power is
        computed in float32 under mixed precision; the output has the compute dtype.

    Note:
        `p` is not clamped during training (as in AGW's `GeneralizedMeanPoolingP`); with
        ordinary learning rates it stays near its initial value.

    Example:

    ```python
    import numpy as np
    from keras_asanet.layers import GeMPooling2D

    feature_maps = np.random.rand(2, 16, 8, 32).astype("float32")
    pooled = GeMPooling2D(p=3.0)(feature_maps)  # (2, 32)
    ```

    Reference:
        Radenovic et al., "Fine-tuning CNN image retrieval with no human annotation" (GeM);
        used as `F_SP` in Eq. 2-6 of Chai et al. (ASA-Net), following AGW.
    """

    def __init__(
        self,
        p=3.0,
        trainable_p=True,
        eps=1e-6,
        keepdims=False,
        data_format=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.initial_p = check_positive_number(p, "p")
        self.trainable_p = bool(trainable_p)
        self.eps = check_positive_number(eps, "eps")
        self.keepdims = bool(keepdims)
        self.data_format = standardize_data_format(data_format)

    def build(self, input_shape):
        check_rank(input_shape, 4, "GeMPooling2D")
        self.p = self.add_weight(
            name="p",
            shape=(1,),
            initializer=keras.initializers.Constant(self.initial_p),
            trainable=self.trainable_p,
        )
        self.built = True

    def call(self, inputs):
        check_rank(inputs.shape, 4, "GeMPooling2D")
        axis = (1, 2) if self.data_format == "channels_last" else (2, 3)
        return generalized_mean(inputs, self.p, self.eps, axis=axis, keepdims=self.keepdims)

    def compute_output_shape(self, input_shape):
        input_shape = check_rank(input_shape, 4, "GeMPooling2D")
        if self.data_format == "channels_last":
            if self.keepdims:
                return (input_shape[0], 1, 1, input_shape[3])
            return (input_shape[0], input_shape[3])
        if self.keepdims:
            return (input_shape[0], input_shape[1], 1, 1)
        return (input_shape[0], input_shape[1])

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "p": self.initial_p,
                "trainable_p": self.trainable_p,
                "eps": self.eps,
                "keepdims": self.keepdims,
                "data_format": self.data_format,
            }
        )
        return config
