"""`call_sublayer`: run a built sublayer's `call` directly where Keras' `__call__` adds nothing.

Why it exists: on the torch backend a model runs eagerly, so every `Layer.__call__` runs its
Python on every step: converting the arguments, binding the call signature, checking the
input spec, resolving `training`, masks, the name and autocast scopes, then torch's
`Module.__call__`. That is about 0.1 ms per call on a CPU, more than the kernel of a small
convolution. ASA-Net's training step makes ~120 such calls (44 convolutions, 32 batch norms,
...), most of them from this package's own layers into sublayers they created and built
themselves; those ~16 ms were the largest part of what kept the torch backend below the
plain-PyTorch reference (`docs/performance.md`). On JAX and TensorFlow a step is traced once,
so the overhead does not recur there, and this helper takes the normal path (on JAX with the
one exception below).

The direct path is taken only when `__call__` would do nothing but call `call`: the torch
backend, a built layer, concrete (not symbolic) tensors of the layer's input dtype without
Keras masks, no autocast scope to enter or leave (the same test as `Layer.__call__`), no
quantisation, no rematerialisation, and no torch forward hooks. Callers pass `training`
explicitly where the sublayer takes it. Anything else goes through `layer(...)` as usual, so
the outputs are the same either way (tested to the bit).

On that path a plain channels-last `keras.layers.Conv2D` (ASA-Net's 1x1 convolutions on the
identity map and in ASRE) runs through `torch_conv`, which hands torch's `conv2d` the input
as a permuted view instead of Keras' two layout copies: the same bytes, the same kernel, the
same bits.

On JAX every call takes the normal path except one: a `keras.layers.Conv2D` whose output has
fewer positions than its kernel has taps (the 3x3 convolutions on the 4x2 maps of 64x32
frames) runs through `jax_conv`, as patches times kernel, because XLA's CPU compiler swaps
such a convolution's operands and runs it slowly. That agrees with Keras' convolution to
float rounding, not to the bit.
"""

import functools

import keras

try:  # Keras' own record of the active autocast scope (private; absent -> the normal path)
    from keras.src.backend.common.variables import get_autocast_scope as _autocast_scope
except ImportError:  # pragma: no cover - depends on the Keras version
    _autocast_scope = None


def call_sublayer(layer, inputs, **kwargs):
    """Calls `layer` on `inputs`, skipping `Layer.__call__` where it would change nothing.

    Args:
        layer: a `keras.layers.Layer` created (and built) by the calling layer.
        inputs: a tensor, or a list of tensors (e.g. `ASRE`'s two maps).
        **kwargs: the call's keyword arguments (e.g. `training=training`).

    Returns:
        What `layer(inputs, **kwargs)` returns.

    Example:

    ```python
    import keras
    import numpy as np
    from keras_asanet.layers.sublayer_call import call_sublayer

    dense = keras.layers.Dense(4)
    dense.build((None, 3))
    x = keras.ops.convert_to_tensor(np.ones((2, 3), "float32"))
    y = call_sublayer(dense, x)  # == dense(x)
    ```
    """
    if _direct_call_applies(layer, inputs):
        if not kwargs and _torch_conv().applies(layer):
            return _torch_conv().conv2d_call(layer, inputs)
        return layer.call(inputs, **kwargs)
    if not kwargs and keras.backend.backend() == "jax" and _jax_conv().applies(layer, inputs):
        return _jax_conv().conv2d_call(layer, inputs)
    return layer(inputs, **kwargs)


def _direct_call_applies(layer, inputs):
    if keras.backend.backend() != "torch" or _autocast_scope is None or not layer.built:
        return False
    torch, hooks = _torch()
    dtype = getattr(torch, layer.input_dtype, None)
    for tensor in inputs if isinstance(inputs, (list, tuple)) else (inputs,):
        if not isinstance(tensor, torch.Tensor) or tensor.dtype != dtype:
            return False
        if getattr(tensor, "_keras_mask", None) is not None:
            return False
    if layer.quantization_mode is not None or getattr(layer, "_remat_mode", None) is not None:
        return False
    if layer._forward_hooks or layer._forward_pre_hooks or any(hooks):
        return False
    scope = _autocast_scope()
    if scope is None:  # `__call__` would enter a scope for a mixed policy
        return layer.compute_dtype == layer.variable_dtype
    # `__call__` would leave or change the scope unless it already is the layer's.
    return layer.autocast and scope.dtype == layer.compute_dtype


@functools.cache
def _torch_conv():
    """`torch_conv`, imported on first use (it imports torch)."""
    from keras_asanet.layers import torch_conv

    return torch_conv


@functools.cache
def _jax_conv():
    """`jax_conv`, imported on first use (it imports jax)."""
    from keras_asanet.layers import jax_conv

    return jax_conv


@functools.cache
def _torch():
    """The torch module and torch's global forward (pre-)hook registries, imported once."""
    import torch
    from torch.nn.modules import module

    # The registries themselves (filled and emptied in place), not copies.
    hooks = [
        getattr(module, name, {}) for name in ("_global_forward_hooks", "_global_forward_pre_hooks")
    ]
    return torch, hooks
