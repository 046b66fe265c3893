"""The one place where training needs the torch backend: Adam's update of every variable at
once, with `torch._foreach_*` ops.

Why it exists: on the torch backend Keras runs an optimiser's `update_step` once per variable,
each of its dozen ops dispatched from Python. For the main job's `asanet_tiny` (about 140
trainable variables) that took 87 ms of a 283 ms training step (cProfile, 4 epochs on a
2-core Intel Xeon). Keras has the all-at-once update (its torch `Adam._parallel_update_step`)
but uses it only for its own `keras.optimizers.Adam` class, not for subclasses such as
`CoupledWeightDecayAdam`. `coupled_adam_update` adds the L2 term to the gradients of the
decayed variables and hands them to that Keras function: the arithmetic is Keras' Adam, in
another order of float operations than the per-variable `update_step` (results agree to
float32 rounding).
"""

from __future__ import annotations

import torch

try:  # Keras' own all-at-once torch Adam step (a private module: checked, not assumed)
    from keras.src.backend.torch.optimizers.torch_adam import Adam as _KerasTorchAdam

    _parallel_update_step = _KerasTorchAdam._parallel_update_step
except (ImportError, AttributeError):  # another Keras: the per-variable path stays
    _parallel_update_step = None


def supports(optimizer, variables):
    """Whether `coupled_adam_update` covers this update (Keras' step found, one dtype)."""
    return _parallel_update_step is not None and len({v.dtype for v in variables}) == 1


@torch.no_grad()
def coupled_adam_update(optimizer, grads, variables, learning_rate):
    """One Adam step of `optimizer` (a `CoupledWeightDecayAdam`) over all `variables`.

    Args:
        optimizer: the `CoupledWeightDecayAdam` whose moments and settings are used.
        grads: the gradients (torch tensors), aligned with `variables`.
        variables: the `keras.Variable`s to update (`supports(optimizer, variables)`).
        learning_rate: the step's learning rate (a float or a scalar tensor).
    """
    grads = list(grads)
    if optimizer.weight_decay and not optimizer.decoupled_weight_decay:
        decayed = [i for i, v in enumerate(variables) if optimizer._use_weight_decay(v)]
        if decayed:
            with_decay = torch._foreach_add(
                [grads[i] for i in decayed],
                [variables[i].value for i in decayed],
                alpha=float(optimizer.weight_decay),
            )
            for i, grad in zip(decayed, with_decay):
                grads[i] = grad
    _parallel_update_step(optimizer, grads, variables, learning_rate)
