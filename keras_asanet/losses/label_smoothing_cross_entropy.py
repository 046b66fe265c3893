"""Identity cross-entropy with label smoothing on sparse integer labels (paper Eq. 16-17)."""

import keras
from keras import ops

from keras_asanet.losses.utils import to_float, to_label_vector


def _check_epsilon(epsilon):
    if isinstance(epsilon, bool) or not isinstance(epsilon, (int, float)):
        raise ValueError(f"`epsilon` must be a float in [0, 1); received epsilon={epsilon!r}.")
    if not 0.0 <= float(epsilon) < 1.0:
        raise ValueError(f"`epsilon` must be a float in [0, 1); received epsilon={epsilon!r}.")
    return float(epsilon)


def label_smoothing_cross_entropy(labels, logits, epsilon=0.1, from_logits=True):
    """Per-sample cross-entropy against the smoothed target `(1 - eps) one_hot + eps / M`.

    Args:
        labels: integer identity labels, `(B,)` or `(B, 1)`, in `[0, M)`.
        logits: `(B, M)` class scores (logits when `from_logits=True`, else probabilities).
        epsilon: the smoothing `eps` in `[0, 1)`.
        from_logits: whether `logits` are unnormalised scores.

    Returns:
        `(B,)` float32 losses `-sum_j q_ij log p_ij`.
    """
    epsilon = _check_epsilon(epsilon)
    logits = to_float(logits)
    if len(logits.shape) != 2:
        raise ValueError(
            f"`logits` must have shape (batch, num_classes); received shape {tuple(logits.shape)}."
        )
    labels = to_label_vector(labels, "labels")
    num_classes = ops.shape(logits)[-1]
    one_hot = ops.one_hot(labels, num_classes, dtype=logits.dtype)
    # Keras' categorical cross-entropy smooths as `y * (1 - eps) + eps / M`: exactly the
    # standard form used by AGW's `CrossEntropyLabelSmooth`.
    return keras.losses.categorical_crossentropy(
        one_hot, logits, from_logits=from_logits, label_smoothing=epsilon
    )


@keras.saving.register_keras_serializable(package="keras_asanet")
class LabelSmoothingCrossEntropy(keras.losses.Loss):
    """Cross-entropy with label smoothing for sparse integer identity labels.

    The identity classifier of ASA-Net (BNNeck, Eq. 16) is trained with the label-smoothing
    regulariser of Szegedy et al., as in AGW / Luo et al.'s strong baseline: the target of
    sample `i` is `q_ij = 1 - eps + eps / M` for its identity `j = y_i` and `eps / M`
    otherwise, over `M` training identities. Eq. 17 of the paper prints `N` (the batch size)
    where `M` belongs; we use the standard form (see DESIGN.md §3). Keras'
    `SparseCategoricalCrossentropy` has no smoothing, so the labels are one-hot encoded and
    Keras' `categorical_crossentropy(label_smoothing=eps)` (the same formula) does the rest.

    Args:
        epsilon: smoothing `eps` in `[0, 1)`. Default 0.1 (the paper).
        from_logits: whether `y_pred` are logits (default) or probabilities.
        reduction: Keras reduction; the default `"sum_over_batch_size"` is the batch mean.
        name: loss name.
        dtype: computation dtype (default `keras.config.floatx()`).

    Call arguments:
        y_true: integer identity labels `(B,)` or `(B, 1)` in `[0, M)`.
        y_pred: `(B, M)` identity logits (`W_ID(BN(f_final))`).
        sample_weight: optional `(B,)` weights.

    Returns:
        A scalar: the mean over the batch of `-sum_j q_ij log softmax(y_pred)_ij`.

    Example:

    ```python
    loss = LabelSmoothingCrossEntropy(epsilon=0.1)
    value = loss(np.array([0, 2]), np.random.normal(size=(2, 5)))
    model.compile(optimizer="adam", loss=LabelSmoothingCrossEntropy())
    ```

    Reference:
        Chai et al., ASA-Net, Eq. (16)-(17); Szegedy et al., "Rethinking the Inception
        Architecture", 2016 (label smoothing).
    """

    def __init__(
        self,
        epsilon=0.1,
        from_logits=True,
        reduction="sum_over_batch_size",
        name="label_smoothing_cross_entropy",
        dtype=None,
    ):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.epsilon = _check_epsilon(epsilon)
        self.from_logits = bool(from_logits)

    def call(self, y_true, y_pred):
        return label_smoothing_cross_entropy(
            y_true, y_pred, epsilon=self.epsilon, from_logits=self.from_logits
        )

    def get_config(self):
        config = super().get_config()
        config.update({"epsilon": self.epsilon, "from_logits": self.from_logits})
        return config
