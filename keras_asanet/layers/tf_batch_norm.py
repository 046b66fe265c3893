"""The TensorFlow kernel behind `FusedBatchNormalization` at inference (tensorflow only).

Keras' `BatchNormalization` on TensorFlow normalises with `tf.nn.batch_normalization`: a
multiply and an add, each a pass over the map that Grappler leaves apart from the
convolution before them. TensorFlow's own `FusedBatchNormV3` is one op, and at inference
Grappler's remapper folds it into the `Conv2D` before it (and the ReLU after it), so the
three become one kernel. On the tiny ASA-Net's dense extraction that was about a tenth of
the TensorFlow time (`docs/performance.md`). This module is the one place that calls it;
`FusedBatchNormalization` decides when it may.
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
    if gamma is None:
        gamma = tf.ones_like(mean)
    if beta is None:
        beta = tf.zeros_like(mean)
    outputs, *_ = tf.raw_ops.FusedBatchNormV3(
        x=x,
        scale=gamma,
        offset=beta,
        mean=mean,
        variance=variance,
        epsilon=epsilon,
        data_format="NHWC",
        is_training=False,
    )
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
    channels = tf.shape(x)[-1]
    if gamma is None:
        gamma = tf.ones([channels], x.dtype)
    if beta is None:
        beta = tf.zeros([channels], x.dtype)
    empty = tf.constant([], x.dtype)
    outputs, mean, variance, *_ = tf.raw_ops.FusedBatchNormV3(
        x=x,
        scale=gamma,
        offset=beta,
        mean=empty,
        variance=empty,
        epsilon=epsilon,
        data_format="NHWC",
        is_training=True,
    )
    count = tf.cast(tf.reduce_prod(tf.shape(x)[:-1]), x.dtype)
    variance = variance * (count - 1.0) / tf.maximum(count, 1.0)
    return outputs, tf.stop_gradient(mean), tf.stop_gradient(variance)
