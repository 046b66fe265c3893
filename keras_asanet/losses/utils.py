"""Shared `keras.ops` helpers of the metric-learning losses (distances, masks, masked softmax).

Every helper is vectorised over the batch (no Python loops), works on the jax, torch and
tensorflow backends, and computes in at least float32: half-precision inputs are upcast first,
because the epsilons that keep the square roots differentiable (1e-12) vanish in float16.
"""

import keras
from keras import ops

# A large finite number used to push masked entries out of a min / max.
_LARGE = 1e30


def to_float(x):
    """Converts `x` to a float tensor of at least float32 precision.

    float64 stays float64; integers, booleans, float16 and bfloat16 become float32.
    """
    x = ops.convert_to_tensor(x)
    if keras.backend.standardize_dtype(x.dtype) != "float64":
        x = ops.cast(x, "float32")
    return x


def to_label_vector(labels, argument="labels"):
    """Returns integer class / identity labels as an int32 vector `(B,)`.

    Accepts `(B,)` or `(B, 1)` integer or integral-float labels (a `keras.losses.Loss`
    converts `y_true` to its float dtype before `call`; float32 holds every integer below
    2**24 exactly).

    Raises:
        ValueError: if the labels are not of rank 1 (or rank 2 with a last axis of 1).
    """
    labels = ops.convert_to_tensor(labels)
    shape = tuple(labels.shape)
    if len(shape) == 2 and shape[-1] == 1:
        labels = ops.squeeze(labels, axis=-1)
        shape = shape[:1]
    if len(shape) != 1:
        raise ValueError(
            f"`{argument}` must be a vector of integer labels of shape (B,) or (B, 1); "
            f"received shape {tuple(ops.shape(labels))}."
        )
    if "float" in keras.backend.standardize_dtype(labels.dtype):
        labels = ops.round(labels)
    return ops.cast(labels, "int32")


def check_features(features, argument, rank=2):
    """Raises a ValueError unless `features` has the given rank; returns the static shape."""
    shape = tuple(features.shape)
    if len(shape) != rank:
        raise ValueError(
            f"`{argument}` must have rank {rank} (batch, dim); received shape {shape}."
        )
    return shape


def check_same_batch(labels, features, labels_name="labels", features_name="features"):
    """Raises a ValueError when the static batch sizes of `labels` and `features` differ."""
    b1, b2 = labels.shape[0], features.shape[0]
    if b1 is not None and b2 is not None and b1 != b2:
        raise ValueError(
            f"`{labels_name}` and `{features_name}` must have the same batch size; received "
            f"{b1} labels for {b2} feature rows."
        )


def same_identity_mask(labels):
    """`(B, B)` boolean matrix, True where two samples share a label (diagonal included)."""
    return ops.equal(ops.expand_dims(labels, 1), ops.expand_dims(labels, 0))


def eye_mask(n):
    """`(n, n)` boolean identity matrix (`n` may be a dynamic size)."""
    idx = ops.arange(n)
    return ops.equal(ops.expand_dims(idx, 1), ops.expand_dims(idx, 0))


def pairwise_squared_distances(x):
    """Squared Euclidean distances between the rows of `x` `(B, D)`, shape `(B, B)`.

    Uses `|a|^2 + |b|^2 - 2 a.b` (one matrix product, as AGW does), clamped at 0 against
    round-off, with an exact zero on the diagonal.
    """
    x = ops.convert_to_tensor(x)
    sq = ops.sum(ops.square(x), axis=-1)
    d2 = ops.expand_dims(sq, 1) + ops.expand_dims(sq, 0) - 2.0 * ops.matmul(x, ops.transpose(x))
    d2 = ops.maximum(d2, 0.0)
    return ops.where(eye_mask(ops.shape(x)[0]), ops.zeros_like(d2), d2)


def pairwise_euclidean_distances(x, epsilon=1e-12):
    """Euclidean distances between the rows of `x` `(B, D)`, shape `(B, B)`.

    `sqrt(max(d^2, epsilon))` as in AGW's `euclidean_dist`: the clamp keeps the gradient of
    the square root finite when two rows coincide (it is zero there), so a batch of identical
    features gives finite gradients. The diagonal is therefore `sqrt(epsilon)` (1e-6).
    """
    return ops.sqrt(ops.maximum(pairwise_squared_distances(x), epsilon))


def masked_softmax(logits, mask, axis=-1):
    """Softmax of `logits` over the entries where `mask` is True, 0 elsewhere.

    Numerically stable (the largest unmasked logit is subtracted first; softmax is invariant
    to that shift, so it is taken through `stop_gradient`). A slice with no True entry gives
    all zeros, never NaN, and sends no gradient.
    """
    logits = ops.convert_to_tensor(logits)
    mask = ops.cast(mask, "bool")
    masked = ops.where(mask, logits, ops.full_like(logits, -_LARGE))
    shift = ops.stop_gradient(ops.max(masked, axis=axis, keepdims=True))
    shifted = ops.where(mask, logits - shift, ops.zeros_like(logits))
    e = ops.where(mask, ops.exp(shifted), ops.zeros_like(logits))
    z = ops.sum(e, axis=axis, keepdims=True)
    return e / ops.where(z > 0, z, ops.ones_like(z))


def l2_normalize(x, axis=-1, epsilon=1e-12):
    """`x / max(|x|, sqrt(epsilon))` along `axis`; a zero vector stays zero, gradients finite."""
    x = ops.convert_to_tensor(x)
    sq = ops.sum(ops.square(x), axis=axis, keepdims=True)
    return x * ops.rsqrt(ops.maximum(sq, epsilon))


def masked_mean(values, valid):
    """Mean of `values` over the entries where `valid` is True; 0 (not NaN) when none is."""
    values = ops.convert_to_tensor(values)
    valid = ops.cast(valid, values.dtype)
    total = ops.sum(values * valid)
    count = ops.sum(valid)
    return total / ops.maximum(count, 1.0)


def combine_valid_and_sample_weight(valid, sample_weight, reduction):
    """Turns a per-sample validity mask into the sample weights of a masked reduction.

    `keras.losses.Loss` reduces per-sample values with sample weights. To make the reduction
    run over the valid samples only (Keras' own mask semantics), the weights are:

    - `"sum_over_batch_size"` / `"mean"`: `valid * B / n_valid` (the base class divides by
      `B`, so the result is the mean over the valid samples; 0 when none is valid);
    - `"sum"`, `"mean_with_sample_weight"`, `None`: `valid` itself.

    A user `sample_weight` `(B,)` or `(B, 1)` multiplies in.
    """
    valid = ops.cast(valid, "float32")
    if reduction in ("sum_over_batch_size", "mean"):
        total = ops.cast(ops.size(valid), "float32")
        weights = valid * (total / ops.maximum(ops.sum(valid), 1.0))
    else:
        weights = valid
    if sample_weight is not None:
        sample_weight = ops.cast(ops.convert_to_tensor(sample_weight), "float32")
        if len(sample_weight.shape) == 2 and sample_weight.shape[-1] == 1:
            sample_weight = ops.squeeze(sample_weight, axis=-1)
        weights = weights * sample_weight
    return weights


class ValidityMaskedLoss(keras.losses.Loss):
    """Base of the losses that average over a data-dependent subset of the batch.

    Subclasses implement `valid_mask(y_true, y_pred)` (a `(B,)` boolean tensor: which samples
    count) and `call` (per-sample values, exactly 0 for invalid samples). `__call__` folds the
    mask into the sample weights so that every Keras reduction runs over the valid samples
    only, with the public `keras.losses.Loss` machinery (dtype conversion, distribution
    scaling) left intact. A batch without any valid sample gives 0, never NaN.
    """

    def valid_mask(self, y_true, y_pred):
        raise NotImplementedError

    def __call__(self, y_true, y_pred, sample_weight=None):
        valid = self.valid_mask(y_true, y_pred)
        weights = combine_valid_and_sample_weight(valid, sample_weight, self.reduction)
        return super().__call__(y_true, y_pred, sample_weight=weights)
