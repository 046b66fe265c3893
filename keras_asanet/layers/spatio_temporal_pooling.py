"""Spatial pooling of every frame followed by a temporal mean: `F_TP(F_SP(X))` (optionally
with the temporal standard deviation beside it, for attributes defined by change)."""

import keras
from keras import ops

from keras_asanet.layers.gem_pooling_2d import generalized_mean
from keras_asanet.layers.validation import (
    check_positive_int,
    check_positive_number,
    standardize_data_format,
)

_SPATIAL_MODES = ("gem", "avg", "max")
#: Temporal reductions: the paper's mean, or the mean with the standard deviation over the
#: frames concatenated after it (a motion cue a mean cannot carry).
TEMPORAL_MODES = ("mean", "mean_std")
# Added to the variance before the square root: the gradient of sqrt is infinite at 0 (a
# clip of identical frames).
_STD_EPS = 1e-6


@keras.saving.register_keras_serializable(package="keras_asanet")
class SpatioTemporalPooling(keras.layers.Layer):
    """Pools a clip of per-frame feature maps into one feature vector per clip.

    Every branch of ASA-Net turns a sequence of frame feature maps into a clip feature with
    `f = F_TP(F_SP(X))`: a spatial pooling of each frame (GeM by default, as in AGW) followed
    by the mean over the T frames. This layer does both in one step so that a model never has
    to fold and unfold the time axis by hand.

    A temporal mean cannot tell a person standing still from one whose legs swing: both
    average to similar maps. `temporal="mean_std"` appends the standard deviation of each
    pooled channel over the frames, `sqrt(var_t + 1e-6)`, so an attribute defined by change
    across frames (motion) is visible to what follows; the output is then `2C` wide.

    Input layout. The preferred input is the unfolded clip `(B, T, H, W, C)`
    (`(B, T, C, H, W)` for channels_first); it needs no extra argument and works for any T.
    Backbones usually run on frames folded into the batch, `(B*T, H, W, C)`; such a rank-4
    input is also accepted when `seq_len=T` is given to the constructor (the frames of one
    clip must be consecutive in the batch, i.e. the result of reshaping `(B, T, ...)` to
    `(B*T, ...)`).

    Args:
        spatial: `"gem"` (generalized mean, trainable exponent), `"avg"` or `"max"`.
        seq_len: int or None. Only needed for folded rank-4 input; the number of frames T per
            clip.
        p: initial GeM exponent (> 0), only used with `spatial="gem"`. Default 3.0.
        trainable_p: whether the GeM exponent is learned. Default True.
        eps: GeM clamp value (> 0). Default 1e-6.
        temporal: `"mean"` (default, the paper's `F_TP`) or `"mean_std"` (the mean, then the
            standard deviation over the frames).
        data_format: `"channels_last"` or `"channels_first"`; `None` means
            `keras.config.image_data_format()`.
        **kwargs: base `keras.layers.Layer` arguments.

    Call arguments:
        inputs: `(B, T, H, W, C)` / `(B, T, C, H, W)`, or folded `(B*T, H, W, C)` /
            `(B*T, C, H, W)` when `seq_len` is set.

    Returns:
        `(B, C)`: the temporal mean of the spatially pooled frames (`(B, 2C)`, mean then
        standard deviation, with `temporal="mean_std"`). GeM's power is taken in
        float32 under mixed precision; the output has the compute dtype.

    Example:

    ```python
    import numpy as np
    from keras_asanet.layers import SpatioTemporalPooling

    clip_maps = np.random.rand(2, 6, 16, 8, 32).astype("float32")  # (B, T, H, W, C)
    clip_feature = SpatioTemporalPooling(spatial="gem")(clip_maps)  # (2, 32)

    folded = clip_maps.reshape(12, 16, 8, 32)  # (B*T, H, W, C)
    same = SpatioTemporalPooling(spatial="gem", seq_len=6)(folded)  # (2, 32)
    with_change = SpatioTemporalPooling(temporal="mean_std")(clip_maps)  # (2, 64)
    ```

    Reference:
        `F_TP(F_SP(.))` in Eq. 2-6 of Chai et al., "Video Person Re-identification using
        Attribute-enhanced Features" (ASA-Net).
    """

    def __init__(
        self,
        spatial="gem",
        seq_len=None,
        p=3.0,
        trainable_p=True,
        eps=1e-6,
        temporal="mean",
        data_format=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if spatial not in _SPATIAL_MODES:
            raise ValueError(
                f"`spatial` must be one of {_SPATIAL_MODES}; received spatial={spatial!r}."
            )
        self.spatial = spatial
        self.seq_len = check_positive_int(seq_len, "seq_len", allow_none=True)
        self.initial_p = check_positive_number(p, "p")
        self.trainable_p = bool(trainable_p)
        self.eps = check_positive_number(eps, "eps")
        if temporal not in TEMPORAL_MODES:
            raise ValueError(
                f"`temporal` must be one of {TEMPORAL_MODES}; received temporal={temporal!r}."
            )
        self.temporal = temporal
        self.data_format = standardize_data_format(data_format)

    def _check_input_shape(self, shape):
        shape = tuple(shape)
        if len(shape) == 5:
            return shape
        if len(shape) == 4:
            if self.seq_len is None:
                raise ValueError(
                    "SpatioTemporalPooling received a rank-4 (folded frames) input of shape "
                    f"{shape} but seq_len=None; pass `seq_len=T` to the constructor or give "
                    "the unfolded clip (B, T, H, W, C)."
                )
            if shape[0] is not None and shape[0] % self.seq_len != 0:
                raise ValueError(
                    f"The folded batch size {shape[0]} of `inputs` is not a multiple of "
                    f"seq_len={self.seq_len}."
                )
            return shape
        raise ValueError(
            "`inputs` of SpatioTemporalPooling must have rank 5 (B, T, H, W, C) or rank 4 "
            f"(B*T, H, W, C) with seq_len set; received shape {shape}."
        )

    def build(self, input_shape):
        self._check_input_shape(input_shape)
        if self.spatial == "gem":
            self.p = self.add_weight(
                name="p",
                shape=(1,),
                initializer=keras.initializers.Constant(self.initial_p),
                trainable=self.trainable_p,
            )
        self.built = True

    def call(self, inputs):
        shape = self._check_input_shape(inputs.shape)
        rank = len(shape)
        # Spatial axes of one frame, counted from the end so both ranks share the code.
        axis = (rank - 3, rank - 2) if self.data_format == "channels_last" else (rank - 2, rank - 1)
        if self.spatial == "gem":
            pooled = generalized_mean(inputs, self.p, self.eps, axis=axis)
        elif self.spatial == "avg":
            pooled = ops.cast(ops.mean(ops.cast(inputs, "float32"), axis=axis), inputs.dtype)
        else:
            pooled = ops.max(inputs, axis=axis)
        if rank == 4:
            # (B*T, C) -> (B, T, C): frames of one clip are consecutive in the folded batch.
            pooled = ops.reshape(pooled, (-1, self.seq_len, ops.shape(pooled)[-1]))
        pooled = ops.cast(pooled, "float32")
        temporal = ops.mean(pooled, axis=1)
        if self.temporal == "mean_std":
            variance = ops.mean(ops.square(pooled - temporal[:, None, :]), axis=1)
            temporal = ops.concatenate([temporal, ops.sqrt(variance + _STD_EPS)], axis=-1)
        return ops.cast(temporal, inputs.dtype)

    def compute_output_shape(self, input_shape):
        shape = self._check_input_shape(input_shape)
        channel_axis = -1 if self.data_format == "channels_last" else len(shape) - 3
        channels = shape[channel_axis]
        if channels is not None and self.temporal == "mean_std":
            channels *= 2
        if len(shape) == 5:
            return (shape[0], channels)
        batch = None if shape[0] is None else shape[0] // self.seq_len
        return (batch, channels)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "spatial": self.spatial,
                "seq_len": self.seq_len,
                "p": self.initial_p,
                "trainable_p": self.trainable_p,
                "eps": self.eps,
                "temporal": self.temporal,
                "data_format": self.data_format,
            }
        )
        return config
