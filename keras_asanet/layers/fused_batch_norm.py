"""`FusedBatchNormalization`: Keras' batch norm, with one fused kernel on torch and TensorFlow."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keras_asanet")
class FusedBatchNormalization(keras.layers.BatchNormalization):
    """`keras.layers.BatchNormalization` that calls the backend's fused kernel where it can.

    Why it exists: on the torch backend Keras normalises with a dozen elementwise ops per call
    and as many in the backward pass; with ~30 batch norms in a step that was a large share of
    the torch backend's step time (`docs/performance.md`). On torch, when the channel axis is
    axis 1 (channels-first maps, which the package's layers compute on a CPU, or `(B, C)`
    features), this layer normalises with `torch.native_batch_norm` (training) or
    `torch.nn.functional.batch_norm` (inference) instead. Everything else is Keras' layer:
    the same weights, the same config, the same moving-average update (`moving = moving *
    momentum + batch * (1 - momentum)` with the biased batch variance), float32 statistics
    under mixed precision. On TensorFlow, maps of rank 4 with channels last are normalised by
    TensorFlow's `FusedBatchNormV3` (training and inference): one op forward and one backward,
    and at inference Grappler folds it into the convolution before it, where Keras' multiply
    and add stay separate passes over the map. On JAX (where XLA fuses Keras' ops itself),
    with a mask, `renorm`, `synchronized`, float64 inputs or another channel axis, it is
    exactly `keras.layers.BatchNormalization`. The paths agree to float32 rounding (PyTorch and
    TensorFlow compute the variance in a more stable order than Keras' `E[x^2] - E[x]^2`).

    Args:
        **kwargs: the arguments of `keras.layers.BatchNormalization`.

    Returns:
        The normalised inputs, shaped like them.

    Example:

    ```python
    import numpy as np
    from keras_asanet.layers.fused_batch_norm import FusedBatchNormalization

    layer = FusedBatchNormalization(axis=1)
    maps = np.random.rand(4, 8, 6, 3).astype("float32")  # (B, C, H, W)
    outputs = layer(maps, training=True)  # moving statistics updated
    ```
    """

    def _fused_kernel_applies(self, inputs, mask):
        """Whether PyTorch's kernel normalises this call (torch, channels on axis 1)."""
        if keras.backend.backend() != "torch" or not self._plain_statistics(mask):
            return False
        rank = len(inputs.shape)
        return rank >= 2 and self.axis % rank == 1

    def _tf_kernel_applies(self, inputs, mask):
        """Whether TensorFlow's fused op normalises this call (training or inference):
        tensorflow, channels-last maps of rank 4, not float64."""
        if keras.backend.backend() != "tensorflow" or not self._plain_statistics(mask):
            return False
        if keras.backend.standardize_dtype(inputs.dtype) == "float64":
            return False
        return len(inputs.shape) == 4 and self.axis % 4 == 3

    def _plain_statistics(self, mask):
        return mask is None and not (
            self.renorm or self.synchronized or not isinstance(self.axis, int)
        )

    def call(self, inputs, training=None, mask=None):
        if self._tf_kernel_applies(inputs, mask):
            from keras_asanet.layers import tf_batch_norm as kernels
        elif self._fused_kernel_applies(inputs, mask):
            from keras_asanet.layers import torch_batch_norm as kernels
        else:
            return super().call(inputs, training=training, mask=mask)
        # Statistics in float32 under mixed precision, as Keras does. The casts are skipped
        # when there is nothing to cast: on torch each `ops.cast` is tens of microseconds of
        # Python, and a training step makes ~30 of these calls.
        variables = [self.gamma if self.scale else None, self.beta if self.center else None]
        values = [None if v is None else v.value for v in variables]
        values += [self.moving_mean.value, self.moving_variance.value]
        cast = keras.backend.standardize_dtype(inputs.dtype) != "float32" or any(
            v is not None and v.dtype != inputs.dtype for v in values
        )
        if cast:
            dtype = keras.backend.result_type(inputs.dtype, "float32")
            inputs = ops.cast(inputs, dtype)
            values = [None if v is None else ops.cast(v, dtype) for v in values]
        gamma, beta, moving_mean, moving_variance = values
        if training and self.trainable:
            outputs, mean, variance = kernels.normalize_training(inputs, gamma, beta, self.epsilon)
            values, batches = [moving_mean, moving_variance], [mean, variance]
            # In place where the kernel module can (torch, on the variables' own tensors);
            # otherwise Keras' update through `assign`.
            if cast or not kernels.update_in_place(values, batches, self.momentum):
                for variable, value, batch in zip(
                    [self.moving_mean, self.moving_variance], values, batches
                ):
                    variable.assign(value * self.momentum + batch * (1.0 - self.momentum))
        else:
            outputs = kernels.normalize_inference(
                inputs, moving_mean, moving_variance, gamma, beta, self.epsilon
            )
        if keras.backend.standardize_dtype(outputs.dtype) == self.compute_dtype:
            return outputs
        return ops.cast(outputs, self.compute_dtype)
