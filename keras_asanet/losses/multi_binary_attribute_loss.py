"""Masked multi-label binary cross-entropy over attribute slots (paper Eq. 18)."""

import keras
from keras import ops

from keras_asanet.losses.utils import ValidityMaskedLoss, masked_mean, to_float


def _check_pair(targets, logits):
    if len(targets.shape) != 2 or len(logits.shape) != 2:
        raise ValueError(
            "`targets` and `logits` must both have shape (batch, num_attribute_slots); "
            f"received {tuple(targets.shape)} and {tuple(logits.shape)}."
        )
    for a, b in zip(targets.shape, logits.shape):
        if a is not None and b is not None and a != b:
            raise ValueError(
                f"`targets` {tuple(targets.shape)} and `logits` {tuple(logits.shape)} must "
                "have the same shape."
            )


def check_positive_ratios(positive_ratios, num_slots=None, argument="positive_ratios"):
    """Validates per-slot positive ratios; returns them as a tuple of floats in [0, 1].

    Raises:
        ValueError: not a flat sequence of finite numbers in [0, 1], or not `num_slots` long.
    """
    try:
        ratios = tuple(float(r) for r in positive_ratios)
    except (TypeError, ValueError):
        raise ValueError(
            f"`{argument}` must be a flat sequence of numbers in [0, 1] (one per attribute "
            f"slot); received {positive_ratios!r}."
        ) from None
    bad = [r for r in ratios if not 0.0 <= r <= 1.0]  # also catches NaN
    if bad or not ratios:
        raise ValueError(
            f"`{argument}` must hold numbers in [0, 1] (the fraction of annotated training "
            f"tracklets with the slot on), one per slot; received {len(ratios)} values, "
            f"out of range: {bad[:5]}."
        )
    if num_slots is not None and len(ratios) != int(num_slots):
        raise ValueError(
            f"`{argument}` needs one ratio per attribute slot ({num_slots}); received "
            f"{len(ratios)}."
        )
    return ratios


def positive_ratio_weights(targets, positive_ratios):
    """Per-entry weights of the positive-ratio weighted BCE (DeepMAR; Jia et al. 2021).

    A slot that is on in a fraction `r` of the training tracklets weighs `exp(1 - r)` where
    its target is 1 and `exp(r)` where it is 0, so the rare side of an imbalanced attribute
    (a hat worn by 15 % of people) weighs up to e times the common side. The weights raise the
    gradient of rare positives without moving the decision threshold past 0.5 for a feature
    that says nothing (for `r = 0.15` the loss-optimal probability of an uninformed
    prediction is 0.26), so a head still answers the majority class when it cannot see the
    attribute.

    Args:
        targets: `(B, D)` targets in [0, 1] (negative entries are ignored by the caller).
        positive_ratios: `(D,)` ratios in [0, 1].

    Returns:
        `(B, D)` float32 weights.

    Example:

    ```python
    import numpy as np
    from keras_asanet.losses import positive_ratio_weights

    targets = np.array([[1.0, 0.0]], "float32")
    weights = positive_ratio_weights(targets, [0.15, 0.5])  # [[e^0.85, e^0.5]]
    ```
    """
    targets = to_float(targets)
    ratios = ops.cast(ops.convert_to_tensor(positive_ratios), targets.dtype)
    ratios = ops.reshape(ratios, (1, -1))
    return targets * ops.exp(1.0 - ratios) + (1.0 - targets) * ops.exp(ratios)


def multi_binary_attribute_terms(
    targets, logits, mask=None, from_logits=True, positive_ratios=None
):
    """Per-sample attribute BCE and which samples are annotated.

    Args:
        targets: `(B, D)` targets in `[0, 1]`; a negative entry (e.g. -1) means "not
            annotated" and is skipped (a whole row of -1 for a tracklet without annotation).
        logits: `(B, D)` attribute logits (or probabilities with `from_logits=False`).
        mask: optional `(B,)` 0/1 (or boolean) row mask; 0 drops the row.
        from_logits: whether `logits` are logits.
        positive_ratios: optional `(D,)` fraction of training tracklets with each slot on;
            given, each entry's BCE is weighted by `positive_ratio_weights` (the weighted
            mean over a row's annotated slots divides by the slot count, not the weights'
            sum, so an all-balanced table gives `e^0.5` times the plain BCE). None (default):
            the plain BCE.

    Returns:
        `(per_sample, valid)`: `(B,)` float32 mean BCE over the annotated slots of each row
        (exactly 0 for rows without any), and the `(B,)` boolean "row has an annotated slot".
    """
    targets = to_float(targets)
    logits = to_float(logits)
    _check_pair(targets, logits)
    slot_valid = ops.greater_equal(targets, 0.0)
    if mask is not None:
        mask = ops.convert_to_tensor(mask)
        if len(mask.shape) == 2 and mask.shape[-1] == 1:
            mask = ops.squeeze(mask, axis=-1)
        if len(mask.shape) != 1:
            raise ValueError(f"`mask` must be a (B,) row mask; received shape {tuple(mask.shape)}.")
        row_mask = ops.expand_dims(ops.cast(mask, "bool"), -1)
        slot_valid = ops.logical_and(slot_valid, row_mask)
    safe_targets = ops.where(slot_valid, targets, ops.zeros_like(targets))
    bce = ops.binary_crossentropy(safe_targets, logits, from_logits=from_logits)
    if positive_ratios is not None:
        if logits.shape[-1] is not None and len(positive_ratios) != logits.shape[-1]:
            raise ValueError(
                f"`positive_ratios` has {len(positive_ratios)} entries for "
                f"{logits.shape[-1]} attribute slots."
            )
        bce = bce * positive_ratio_weights(safe_targets, positive_ratios)
    bce = ops.where(slot_valid, bce, ops.zeros_like(bce))
    slot_valid = ops.cast(slot_valid, bce.dtype)
    count = ops.sum(slot_valid, axis=-1)
    per_sample = ops.sum(bce, axis=-1) / ops.maximum(count, 1.0)
    return per_sample, ops.greater(count, 0.0)


def multi_binary_attribute_loss(targets, logits, mask=None, from_logits=True, positive_ratios=None):
    """Attribute BCE averaged over annotated samples and slots; 0 if nothing is annotated.

    The mean over the annotated rows of each row's mean binary cross-entropy over its
    annotated slots (equal to the mean over all annotated (sample, slot) pairs when rows are
    fully annotated or fully missing, the case of the attribute tables). See
    `multi_binary_attribute_terms` for the arguments.

    Returns:
        A float32 scalar.
    """
    per_sample, valid = multi_binary_attribute_terms(
        targets, logits, mask, from_logits, positive_ratios
    )
    return masked_mean(per_sample, valid)


@keras.saving.register_keras_serializable(package="keras_asanet")
class MultiBinaryAttributeLoss(ValidityMaskedLoss):
    """Full binary cross-entropy over attribute slots, skipping unannotated tracklets.

    Every attribute slot of ASA-Net's heads (one sigmoid per category of a multi-category
    attribute, one per binary attribute, ID-relevant and ID-irrelevant concatenated) is an
    independent binary classification. Eq. 18 prints only the positive term
    `-y log p`; we use the full BCE `-(y log p + (1 - y) log(1 - p))` (DESIGN.md §3), taken
    from logits for numerical stability, averaged over annotated samples and slots.

    Unannotated tracklets: the attribute tables do not cover every tracklet, and a guessed
    label would be noise. Fill such a tracklet's target row with -1 (any negative value
    marks a slot "not annotated"). Keeping the mask inside `y_true` means no extra input:
    `model.compile(loss=...)` and data pipelines carry it as the target. Masked rows are
    left out of the mean (not counted as zeros); a batch whose rows are all masked gives 0,
    never NaN, and no gradient. A `sample_weight` multiplies the per-sample terms; the
    default reduction still divides by the number of annotated rows (Keras' mask
    semantics).

    Args:
        from_logits: whether `y_pred` are logits (default) or probabilities.
        positive_ratios: optional sequence of `D` floats in [0, 1], the fraction of the
            annotated training tracklets with each slot on
            (`AttributeSchema.positive_ratios`); given, the BCE is positive-ratio weighted
            (`positive_ratio_weights`: rare classes weigh more). None (default): Eq. 18's
            unweighted BCE.
        reduction: Keras reduction over the annotated rows; the default is their mean.
        name: loss name.
        dtype: computation dtype (default `keras.config.floatx()`).

    Call arguments:
        y_true: `(B, D)` targets in `{0, 1}` (or soft in `[0, 1]`), -1 where unannotated.
        y_pred: `(B, D)` attribute logits.
        sample_weight: optional `(B,)` weights.

    Returns:
        A scalar: the mean BCE over annotated samples and slots (0 if there is none).

    Example:

    ```python
    loss = MultiBinaryAttributeLoss()
    targets = np.array([[1, 0, 1], [-1, -1, -1]], "float32")  # second tracklet unannotated
    value = loss(targets, np.zeros((2, 3), "float32"))        # log(2)
    ```

    Reference:
        Chai et al., ASA-Net, Eq. (18).
    """

    def __init__(
        self,
        from_logits=True,
        positive_ratios=None,
        reduction="sum_over_batch_size",
        name="multi_binary_attribute_loss",
        dtype=None,
    ):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.from_logits = bool(from_logits)
        self.positive_ratios = (
            None if positive_ratios is None else check_positive_ratios(positive_ratios)
        )

    def valid_mask(self, y_true, y_pred):
        targets = ops.convert_to_tensor(y_true)
        if len(targets.shape) != 2:
            raise ValueError(
                "`y_true` of MultiBinaryAttributeLoss must have shape (batch, slots); "
                f"received shape {tuple(targets.shape)}."
            )
        return ops.any(ops.greater_equal(to_float(targets), 0.0), axis=-1)

    def call(self, y_true, y_pred):
        per_sample, _ = multi_binary_attribute_terms(
            y_true, y_pred, from_logits=self.from_logits, positive_ratios=self.positive_ratios
        )
        return per_sample

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "from_logits": self.from_logits,
                "positive_ratios": None
                if self.positive_ratios is None
                else list(self.positive_ratios),
            }
        )
        return config
