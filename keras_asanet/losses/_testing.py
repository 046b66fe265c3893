"""Test-only helpers of the loss tests (not part of the public API)."""

import keras

from keras_asanet.tests.test_case import compute_gradients


def gradients(loss_fn, variables):
    """`compute_gradients`, but compiled with `jax.jit` on JAX.

    Eager JAX compiles every primitive separately for each new shape (seconds per loss);
    one jitted gradient is much faster and also exercises the traced code path.
    """
    if keras.backend.backend() != "jax":
        return compute_gradients(loss_fn, variables)
    import jax

    def stateless(values):
        with keras.StatelessScope(state_mapping=list(zip(variables, values))):
            return loss_fn()

    return list(jax.jit(jax.grad(stateless))([v.value for v in variables]))
