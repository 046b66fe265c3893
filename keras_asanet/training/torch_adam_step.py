"""The one place where training needs the torch backend: Adam's update of every variable at
once, with `torch._foreach_*` ops.

Why it exists: on the torch backend Keras runs an optimiser's `update_step` once per variable,
each of its dozen ops dispatched from Python. For the main job's `asanet_tiny` (about 140
trainable variables) that took 87 ms of a 283 ms training step (cProfile, 4 epochs on a
2-core Intel Xeon). Keras has an all-at-once update (its torch `Adam._parallel_update_step`)
but uses it only for its own `keras.optimizers.Adam` class, not for subclasses such as
`CoupledWeightDecayAdam`. `coupled_adam_update` is that update: the L2 term added to the
gradients of the decayed variables, then Adam's moments and step with the same `foreach` ops,
in the same order, as Keras' torch Adam (so a run matches one through Keras' function to the
bit; the per-variable `update_step` agrees to float32 rounding).

What it adds to Keras' function: the lists of torch tensors behind the variables, their two
moments and the decayed subset are looked up once per set of variables and kept (the tensors
behind Keras variables keep their identity: `assign` copies into them). Rebuilding them read
each of ~140 variables' `value` three times and matched it to its moments, about 2 ms of
Python per step. The lists are rebuilt whenever the variables, the optimiser's moment
variables or the decay rule change, and never used inside a `keras.StatelessScope`.
"""

from __future__ import annotations

import weakref

import torch
from keras import ops

try:  # whether Keras reads variables from a `StatelessScope` (private; absent -> no cache)
    from keras.src.backend.common.stateless_scope import in_stateless_scope
except ImportError:  # pragma: no cover - depends on the Keras version
    in_stateless_scope = None

_PLANS = weakref.WeakKeyDictionary()  # optimizer -> (key, plan)


def supports(optimizer, variables):
    """Whether `coupled_adam_update` covers this update (plain Adam, one dtype)."""
    return not optimizer.amsgrad and len({v.dtype for v in variables}) == 1


class _Plan:
    """The torch tensors of one update: variables, first and second moments, and the
    positions of the variables that take the L2 term."""

    def __init__(self, optimizer, variables):
        self.variables = [v.value for v in variables]
        indices = [optimizer._get_variable_index(v) for v in variables]
        self.momentums = [optimizer._momentums[i].value for i in indices]
        self.velocities = [optimizer._velocities[i].value for i in indices]
        self.decayed = []
        if optimizer.weight_decay and not optimizer.decoupled_weight_decay:
            self.decayed = [i for i, v in enumerate(variables) if optimizer._use_weight_decay(v)]


def _plan(optimizer, variables):
    if in_stateless_scope is None or in_stateless_scope():
        return _Plan(optimizer, variables)
    key = (
        tuple(map(id, variables)),
        id(optimizer._momentums),
        id(optimizer._velocities),
        optimizer.weight_decay,
        optimizer.decoupled_weight_decay,
        optimizer.weight_decay_exclude,  # (Keras' own exclusions are fixed once built)
    )
    cached = _PLANS.get(optimizer)
    if cached is not None and cached[0] == key:
        return cached[1]
    plan = _Plan(optimizer, variables)
    _PLANS[optimizer] = (key, plan)
    return plan


@torch.no_grad()
def coupled_adam_update(optimizer, grads, variables, learning_rate):
    """One Adam step of `optimizer` (a `CoupledWeightDecayAdam`) over all `variables`.

    Args:
        optimizer: the `CoupledWeightDecayAdam` whose moments and settings are used.
        grads: the gradients (torch tensors), aligned with `variables`.
        variables: the `keras.Variable`s to update (`supports(optimizer, variables)`).
        learning_rate: the step's learning rate (a float or a scalar tensor).
    """
    plan = _plan(optimizer, variables)
    grads = list(grads)
    if plan.decayed:
        with_decay = torch._foreach_add(
            [grads[i] for i in plan.decayed],
            [plan.variables[i] for i in plan.decayed],
            alpha=float(optimizer.weight_decay),
        )
        for i, grad in zip(plan.decayed, with_decay):
            grads[i] = grad
    # Keras' torch Adam, operation for operation.
    dtype = plan.variables[0].dtype
    lr = ops.cast(learning_rate, dtype)
    local_step = ops.cast(optimizer.iterations + 1, dtype)
    beta_1_power = ops.power(ops.cast(optimizer.beta_1, dtype), local_step)
    beta_2_power = ops.power(ops.cast(optimizer.beta_2, dtype), local_step)
    alpha = lr * ops.sqrt(1 - beta_2_power) / (1 - beta_1_power)
    m, v = plan.momentums, plan.velocities
    torch._foreach_mul_(m, optimizer.beta_1)
    torch._foreach_add_(m, grads, alpha=1 - optimizer.beta_1)
    torch._foreach_mul_(v, optimizer.beta_2)
    torch._foreach_add_(v, torch._foreach_mul(grads, grads), alpha=1 - optimizer.beta_2)
    torch._foreach_add_(
        plan.variables,
        torch._foreach_div(
            torch._foreach_mul(m, alpha),
            torch._foreach_add(torch._foreach_sqrt(v), optimizer.epsilon),
        ),
        alpha=-1,
    )
