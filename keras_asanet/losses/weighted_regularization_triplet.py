"""AGW's weighted regularization triplet loss (paper Eq. 14)."""

import keras
from keras import ops

from keras_asanet.losses.utils import (
    check_features,
    check_same_batch,
    masked_softmax,
    pairwise_euclidean_distances,
    same_identity_mask,
    to_float,
    to_label_vector,
)


def weighted_regularization_triplet_terms(labels, features):
    """Per-anchor weighted positive and negative distances of Eq. 14.

    Args:
        labels: identity labels `(B,)` or `(B, 1)`.
        features: `(B, D)` embeddings.

    Returns:
        `(positive, negative)`, two `(B,)` float32 tensors: `sum_j w_ij^p d_ij^p` and
        `sum_k w_ik^n d_ik^n`, with `w^p = softmax(d^p)` over the anchor's positives and
        `w^n = softmax(-d^n)` over its negatives. The positive set contains the anchor
        itself (distance `sqrt(1e-12)`), as in AGW; an anchor without negatives gets
        `negative = 0`.
    """
    labels = to_label_vector(labels, "labels")
    features = to_float(features)
    check_features(features, "features")
    check_same_batch(labels, features, "labels", "features")
    dist = pairwise_euclidean_distances(features)
    is_pos = same_identity_mask(labels)
    is_neg = ops.logical_not(is_pos)
    weights_p = masked_softmax(dist, is_pos)
    weights_n = masked_softmax(-dist, is_neg)
    positive = ops.sum(dist * weights_p, axis=-1)
    negative = ops.sum(dist * weights_n, axis=-1)
    return positive, negative


def weighted_regularization_triplet(labels, features):
    """Per-anchor weighted regularization triplet loss (Eq. 14), shape `(B,)`.

    `softplus(sum_j w_ij^p d_ij^p - sum_k w_ik^n d_ik^n)` for every anchor `i`; the batch
    loss is their mean (AGW's `SoftMarginLoss` with target 1). See
    `weighted_regularization_triplet_terms` for the weights and the edge cases.

    Args:
        labels: `(B,)` integer identities.
        features: `(B, D)` features (ASA-Net's `f_final`).

    Returns:
        `(B,)` float32, one loss per anchor.

    Example:

    >>> import numpy as np
    >>> labels = np.array([0, 0, 1, 1])
    >>> features = np.random.default_rng(0).normal(size=(4, 8)).astype("float32")
    >>> tuple(weighted_regularization_triplet(labels, features).shape)
    (4,)
    """
    positive, negative = weighted_regularization_triplet_terms(labels, features)
    return ops.softplus(positive - negative)


@keras.saving.register_keras_serializable(package="keras_asanet")
class WeightedRegularizationTriplet(keras.losses.Loss):
    """Weighted regularization triplet loss of AGW (soft, margin-free batch-hard mining).

    Instead of the hardest positive / negative of the batch-hard triplet loss, every positive
    and negative of an anchor contributes, weighted by a softmax of its Euclidean distance
    (`exp(d)` over positives, `exp(-d)` over negatives), and the soft margin
    `log(1 + exp(.))` replaces the hinge, so the loss has no margin to tune. ASA-Net applies it
    to `f_final` (before the BNNeck).

    Diagonal handling (matching AGW's `WeightedRegularizedTriplet`): the positive set of an
    anchor includes the anchor itself, whose distance is `sqrt(1e-12)` (distances are
    `sqrt(max(d^2, 1e-12))`, which also keeps gradients finite for coinciding features). Hence
    the loss is defined for any batch: an anchor whose identity is alone in the batch has only
    itself as positive (weighted positive distance 1e-6), and a batch of a single identity has
    no negatives (weighted negative distance 0, loss `softplus(positive)`). The weights are an
    exact, numerically stable masked softmax (AGW adds 1e-6 to the normaliser; the difference
    is below 1e-6 relative).

    Args:
        reduction: Keras reduction over anchors; the default `"sum_over_batch_size"` is the
            mean over anchors (AGW).
        name: loss name.
        dtype: computation dtype (default `keras.config.floatx()`).

    Call arguments:
        y_true: identity labels `(B,)` or `(B, 1)`.
        y_pred: embeddings `(B, D)` (`f_final`).
        sample_weight: optional `(B,)` per-anchor weights.

    Returns:
        A scalar, the mean over anchors of
        `log(1 + exp(sum_j w_ij^p d_ij^p - sum_k w_ik^n d_ik^n))`.

    Example:

    ```python
    loss = WeightedRegularizationTriplet()
    pids = np.array([0, 0, 1, 1])
    value = loss(pids, np.random.normal(size=(4, 8)).astype("float32"))
    ```

    Reference:
        Chai et al., ASA-Net, Eq. (14); Ye et al., "Deep Learning for Person
        Re-identification: A Survey and Outlook" (AGW), TPAMI 2021.
    """

    def __init__(
        self,
        reduction="sum_over_batch_size",
        name="weighted_regularization_triplet",
        dtype=None,
    ):
        super().__init__(name=name, reduction=reduction, dtype=dtype)

    def call(self, y_true, y_pred):
        return weighted_regularization_triplet(y_true, y_pred)
