"""The PyTorch kernels behind `FusedBatchNormalization` (imported on the torch backend only).

Keras' `BatchNormalization` on torch is written with elementwise ops: a training call is about
a dozen kernels forward (mean, square, mean, subtract, rsqrt, multiply, add, two moving
averages) and as many backward, each a pass over the map and a Python dispatch. PyTorch's
`native_batch_norm` does the normalisation in one kernel each way. This module is the one
place that calls it; `FusedBatchNormalization` decides when it may.
"""

import torch

try:  # whether Keras reads variables from a `StatelessScope` (private; absent -> assign)
    from keras.src.backend.common.stateless_scope import in_stateless_scope
except ImportError:  # pragma: no cover - depends on the Keras version
    in_stateless_scope = None


def normalize_training(x, gamma, beta, epsilon):
    """Normalises `x` (channels on axis 1) with its batch statistics in one fused kernel.

    Args:
        x: float tensor `(B, C, ...)`.
        gamma, beta: `(C,)` tensors or None.
        epsilon: float added to the variance.

    Returns:
        `(outputs, mean, variance)`: the normalised tensor (differentiable in `x`, `gamma`,
        `beta`), and the batch mean and biased variance per channel, detached (what Keras
        folds into its moving statistics).
    """
    outputs, mean, inverse_std = torch.ops.aten.native_batch_norm(
        x, gamma, beta, None, None, True, 0.0, epsilon
    )
    with torch.no_grad():
        variance = torch.clamp_min(inverse_std.pow(-2) - epsilon, 0.0)
    return outputs, mean.detach(), variance


def normalize_inference(x, mean, variance, gamma, beta, epsilon):
    """Normalises `x` (channels on axis 1) with given statistics in one fused kernel.

    Returns:
        `gamma * (x - mean) / sqrt(variance + epsilon) + beta`.
    """
    return torch.nn.functional.batch_norm(
        x, mean, variance, gamma, beta, training=False, momentum=0.0, eps=epsilon
    )


def update_in_place(values, batches, momentum):
    """`value <- value * momentum + batch * (1 - momentum)` in place, Keras' moving average.

    `values` are the moving-statistics variables' own tensors (read without a cast). The
    same two float operations as Keras' layer, without `Variable.assign`, which costs about
    20 microseconds of Python per call on torch, twice per batch norm per step.

    Returns:
        False, having changed nothing, inside a `keras.StatelessScope` (e.g.
        `stateless_call`) or while `torch.compile` traces: there the layer's `assign`
        records the update where Keras expects it.
    """
    if in_stateless_scope is None or in_stateless_scope() or torch.compiler.is_compiling():
        return False
    with torch.no_grad():
        for value, batch in zip(values, batches):
            value.mul_(momentum).add_(batch * (1.0 - momentum))
    return True
