"""The one place where the visualisation code needs the backend: a gradient at a tapped
intermediate tensor.

Grad-CAM needs `d score / d A` for a feature map `A` computed inside the model. Keras 3 has no
backend-neutral gradient, so each backend gets one small function here, and `gradient_at_tap`
picks the one of the running backend. Everything else in `keras_asanet.visualization` uses
`keras.ops` only.

The contract of all three: `forward(tap)` runs the model once and returns `(score, aux)`,
`score` a scalar tensor, `aux` any nest of tensors; inside, the model's code passes the feature
map through `tap(A)` and uses what `tap` returns. The helper returns numpy arrays
`(score, A, dscore/dA, aux)`; `A` is the value `tap` received.
"""

from __future__ import annotations

import numpy as np


def _to_numpy(nest):
    import keras

    return keras.tree.map_structure(lambda t: np.asarray(keras.ops.convert_to_numpy(t)), nest)


def _tensorflow_gradient(forward, variables):
    import tensorflow as tf

    seen = {}

    def tap(a):
        tape.watch(a)
        seen["a"] = a
        return a

    with tf.GradientTape() as tape:
        score, aux = forward(tap)
    grad = tape.gradient(score, seen["a"])
    return score, seen["a"], grad, aux


def _torch_gradient(forward, variables):
    import keras
    import torch

    seen = {}

    def tap(a):
        if not a.requires_grad:  # a map computed from the input only (no weight before it)
            a = a.detach().requires_grad_(True)
        seen["a"] = a
        return a

    with torch.enable_grad():
        score, aux = forward(tap)
        (grad,) = torch.autograd.grad(score, seen["a"])
    aux = keras.tree.map_structure(lambda t: t.detach() if hasattr(t, "detach") else t, aux)
    return score.detach(), seen["a"].detach(), grad, aux


def _jax_gradient(forward, variables):
    import jax
    import keras

    variables = list(variables)
    values = [v.value for v in variables]

    def run(vals, tap):
        with keras.StatelessScope(state_mapping=list(zip(variables, vals))):
            return forward(tap)

    # The map's shape, traced abstractly (nothing is compiled or run).
    seen = {}

    def record(a):
        seen["shape"] = jax.ShapeDtypeStruct(a.shape, a.dtype)
        return a

    jax.eval_shape(lambda vals: run(vals, record), values)

    def shifted(delta, vals):
        # d score / d A at A is d score / d delta at delta = 0 for the map A + delta.
        out = {}

        def tap(a):
            out["a"] = a
            return a + delta

        score, aux = run(vals, tap)
        return score, (out["a"], aux)

    step = jax.jit(jax.value_and_grad(shifted, has_aux=True))
    zero = jax.numpy.zeros(seen["shape"].shape, seen["shape"].dtype)
    (score, (a, aux)), grad = step(zero, values)
    return score, a, grad, aux


_HELPERS = {
    "tensorflow": _tensorflow_gradient,
    "torch": _torch_gradient,
    "jax": _jax_gradient,
}


def gradient_at_tap(forward, variables=()):
    """`d score / d A` for the feature map `A` that `forward` passes through its `tap`.

    Args:
        forward: `forward(tap) -> (score, aux)`; it must call `tap` exactly once, on the
            feature map, and continue with what `tap` returns.
        variables: the Keras variables `forward` reads (`model.variables`). JAX runs
            `forward` compiled and stateless with their values as arguments (so the weights
            are not baked into the program); the other backends ignore them.

    Returns:
        `(score, A, grad, aux)` as numpy arrays (`aux` a nest of them), `grad` the shape of
        `A`.

    Example:

    >>> def forward(tap):                                                 # doctest: +SKIP
    ...     a = tap(feature_layer(x))
    ...     return keras.ops.sum(head(a)[:, 3]), ()
    >>> score, a, grad, _ = gradient_at_tap(forward, model.variables)    # doctest: +SKIP
    """
    import keras

    backend = keras.backend.backend()
    if backend not in _HELPERS:
        raise ValueError(
            f"Grad-CAM needs gradients, which keras_asanet implements for the "
            f"{', '.join(sorted(_HELPERS))} backends; the current backend is {backend!r}."
        )
    score, a, grad, aux = _HELPERS[backend](forward, variables)
    if grad is None:
        raise ValueError(
            "The score does not depend on the tapped feature map (its gradient is None): "
            "tap a map that the score is computed from."
        )
    return _to_numpy(score), _to_numpy(a), _to_numpy(grad), _to_numpy(aux)
