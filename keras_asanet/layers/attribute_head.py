"""The attribute classifier `p = W1(σ(BN(W2 f)))` of the attribute branches."""

import keras

from keras_asanet.layers.fused_batch_norm import FusedBatchNormalization
from keras_asanet.layers.sublayer_call import call_sublayer
from keras_asanet.layers.validation import check_positive_int, check_rank


@keras.saving.register_keras_serializable(package="keras_asanet")
class AttributeHead(keras.layers.Layer):
    """Predicts attribute logits from a clip's attribute feature.

    Each attribute branch of ASA-Net ends with a small two-layer classifier,
    `p = W1(σ(BN(W2 f)))`, trained with a multi-label binary cross-entropy: every category of a
    multi-category attribute and every binary attribute gets one independent logit (e.g. 32
    ID-relevant outputs on MARS, 11 ID-irrelevant motion + pose outputs). The head returns
    logits; apply a sigmoid (or a `from_logits=True` loss) outside.

    `W2` has no bias: the BatchNormalization that follows subtracts the batch mean, so a bias
    there would be redundant (and would receive no gradient in training).

    Args:
        num_outputs: int >= 1, the number of attribute logits `D`.
        hidden_dim: int >= 1 or None, the width of `W2`. None (default) keeps the input width.
        activation: the activation `σ` between BN and `W1` (any Keras activation identifier).
            Default `"relu"`.
        momentum: BatchNormalization momentum (Keras convention). Default 0.9, PyTorch's 0.1.
        epsilon: BatchNormalization epsilon. Default 1e-5 (PyTorch's).
        kernel_initializer: initializer of both Dense kernels.
        dropout: float in [0, 1), the fraction of the input feature `f` dropped in training
            before `W2` (not in the paper; 0.0, the default, creates no dropout layer). The
            heads see one attribute vector per identity, so with few training identities they
            can learn identities instead of attributes. Measured on the synthetic tuning seed,
            0.5 lowered both heads and the mAP (docs/results.md).
        **kwargs: base `keras.layers.Layer` arguments.

    Call arguments:
        inputs: `(B, F)` attribute features.
        training: whether BatchNormalization uses batch statistics (and updates its moving
            statistics) or the moving statistics, and whether `dropout` applies.

    Returns:
        `(B, num_outputs)` logits (no sigmoid).

    Example:

    ```python
    import keras
    import numpy as np
    from keras_asanet.layers import AttributeHead

    f_re_attr = np.random.rand(4, 512).astype("float32")
    logits = AttributeHead(num_outputs=32)(f_re_attr)  # (4, 32)
    probabilities = keras.ops.sigmoid(logits)  # one independent probability per slot
    ```

    Reference:
        Eq. 3 (`p_re = W1(σ(BN(W2 f_re_attr)))`) and Eq. 5 (`p_ir = W3(σ(BN(W4 f_ir_attr)))`) of
        Chai et al. (ASA-Net).
    """

    def __init__(
        self,
        num_outputs,
        hidden_dim=None,
        activation="relu",
        momentum=0.9,
        epsilon=1e-5,
        kernel_initializer="glorot_uniform",
        dropout=0.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if isinstance(dropout, bool) or not isinstance(dropout, (int, float)):
            raise ValueError(f"`dropout` must be a float in [0, 1); received dropout={dropout!r}.")
        if not 0.0 <= float(dropout) < 1.0:
            raise ValueError(f"`dropout` must be in [0, 1); received dropout={dropout!r}.")
        self.dropout = float(dropout)
        # Only when used: a Dropout layer carries a seed state, which would change the
        # weights a saved head holds.
        self.input_dropout = (
            keras.layers.Dropout(self.dropout, dtype=self.dtype_policy, name="input_dropout")
            if self.dropout > 0.0
            else None
        )
        self.num_outputs = check_positive_int(num_outputs, "num_outputs")
        self.hidden_dim = check_positive_int(hidden_dim, "hidden_dim", allow_none=True)
        self.activation = keras.activations.get(activation)
        self.momentum = float(momentum)
        self.epsilon = float(epsilon)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)

    def build(self, input_shape):
        input_shape = check_rank(input_shape, 2, "AttributeHead")
        if input_shape[-1] is None:
            raise ValueError(
                "The feature axis of `inputs` of AttributeHead must be known; received shape "
                f"{input_shape}."
            )
        hidden_dim = self.hidden_dim or input_shape[-1]
        self.hidden_dense = keras.layers.Dense(
            hidden_dim,
            use_bias=False,
            kernel_initializer=self.kernel_initializer,
            dtype=self.dtype_policy,
            name="hidden_dense",
        )
        self.hidden_dense.build(input_shape)
        self.batch_norm = FusedBatchNormalization(
            momentum=self.momentum,
            epsilon=self.epsilon,
            dtype=self.dtype_policy,
            name="batch_norm",
        )
        self.batch_norm.build((input_shape[0], hidden_dim))
        self.output_dense = keras.layers.Dense(
            self.num_outputs,
            kernel_initializer=self.kernel_initializer,
            dtype=self.dtype_policy,
            name="output_dense",
        )
        self.output_dense.build((input_shape[0], hidden_dim))
        self.built = True

    def call(self, inputs, training=None):
        check_rank(inputs.shape, 2, "AttributeHead")
        if self.input_dropout is not None:
            inputs = call_sublayer(self.input_dropout, inputs, training=training)
        x = call_sublayer(self.hidden_dense, inputs)
        x = call_sublayer(self.batch_norm, x, training=training)
        x = self.activation(x)
        return call_sublayer(self.output_dense, x)

    def compute_output_shape(self, input_shape):
        input_shape = check_rank(input_shape, 2, "AttributeHead")
        return (input_shape[0], self.num_outputs)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_outputs": self.num_outputs,
                "hidden_dim": self.hidden_dim,
                "activation": keras.activations.serialize(self.activation),
                "momentum": self.momentum,
                "epsilon": self.epsilon,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
                "dropout": self.dropout,
            }
        )
        return config
