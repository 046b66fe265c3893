"""The TensorFlow kernels behind `FusedBatchNormalization` (imported on tensorflow only).

Keras' `BatchNormalization` on TensorFlow is written with elementwise ops: in training the
moments, then a multiply and an add, and as many passes backward; at inference the multiply
and the add, which Grappler leaves apart from the convolution before them. TensorFlow's own
`FusedBatchNormV3` is one op each way, and at inference Grappler's remapper folds it into the
`Conv2D` before it (and the ReLU after it). On the tiny ASA-Net that made a `tf.function`
training step about 1.18x faster and dense extraction about 1.1x (`docs/performance.md`).
This module is the one place that calls it; `FusedBatchNormalization` decides when it may.
"""

import tensorflow as tf


def normalize_inference(x, mean, variance, gamma, beta, epsilon):
    """Normalises channels-last maps with given statistics in one fused op.

    Args:
        x: float32 tensor `(B, H, W, C)`.
        mean, variance: `(C,)` float32 statistics.
        gamma, beta: `(C,)` float32 tensors, or None (ones / zeros).
        epsilon: float added to the variance (used as given: `tf.nn.fused_batch_norm`
            would raise it to 1.001e-5).

    Returns:
        `gamma * (x - mean) / sqrt(variance + epsilon) + beta`, shaped like `x`.
    """
    outputs, _, _ = _fused_batch_norm(x, gamma, beta, mean, variance, epsilon, training=False)
    return outputs


def normalize_training(x, gamma, beta, epsilon):
    """Normalises channels-last maps with their batch statistics in one fused op.

    Args:
        x: float32 tensor `(B, H, W, C)`.
        gamma, beta: `(C,)` float32 tensors, or None (ones / zeros).
        epsilon: float added to the variance.

    Returns:
        `(outputs, mean, variance)`: the normalised tensor (differentiable in `x`, `gamma`,
        `beta` through TensorFlow's registered gradient), and the batch mean and *biased*
        variance per channel, gradient-free (what Keras folds into its moving statistics;
        the op's own variance carries Bessel's correction, undone here).
    """
    empty = tf.constant([], x.dtype)  # the op takes no statistics in training
    outputs, mean, variance = _fused_batch_norm(
        x, gamma, beta, empty, empty, epsilon, training=True
    )
    count = tf.cast(tf.reduce_prod(tf.shape(x)[:-1]), x.dtype)
    variance = variance * (count - 1.0) / tf.maximum(count, 1.0)
    return outputs, tf.stop_gradient(mean), tf.stop_gradient(variance)


def update_in_place(values, batches, momentum):
    """Never: in a graph the moving averages are `assign` ops (the layer's own update)."""
    del values, batches, momentum
    return False


def _fused_batch_norm(x, gamma, beta, mean, variance, epsilon, training):
    """`FusedBatchNormV3` on NHWC maps, ones / zeros standing in for a missing gamma / beta;
    returns `(outputs, batch_mean, batch_variance)`."""
    channels = tf.shape(x)[-1]
    if gamma is None:
        gamma = tf.ones([channels], x.dtype)
    if beta is None:
        beta = tf.zeros([channels], x.dtype)
    outputs, batch_mean, batch_variance, *_ = tf.raw_ops.FusedBatchNormV3(
        x=x,
        scale=gamma,
        offset=beta,
        mean=mean,
        variance=variance,
        epsilon=epsilon,
        data_format="NHWC",
        is_training=training,
    )
    return outputs, batch_mean, batch_variance
