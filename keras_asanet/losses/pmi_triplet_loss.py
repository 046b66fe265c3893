"""The Pose & Motion-Invariant (PMI) triplet loss of ASA-Net (paper §III-C, Eq. 11-13)."""

import keras
from keras import ops

from keras_asanet.losses.utils import (
    ValidityMaskedLoss,
    check_features,
    check_same_batch,
    eye_mask,
    l2_normalize,
    masked_mean,
    pairwise_squared_distances,
    same_identity_mask,
    to_float,
    to_label_vector,
)

_LARGE = 1e30


def _partner_mask(pids):
    """`(B, B)` True where `j != i` and `pid_j == pid_i`."""
    return ops.logical_and(same_identity_mask(pids), ops.logical_not(eye_mask(ops.shape(pids)[0])))


def pmi_triplet_terms(pids, f_final, f_ir_attr):
    """Per-anchor PMI hinge values and which anchors have a same-identity partner.

    For every anchor `A`, among the other clips of its identity in the batch: `AP` is the
    clip nearest to `A` in `f_ir_attr` (similar pose / motion) and `AN` the farthest
    (Eq. 11, Euclidean; the squared distance selects the same clips). The selection goes
    through `stop_gradient`, so no gradient reaches `f_ir_attr`. The value is
    `max(d_cos(A, AN) - d_cos(A, AP), 0)` on `f_final` (Eq. 12-13). Ties pick the lowest
    index; with two clips of an identity `AP == AN` and the value is 0.

    Args:
        pids: identity labels `(B,)` or `(B, 1)`.
        f_final: `(B, D)` final features.
        f_ir_attr: `(B, D')` ID-irrelevant attribute features.

    Returns:
        `(per_anchor, valid)`: `(B,)` float32 hinge values (0 for anchors without partner)
        and the `(B,)` boolean "identity has another clip in the batch".
    """
    pids = to_label_vector(pids, "pids")
    f_final = to_float(f_final)
    f_ir_attr = ops.stop_gradient(to_float(f_ir_attr))
    check_features(f_final, "f_final")
    check_features(f_ir_attr, "f_ir_attr")
    check_same_batch(pids, f_final, "pids", "f_final")
    check_same_batch(pids, f_ir_attr, "pids", "f_ir_attr")

    partners = _partner_mask(pids)
    valid = ops.any(partners, axis=-1)
    d_attr = pairwise_squared_distances(f_ir_attr)
    large = ops.full_like(d_attr, _LARGE)
    ap = ops.argmin(ops.where(partners, d_attr, large), axis=-1)
    an = ops.argmax(ops.where(partners, d_attr, -large), axis=-1)

    normed = l2_normalize(f_final)
    d_cos = 1.0 - ops.matmul(normed, ops.transpose(normed))
    d_pos = ops.take_along_axis(d_cos, ops.expand_dims(ap, -1), axis=-1)[:, 0]
    d_neg = ops.take_along_axis(d_cos, ops.expand_dims(an, -1), axis=-1)[:, 0]
    hinge = ops.relu(d_neg - d_pos)
    return ops.where(valid, hinge, ops.zeros_like(hinge)), valid


def pmi_triplet_loss(pids, f_final, f_ir_attr):
    """PMI triplet loss (Eq. 12): mean of the hinge over the anchors that have a partner.

    Anchors whose identity has a single clip in the batch form no triplet and are left out
    of the mean; a batch where no anchor has a partner gives 0 (not NaN). See
    `pmi_triplet_terms`.

    Args:
        pids: `(B,)` integer identities.
        f_final: `(B, D)` identity features, between which the hinge is measured.
        f_ir_attr: `(B, D_ir)` ID-irrelevant attribute features, which choose the partners.

    Returns:
        A float32 scalar.

    Example:

    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> pids = np.array([0, 0, 1, 1])
    >>> f_final = rng.normal(size=(4, 8)).astype("float32")
    >>> f_ir = rng.normal(size=(4, 3)).astype("float32")
    >>> float(pmi_triplet_loss(pids, f_final, f_ir)) >= 0.0
    True
    """
    per_anchor, valid = pmi_triplet_terms(pids, f_final, f_ir_attr)
    return masked_mean(per_anchor, valid)


def _check_final_dim(final_dim):
    if final_dim is None:
        return None
    if isinstance(final_dim, bool) or not isinstance(final_dim, int) or final_dim <= 0:
        raise ValueError(
            f"`final_dim` must be a positive integer or None; received final_dim={final_dim!r}."
        )
    return final_dim


@keras.saving.register_keras_serializable(package="keras_asanet")
class PMITripletLoss(ValidityMaskedLoss):
    """Pose & Motion-Invariant triplet loss: make identity features ignore pose and motion.

    A plain triplet loss separates identities but does not shrink the spread inside an
    identity caused by pose and motion. PMI mines, inside each identity of the batch, the
    clip with the most similar pose/motion (`AP`, nearest in the ID-irrelevant attribute
    feature `f_ir_attr`) and the most different one (`AN`, farthest), and penalises the
    final feature `f_final` when the pose-different clip is farther (cosine distance) than
    the pose-similar one: `max(d_cos(A, AN) - d_cos(A, AP), 0)` (Eq. 11-13, as printed;
    both clips have the anchor's identity). The mining uses `stop_gradient`: the loss trains
    `f_final` only, never `f_ir_attr`.

    Anchors whose identity has one clip in the batch form no triplet and are excluded from
    the mean (with PK sampling, K >= 2, every anchor counts); a batch without any pair gives
    0, not NaN.

    Args:
        final_dim: only for a concatenated `y_pred`: the width of `f_final`, the first
            `final_dim` columns (the rest are `f_ir_attr`). `None` (default) expects a dict
            or a pair.
        reduction: Keras reduction over the anchors that have a partner; the default is
            their mean (Eq. 12).
        name: loss name.
        dtype: computation dtype (default `keras.config.floatx()`).

    Call arguments:
        y_true: identity labels `(B,)` or `(B, 1)`.
        y_pred: one of
            - a dict `{"f_final": (B, D), "f_ir_attr": (B, D')}`,
            - a pair `(f_final, f_ir_attr)` (list or tuple),
            - a tensor `(B, D + D')` = `concat([f_final, f_ir_attr], -1)` with
              `final_dim=D` (handy with `model.compile(loss=...)`).
        sample_weight: optional `(B,)` per-anchor weights.

    Returns:
        A scalar: the mean hinge over anchors with a same-identity partner.

    Example:

    ```python
    loss = PMITripletLoss()
    value = loss(pids, {"f_final": f_final, "f_ir_attr": f_ir_attr})
    value = pmi_triplet_loss(pids, f_final, f_ir_attr)  # the same
    ```

    Reference:
        Chai et al., ASA-Net, §III-C, Eq. (11)-(13).
    """

    def __init__(
        self,
        final_dim=None,
        reduction="sum_over_batch_size",
        name="pmi_triplet_loss",
        dtype=None,
    ):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.final_dim = _check_final_dim(final_dim)

    def split_prediction(self, y_pred):
        """Returns `(f_final, f_ir_attr)` from any of the accepted `y_pred` layouts."""
        if isinstance(y_pred, dict):
            missing = {"f_final", "f_ir_attr"} - set(y_pred)
            if missing:
                raise ValueError(
                    "`y_pred` dict of PMITripletLoss must have keys 'f_final' and "
                    f"'f_ir_attr'; missing {sorted(missing)} in keys {sorted(y_pred)}."
                )
            return y_pred["f_final"], y_pred["f_ir_attr"]
        if isinstance(y_pred, (list, tuple)):
            if len(y_pred) != 2:
                raise ValueError(
                    "`y_pred` of PMITripletLoss must be a pair (f_final, f_ir_attr); "
                    f"received {len(y_pred)} items."
                )
            return y_pred[0], y_pred[1]
        if self.final_dim is None:
            raise ValueError(
                "`y_pred` of PMITripletLoss is a single tensor; pass final_dim=<width of "
                "f_final> to split it, or give a dict / (f_final, f_ir_attr) pair."
            )
        width = y_pred.shape[-1]
        if width is not None and width <= self.final_dim:
            raise ValueError(
                f"`y_pred` has {width} columns; with final_dim={self.final_dim} it must have "
                "more (f_final then f_ir_attr)."
            )
        return y_pred[:, : self.final_dim], y_pred[:, self.final_dim :]

    def valid_mask(self, y_true, y_pred):
        return ops.any(_partner_mask(to_label_vector(y_true, "y_true")), axis=-1)

    def call(self, y_true, y_pred):
        f_final, f_ir_attr = self.split_prediction(y_pred)
        per_anchor, _ = pmi_triplet_terms(y_true, f_final, f_ir_attr)
        return per_anchor

    def get_config(self):
        config = super().get_config()
        config.update({"final_dim": self.final_dim})
        return config
