"""Center loss with learnable identity centres (paper Eq. 15, AGW's form)."""

import keras
from keras import ops

from keras_asanet.losses.class_centers import ClassCenters
from keras_asanet.losses.utils import check_features, check_same_batch, to_float, to_label_vector


def center_loss(labels, features, centers, clip_min=1e-12, clip_max=1e12):
    """Per-sample squared distance to the own class centre, shape `(B,)`.

    `clip(sum_d (f_id - c_{y_i}d)^2, clip_min, clip_max)`; the batch loss is the mean (AGW's
    `CenterLoss`, which clamps the masked distance matrix to `[1e-12, 1e12]` and divides its
    sum by the batch size; the `(M - 1) * 1e-12` its clamp adds for the masked-out entries is
    left out). The difference is taken directly rather than via `|f|^2 + |c|^2 - 2 f.c`.

    Args:
        labels: integer labels `(B,)` or `(B, 1)` in `[0, M)` (out-of-range labels are not
            checked inside a compiled graph; backends clip or fail differently).
        features: `(B, D)` features.
        centers: `(M, D)` centre table.
        clip_min, clip_max: the clamp of the squared distance.

    Returns:
        `(B,)` float32 squared distances.
    """
    if not 0.0 <= float(clip_min) <= float(clip_max):
        # A negative floor or an inverted clamp turns the distance into a constant.
        raise ValueError(
            f"center_loss needs 0 <= clip_min <= clip_max; received clip_min={clip_min!r}, "
            f"clip_max={clip_max!r}."
        )
    labels = to_label_vector(labels, "labels")
    features = to_float(features)
    check_features(features, "features")
    check_same_batch(labels, features, "labels", "features")
    centers = ops.cast(centers, features.dtype)
    if (
        features.shape[-1] is not None
        and centers.shape[-1] is not None
        and features.shape[-1] != centers.shape[-1]
    ):
        raise ValueError(
            f"`features` have {features.shape[-1]} dimensions but the centres have "
            f"{centers.shape[-1]} (feature_dim); they must match."
        )
    own = ops.take(centers, labels, axis=0)
    d2 = ops.sum(ops.square(features - own), axis=-1)
    return ops.clip(d2, clip_min, clip_max)


@keras.saving.register_keras_serializable(package="keras_asanet")
class CenterLoss(keras.losses.Loss):
    """Center loss: squared distance of every feature to the learnable centre of its class.

    Pulls the features of an identity towards one point, reducing intra-class variation
    (Wen et al.); ASA-Net weights it by `lambda_cent = 1.5` on `f_final`. We follow AGW's
    implementation rather than the printed Eq. 15 (`1/2 sum ||f - c||_2`): the squared
    distance, clamped to `[1e-12, 1e12]`, averaged over the batch (DESIGN.md §3).

    Where the centres live: the loss creates a `ClassCenters` layer (`self.centers_layer`,
    built at once) whose weight `self.centers` is a `(num_classes, feature_dim)`
    `keras.Variable` named `"centers"`. A `Loss` is not tracked by Keras, so **the model that
    uses the loss must keep the layer as an attribute**::

        self.center_loss = CenterLoss(num_classes, feature_dim)
        self.class_centers = self.center_loss.centers_layer  # tracked: trained and saved

    Then the centres are in `model.trainable_variables` (the JAX trainer substitutes them in
    its stateless call too), and their values are saved and restored with the model's
    weights (the loss's `get_config` holds only `num_classes`, `feature_dim` and the
    initializer, so a loss rebuilt from its config alone starts from fresh centres). Find
    the variable by identity (`loss.centers`) or by path (it ends in `"centers"`, e.g. the
    `OptimizerMap` key `".*centers"`) to give it its own optimiser: the paper trains the
    centres with SGD, lr 0.5, and AGW divides their gradient by `lambda_cent` first.
    For the same reason, passing `CenterLoss` to `model.compile(loss=...)` alone does not
    train the centres; compute it in the model's `compute_loss`.

    Args:
        num_classes: number of identities `M`.
        feature_dim: width `D` of the features.
        centers_initializer: initializer of the centres (default `RandomNormal(stddev=1)`,
            `torch.randn` as in AGW).
        reduction: Keras reduction; default the batch mean.
        name: loss name (the centres layer is named `"<name>_centers"`).
        dtype: computation dtype (default `keras.config.floatx()`).

    Call arguments:
        y_true: integer labels `(B,)` or `(B, 1)` in `[0, num_classes)`.
        y_pred: features `(B, feature_dim)`.
        sample_weight: optional `(B,)` weights.

    Returns:
        A scalar: `mean_i clip(||f_i - c_{y_i}||^2, 1e-12, 1e12)`.

    Example:

    ```python
    loss = CenterLoss(num_classes=625, feature_dim=1024)
    value = loss(pids, f_final)
    loss.centers  # the keras.Variable to optimise with SGD(0.5)
    ```

    Reference:
        Chai et al., ASA-Net, Eq. (15); Wen et al., ECCV 2016; AGW (Ye et al., TPAMI 2021).
    """

    def __init__(
        self,
        num_classes,
        feature_dim,
        centers_initializer=None,
        reduction="sum_over_batch_size",
        name="center_loss",
        dtype=None,
    ):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.centers_layer = ClassCenters(
            num_classes,
            feature_dim,
            centers_initializer=centers_initializer,
            name=f"{self.name}_centers",
        )
        self.centers_layer.build((None,))

    @property
    def num_classes(self):
        return self.centers_layer.num_classes

    @property
    def feature_dim(self):
        return self.centers_layer.feature_dim

    @property
    def centers(self):
        """The `(num_classes, feature_dim)` centre `keras.Variable`."""
        return self.centers_layer.centers

    def call(self, y_true, y_pred):
        return center_loss(y_true, y_pred, self.centers)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_classes": self.num_classes,
                "feature_dim": self.feature_dim,
                "centers_initializer": keras.initializers.serialize(
                    self.centers_layer.centers_initializer
                ),
            }
        )
        return config
