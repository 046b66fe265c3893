"""BNNeck: batch-normalised feature plus a bias-free identity classifier (Eq. 16)."""

import keras

from keras_asanet.layers.fused_batch_norm import FusedBatchNormalization
from keras_asanet.layers.sublayer_call import call_sublayer
from keras_asanet.layers.validation import check_positive_int, check_rank


@keras.saving.register_keras_serializable(package="keras_asanet")
class BNNeck(keras.layers.Layer):
    """Batch-normalises the final feature and classifies it: `p = W_ID(BN(f_final))`.

    Metric losses (triplet, centre) and the identity cross-entropy pull a feature in different
    directions; the BNNeck of Luo et al. (BoT), kept by AGW and ASA-Net, separates them: the
    metric losses see `f_final`, the cross-entropy sees the logits of the batch-normalised
    feature, and at test time the normalised feature is the retrieval descriptor. As in
    BoT/AGW the BatchNormalization has no learned shift (`center=False`, PyTorch's frozen zero
    bias) and the classifier has no bias.

    Args:
        num_classes: int >= 1, the number of training identities `M`; `None` or `0` builds no
            classifier (e.g. to evaluate a model on another dataset without its head), and the
            layer then returns only the normalised feature.
        momentum: BatchNormalization momentum (Keras convention). Default 0.9 (PyTorch's 0.1).
        epsilon: BatchNormalization epsilon. Default 1e-5 (PyTorch's).
        kernel_initializer: initializer of the classifier. Default `RandomNormal(stddev=0.001)`
            as in BoT/AGW.
        **kwargs: base `keras.layers.Layer` arguments.

    Call arguments:
        inputs: `(B, D)` features `f_final`.
        training: whether BatchNormalization uses batch statistics or its moving statistics.

    Returns:
        `(bn_feature, logits)`, of shapes `(B, D)` and `(B, num_classes)`; only `bn_feature`
        when `num_classes` is None or 0. The logits are unnormalised (no softmax).

    Example:

    ```python
    import numpy as np
    from keras_asanet.layers import BNNeck

    f_final = np.random.rand(8, 1024).astype("float32")
    bn_feature, logits = BNNeck(num_classes=625)(f_final, training=True)  # (8, 1024), (8, 625)
    test_feature = BNNeck(num_classes=None)(f_final)  # (8, 1024)
    ```

    Reference:
        Eq. 16 (`p_i = W_ID(BN(f_final,i))`) of Chai et al. (ASA-Net); Luo et al., "Bag of Tricks
        and a Strong Baseline for Deep Person Re-identification"; Ye et al., AGW.
    """

    def __init__(
        self,
        num_classes,
        momentum=0.9,
        epsilon=1e-5,
        kernel_initializer=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if num_classes == 0 and not isinstance(num_classes, bool):
            num_classes = None
        self.num_classes = check_positive_int(num_classes, "num_classes", allow_none=True)
        self.momentum = float(momentum)
        self.epsilon = float(epsilon)
        if kernel_initializer is None:
            kernel_initializer = keras.initializers.RandomNormal(stddev=0.001)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)

    def build(self, input_shape):
        input_shape = check_rank(input_shape, 2, "BNNeck")
        if input_shape[-1] is None:
            raise ValueError(
                f"The feature axis of `inputs` of BNNeck must be known; received {input_shape}."
            )
        self.batch_norm = FusedBatchNormalization(
            center=False,
            momentum=self.momentum,
            epsilon=self.epsilon,
            dtype=self.dtype_policy,
            name="batch_norm",
        )
        self.batch_norm.build(input_shape)
        self.classifier = None
        if self.num_classes is not None:
            self.classifier = keras.layers.Dense(
                self.num_classes,
                use_bias=False,
                kernel_initializer=self.kernel_initializer,
                dtype=self.dtype_policy,
                name="classifier",
            )
            self.classifier.build(input_shape)
        self.built = True

    def call(self, inputs, training=None):
        check_rank(inputs.shape, 2, "BNNeck")
        bn_feature = call_sublayer(self.batch_norm, inputs, training=training)
        if self.classifier is None:
            return bn_feature
        return bn_feature, call_sublayer(self.classifier, bn_feature)

    def compute_output_shape(self, input_shape):
        input_shape = check_rank(input_shape, 2, "BNNeck")
        if self.num_classes is None:
            return input_shape
        return input_shape, (input_shape[0], self.num_classes)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_classes": self.num_classes,
                "momentum": self.momentum,
                "epsilon": self.epsilon,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            }
        )
        return config
