"""Which other backend a cross-backend parity test compares the current one with.

The README's test command runs the suite once per backend. A parity test that started a
process for each of the two other backends would check every pair twice over the command and
pay six subprocess start-ups (10-80 s each, mostly imports and compiling). Instead each run
compares its backend with the next one in a cycle: jax with torch, torch with tensorflow,
tensorflow with jax. Over the three runs every pair is checked once, in one subprocess per run.

Set `KERAS_ASANET_PARITY=all` to compare with both other backends in one run (what a session
running only one backend may want).
"""

import os

import keras

BACKENDS = ("jax", "torch", "tensorflow")


def partner_backends(current=None):
    """The backends a parity test of `current` (default: the running one) compares against.

    Returns:
        A tuple of backend names: the next backend in the cycle jax -> torch -> tensorflow ->
        jax, or both others when the environment variable `KERAS_ASANET_PARITY` is `all`.
    """
    current = current or keras.backend.backend()
    index = BACKENDS.index(current)
    if os.environ.get("KERAS_ASANET_PARITY") == "all":
        return tuple(b for b in BACKENDS if b != current)
    return (BACKENDS[(index + 1) % len(BACKENDS)],)
