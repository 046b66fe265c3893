"""The learnable per-identity feature centres of the center loss (paper Eq. 15)."""

import keras
from keras import ops

from keras_asanet.losses.utils import to_label_vector


def _check_positive_int(value, argument):
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"`{argument}` must be a positive integer; received {argument}={value!r}.")
    return value


@keras.saving.register_keras_serializable(package="keras_asanet")
class ClassCenters(keras.layers.Layer):
    """A `(num_classes, feature_dim)` table of class centres, looked up by label.

    The centres of the center loss are trainable parameters, but a `keras.losses.Loss` is not
    a `Layer`, so it can neither own tracked weights nor be saved with their values. This
    layer owns them instead: `CenterLoss` creates one, and the model that uses the loss keeps
    it as an attribute, which puts the centres in `model.trainable_variables` (so the trainer
    differentiates them and the optimiser updates them) and in the model's `.keras` /
    `.weights.h5` files. The weight is named `"centers"`, so its `path` ends in `"centers"`
    (`"<layer name>/centers"`): a `keras.optimizers.MultiOptimizer` / `OptimizerMap` key such
    as `".*centers"` gives the centres their own SGD optimiser (the paper uses SGD, lr 0.5).

    Args:
        num_classes: number of identities `M` (rows).
        feature_dim: feature width `D` (columns).
        centers_initializer: initializer of the table. Default `RandomNormal(stddev=1.0)`,
            i.e. `torch.randn` as in AGW's `CenterLoss`.
        **kwargs: base `keras.layers.Layer` arguments (`name`, `dtype`, `trainable`, ...).

    Call arguments:
        inputs: integer labels `(B,)` or `(B, 1)` in `[0, num_classes)`.

    Returns:
        `(B, feature_dim)`: the centre of every label, in the layer's compute dtype.

    Example:

    ```python
    centers = ClassCenters(num_classes=10, feature_dim=4)
    c = centers(np.array([3, 3, 7]))  # (3, 4)
    centers.centers                   # the (10, 4) keras.Variable
    ```

    Reference:
        Chai et al., ASA-Net, Eq. (15); Wen et al., "A Discriminative Feature Learning
        Approach for Deep Face Recognition", ECCV 2016.
    """

    def __init__(self, num_classes, feature_dim, centers_initializer=None, **kwargs):
        super().__init__(**kwargs)
        self.num_classes = _check_positive_int(num_classes, "num_classes")
        self.feature_dim = _check_positive_int(feature_dim, "feature_dim")
        if centers_initializer is None:
            centers_initializer = keras.initializers.RandomNormal(mean=0.0, stddev=1.0)
        self.centers_initializer = keras.initializers.get(centers_initializer)

    def build(self, input_shape=None):
        self.centers = self.add_weight(
            name="centers",
            shape=(self.num_classes, self.feature_dim),
            initializer=self.centers_initializer,
            trainable=True,
        )

    def skip_next_load(self):
        """Makes the next `load_own_variables` a no-op: for an owner that restored the
        centres itself from a file that keeps them elsewhere (an older layout)."""
        self._skip_next_load = True

    def load_own_variables(self, store):
        if getattr(self, "_skip_next_load", False):
            self._skip_next_load = False
            return
        super().load_own_variables(store)

    def call(self, inputs):
        labels = to_label_vector(inputs, "inputs")
        return ops.take(self.centers, labels, axis=0)

    def compute_output_shape(self, input_shape):
        input_shape = tuple(input_shape)
        if len(input_shape) == 2 and input_shape[-1] == 1:
            input_shape = input_shape[:1]
        if len(input_shape) != 1:
            raise ValueError(
                "`inputs` of ClassCenters must be labels of shape (B,) or (B, 1); "
                f"received shape {input_shape}."
            )
        return input_shape + (self.feature_dim,)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_classes": self.num_classes,
                "feature_dim": self.feature_dim,
                "centers_initializer": keras.initializers.serialize(self.centers_initializer),
            }
        )
        return config
