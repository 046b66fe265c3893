"""ASRE: the Attribute Salient Region Enhance module of ASA-Net (Eq. 8-10)."""

import math
import numbers

import keras
from keras import ops

from keras_asanet.layers.fused_batch_norm import FusedBatchNormalization
from keras_asanet.layers.sublayer_call import call_sublayer
from keras_asanet.layers.validation import (
    check_positive_int,
    check_rank,
    standardize_data_format,
)

#: The readings of Eq. 8's softmax axis (see `ASRE`'s `softmax_over`).
SOFTMAX_AXES = ("attribute_positions", "identity_positions")


@keras.saving.register_keras_serializable(package="keras_asanet")
class ASRE(keras.layers.Layer):
    """Enhances an identity feature map where an attribute feature map says the person is.

    Attribute labels (clothes colours, bag, hair; or pose and motion) implicitly say where the
    person's body is. ASRE turns an attribute branch's feature map `X_A` into a spatial mask
    over the identity feature map `X_I` through cross attention, and adds the masked identity
    map back (Eq. 8-10):

    ```
    Q = ReLU(conv1x1(X_I)),  K = ReLU(conv1x1(X_A))            # (HW, key_dim) each
    A = softmax(Q K^T / sqrt(key_dim))                         # (HW, HW), over X_A positions
    V = conv1x1(X_A)                                           # (HW, value_dim)
    X_V = reshape(A V)                                         # (H, W, value_dim)
    M = conv1x1(BN(X_V))                                       # (H, W, 1), `mask_activation`
    output = X_I + alpha * (M * X_I)                           # alpha trainable, init 1.0
    ```

    Each position of the identity map attends over all positions of the attribute map of the
    same frame. The paper's `X_I = F_re(X_ID)` is the caller's own 1x1 convolution: this layer
    takes `X_I` already projected. `V`'s convolution has no bias: every row of `A` sums to 1,
    so a bias would add a per-channel constant to `X_V` that the BatchNormalization removes.
    The attention logits, the softmax and `A V` are computed in float32 under mixed precision.

    Args:
        key_dim: int >= 1 or None, the width `d_k` of `Q` and `K`. None (default) uses the
            channel count `C_I` of the identity map.
        value_dim: int >= 1 or None, the width of `V` and `X_V`. None (default) uses `C_I`.
        mask_activation: activation of the mask convolution. Default None (linear, as the
            paper); e.g. `"sigmoid"` keeps the mask in (0, 1).
        alpha: float, the initial value of the trainable scale `alpha`. Default 1.0.
        softmax_over: the axis of Eq. 8's softmax, which the paper leaves unsaid.
            `"attribute_positions"` (default): each identity position's weights over the
            attribute positions sum to 1, so `X_V` at a position is an average of `V` and
            the mask varies in space only as far as the queries differ (measured on the
            synthetic main job: the mask ends up constant within a frame).
            `"identity_positions"`: each attribute position spreads a unit of response over
            the identity positions (Fig. 4's "response value of the attribute on each pixel
            of the identity feature map"), so positions that respond more receive more.
        return_mask: if True the layer returns `(enhanced, mask)`. Default False.
        momentum: BatchNormalization momentum (Keras convention). Default 0.9 (PyTorch's 0.1).
        epsilon: BatchNormalization epsilon. Default 1e-5.
        kernel_initializer: initializer of the four 1x1 convolutions.
        data_format: `"channels_last"` (`(B, H, W, C)`) or `"channels_first"` (`(B, C, H, W)`);
            None means `keras.config.image_data_format()`.
        **kwargs: base `keras.layers.Layer` arguments.

    Call arguments:
        inputs: a list `[identity_map, attribute_map]`: `X_I` of shape `(B, H, W, C_I)` and
            `X_A` of shape `(B, H, W, C_A)` (channels first: `(B, C, H, W)`), with the same
            `H` and `W`. `H` and `W` may be unknown (None) when building a functional model.
        training: whether the BatchNormalization uses batch statistics (and updates its
            moving statistics) or its moving statistics.

    Returns:
        The enhanced map `X_I + alpha * M * X_I`, shaped like `identity_map`; with
        `return_mask=True` the tuple `(enhanced, mask)` where `mask` is `M`, `(B, H, W, 1)`
        (channels first: `(B, 1, H, W)`).

    Example:

    ```python
    import keras
    import numpy as np
    from keras_asanet.layers import ASRE

    # Per-frame feature maps of two branches of your own network, any spatial size.
    identity_features = keras.Input(shape=(None, None, 64), name="identity_features")
    attribute_features = keras.Input(shape=(None, None, 32), name="attribute_features")
    x_i = keras.layers.Conv2D(16, 1, name="f_re")(identity_features)  # X_I = F_re(X_ID)
    enhanced, mask = ASRE(return_mask=True, name="asre")([x_i, attribute_features])
    clip_feature = keras.layers.GlobalAveragePooling2D()(enhanced)
    model = keras.Model([identity_features, attribute_features], [clip_feature, mask])

    frames = [
        np.random.rand(2, 16, 8, 64).astype("float32"),
        np.random.rand(2, 16, 8, 32).astype("float32"),
    ]
    features, masks = model.predict(frames, verbose=0)  # (2, 16) and (2, 16, 8, 1)
    ```

    Reference:
        Eq. 8-10 and Fig. 4 of Chai et al., "Video Person Re-identification using
        Attribute-enhanced Features" (ASA-Net), §III-B.
    """

    def __init__(
        self,
        key_dim=None,
        value_dim=None,
        mask_activation=None,
        alpha=1.0,
        softmax_over="attribute_positions",
        return_mask=False,
        momentum=0.9,
        epsilon=1e-5,
        kernel_initializer="glorot_uniform",
        data_format=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.key_dim = check_positive_int(key_dim, "key_dim", allow_none=True)
        self.value_dim = check_positive_int(value_dim, "value_dim", allow_none=True)
        self.mask_activation = keras.activations.get(mask_activation)
        if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real):
            raise ValueError(f"`alpha` must be a real number; received alpha={alpha!r}.")
        self.initial_alpha = float(alpha)
        if softmax_over not in SOFTMAX_AXES:
            raise ValueError(
                f"`softmax_over` must be one of {SOFTMAX_AXES}; received "
                f"softmax_over={softmax_over!r}."
            )
        self.softmax_over = softmax_over
        self.return_mask = bool(return_mask)
        self.momentum = float(momentum)
        self.epsilon = float(epsilon)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.data_format = standardize_data_format(data_format)

    # ------------------------------------------------------------------ shapes

    def _split_shapes(self, input_shape):
        """Validates `[identity_shape, attribute_shape]`; returns them channels-last."""
        if not isinstance(input_shape, (list, tuple)) or len(input_shape) != 2:
            raise ValueError(
                "ASRE expects `inputs` = [identity_map, attribute_map], a list of two rank-4 "
                f"tensors; received {_describe(input_shape)}."
            )
        shapes = []
        for name, shape in zip(("identity_map", "attribute_map"), input_shape):
            if shape is None or isinstance(shape, int):
                raise ValueError(
                    "ASRE expects `inputs` = [identity_map, attribute_map], a list of two "
                    f"rank-4 tensors; received {_describe(input_shape)}."
                )
            shape = check_rank(shape, 4, "ASRE", argument=name)
            if self.data_format == "channels_first":
                shape = (shape[0], shape[2], shape[3], shape[1])
            if shape[-1] is None:
                raise ValueError(
                    f"The channel axis of `{name}` of ASRE must be known; received shape "
                    f"{tuple(input_shape[0] if name == 'identity_map' else input_shape[1])}."
                )
            shapes.append(shape)
        identity, attribute = shapes
        for axis, label in ((1, "height"), (2, "width")):
            a, b = identity[axis], attribute[axis]
            if a is not None and b is not None and a != b:
                raise ValueError(
                    f"ASRE needs `identity_map` and `attribute_map` of the same spatial size; "
                    f"received {label} {a} (identity_map shape {tuple(input_shape[0])}) and "
                    f"{b} (attribute_map shape {tuple(input_shape[1])})."
                )
        return identity, attribute

    # ------------------------------------------------------------------ layer API

    def build(self, input_shape):
        identity, attribute = self._split_shapes(input_shape)
        identity_channels = identity[-1]
        key_dim = self.key_dim or identity_channels
        value_dim = self.value_dim or identity_channels
        self._resolved_key_dim = key_dim

        def conv(filters, name, use_bias=True, activation=None):
            return keras.layers.Conv2D(
                filters,
                1,
                use_bias=use_bias,
                activation=activation,
                kernel_initializer=self.kernel_initializer,
                # `call` works channels-last whatever `data_format` (and whatever
                # `keras.config.image_data_format()`) is, so the convolutions do too.
                data_format="channels_last",
                dtype=self.dtype_policy,
                name=name,
            )

        self.query_conv = conv(key_dim, "query_conv")
        self.query_conv.build(identity)
        self.key_conv = conv(key_dim, "key_conv")
        self.key_conv.build(attribute)
        self.value_conv = conv(value_dim, "value_conv", use_bias=False)
        self.value_conv.build(attribute)
        value_shape = identity[:-1] + (value_dim,)
        self.batch_norm = FusedBatchNormalization(
            momentum=self.momentum,
            epsilon=self.epsilon,
            dtype=self.dtype_policy,
            name="batch_norm",
        )
        self.batch_norm.build(value_shape)
        self.mask_conv = conv(1, "mask_conv", activation=self.mask_activation)
        self.mask_conv.build(value_shape)
        self.alpha = self.add_weight(
            name="alpha",
            shape=(1,),
            initializer=keras.initializers.Constant(self.initial_alpha),
            trainable=True,
        )
        self.built = True

    def call(self, inputs, training=None):
        if not isinstance(inputs, (list, tuple)) or len(inputs) != 2:
            raise ValueError(
                "ASRE expects `inputs` = [identity_map, attribute_map], a list of two rank-4 "
                f"tensors; received {_describe(inputs)}."
            )
        identity_map, attribute_map = inputs
        self._split_shapes([identity_map.shape, attribute_map.shape])
        if self.data_format == "channels_first":
            identity_map = ops.transpose(identity_map, (0, 2, 3, 1))
            attribute_map = ops.transpose(attribute_map, (0, 2, 3, 1))

        shape = ops.shape(identity_map)
        height, width = shape[1], shape[2]
        positions = height * width

        query = ops.relu(call_sublayer(self.query_conv, identity_map))
        key = ops.relu(call_sublayer(self.key_conv, attribute_map))
        value = call_sublayer(self.value_conv, attribute_map)
        query = ops.reshape(query, (-1, positions, ops.shape(query)[-1]))
        key = ops.reshape(key, (-1, positions, ops.shape(key)[-1]))
        value = ops.reshape(value, (-1, positions, ops.shape(value)[-1]))

        # Eq. 8 in float32: rows = identity positions, columns = attribute positions.
        scale = 1.0 / math.sqrt(self._resolved_key_dim)
        logits = ops.matmul(
            ops.cast(query, "float32"), ops.transpose(ops.cast(key, "float32"), (0, 2, 1))
        )
        axis = -1 if self.softmax_over == "attribute_positions" else -2
        attention = ops.softmax(logits * scale, axis=axis)
        # Eq. 9: X_V = reshape(A V), M = conv1x1(BN(X_V)).
        attended = ops.matmul(attention, ops.cast(value, "float32"))
        attended = ops.cast(attended, self.compute_dtype)
        attended = ops.reshape(attended, (-1, height, width, ops.shape(attended)[-1]))
        mask = call_sublayer(
            self.mask_conv, call_sublayer(self.batch_norm, attended, training=training)
        )
        # Eq. 10: X_I + alpha * (M ⊙ X_I).
        enhanced = identity_map + ops.cast(self.alpha, mask.dtype) * (mask * identity_map)

        if self.data_format == "channels_first":
            enhanced = ops.transpose(enhanced, (0, 3, 1, 2))
            mask = ops.transpose(mask, (0, 3, 1, 2))
        if self.return_mask:
            return enhanced, mask
        return enhanced

    def compute_output_shape(self, input_shape):
        identity, _ = self._split_shapes(input_shape)
        enhanced = tuple(input_shape[0])
        if self.data_format == "channels_first":
            mask = (identity[0], 1, identity[1], identity[2])
        else:
            mask = identity[:-1] + (1,)
        if self.return_mask:
            return enhanced, mask
        return enhanced

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "key_dim": self.key_dim,
                "value_dim": self.value_dim,
                "mask_activation": keras.activations.serialize(self.mask_activation),
                "alpha": self.initial_alpha,
                "softmax_over": self.softmax_over,
                "return_mask": self.return_mask,
                "momentum": self.momentum,
                "epsilon": self.epsilon,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
                "data_format": self.data_format,
            }
        )
        return config


def _describe(value):
    """A short description of a call argument for error messages (no tensor dumps)."""
    if isinstance(value, (list, tuple)):
        items = ", ".join(str(tuple(v.shape)) if hasattr(v, "shape") else repr(v) for v in value)
        return f"a {type(value).__name__} of {len(value)}: [{items}]"
    if hasattr(value, "shape"):
        return f"a single tensor of shape {tuple(value.shape)}"
    return repr(value)
