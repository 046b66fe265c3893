import keras
import numpy as np
import pytest

from keras_asanet.layers.sublayer_call import call_sublayer
from keras_asanet.tests.test_case import TestCase

pytestmark = pytest.mark.only_backends("torch")

# (name, Conv2D arguments, input shape): the 1x1 convolutions ASA-Net uses, and the other
# cases `applies` admits.
CASES = [
    ("1x1, identity map to f_re", dict(filters=32, kernel_size=1), (6, 8, 4, 256)),
    (
        "1x1 to one channel (ASRE's mask), sigmoid",
        dict(filters=1, kernel_size=1, activation="sigmoid"),
        (6, 8, 4, 32),
    ),
    ("1x1 from one channel", dict(filters=5, kernel_size=1), (6, 8, 4, 1)),
    ("1x1 on a 1x1 map, no bias", dict(filters=7, kernel_size=1, use_bias=False), (6, 1, 1, 16)),
    (
        "3x3 same, relu",
        dict(filters=8, kernel_size=3, padding="same", activation="relu"),
        (4, 9, 5, 6),
    ),
    (
        "3x3 same, dilation 2",
        dict(filters=8, kernel_size=3, padding="same", dilation_rate=2),
        (4, 9, 7, 6),
    ),
    ("3x3 valid, stride 2", dict(filters=8, kernel_size=3, strides=2), (4, 9, 7, 6)),
    ("grouped 1x1", dict(filters=8, kernel_size=1, groups=2), (4, 5, 3, 6)),
]


def _run(layer, x, direct):
    """Output and gradients (input, kernel, bias) through `call_sublayer` or Keras' call."""
    import torch

    x = torch.from_numpy(x).requires_grad_(True)
    out = call_sublayer(layer, x) if direct else layer(x)
    upstream = torch.from_numpy(np.random.default_rng(1).standard_normal(tuple(out.shape)))
    weights = [v.value for v in layer.trainable_variables]
    grads = torch.autograd.grad(out, [x, *weights], upstream.to(out.dtype))
    return [out.detach(), *grads]


class TorchConvTest(TestCase):
    def test_same_bits_as_keras_conv2d(self):
        """Outputs and every gradient equal Keras' own channels-last convolution exactly."""
        from keras_asanet.layers import torch_conv

        for name, kwargs, shape in CASES:
            keras.utils.set_random_seed(0)
            layer = keras.layers.Conv2D(data_format="channels_last", **kwargs)
            layer.build(shape)
            self.assertTrue(torch_conv.applies(layer), msg=name)
            x = np.random.default_rng(0).standard_normal(shape).astype("float32")
            for a, b in zip(_run(layer, x, direct=True), _run(layer, x, direct=False)):
                self.assertAllEqual(a, b, msg=name)

    def test_non_contiguous_input(self):
        """A slice whose memory is not channels-last is copied, not misread."""
        import torch

        layer = keras.layers.Conv2D(4, 1)
        layer.build((2, 5, 3, 6))
        full = torch.from_numpy(np.random.default_rng(0).standard_normal((2, 5, 3, 12)))
        x = full.float()[..., ::2]
        self.assertFalse(x.is_contiguous())
        self.assertAllEqual(call_sublayer(layer, x), layer(x.contiguous()))

    def test_no_layout_copy_of_the_input(self):
        """The point of the module: the input reaches `conv2d` as a view, not a copy."""
        import torch
        from torch.utils._python_dispatch import TorchDispatchMode

        class Copies(TorchDispatchMode):
            shapes = []

            def __torch_dispatch__(self, func, types, args=(), kwargs=None):
                if func in (torch.ops.aten.clone.default, torch.ops.aten.copy_.default):
                    self.shapes.append(tuple(args[0].shape))
                return func(*args, **(kwargs or {}))

        layer = keras.layers.Conv2D(8, 1)
        layer.build((2, 4, 3, 16))
        x = torch.ones((2, 4, 3, 16))
        with torch.no_grad():
            with Copies():
                call_sublayer(layer, x)
            direct = list(Copies.shapes)
            Copies.shapes.clear()
            with Copies():
                layer(x)
            through_keras = list(Copies.shapes)
        self.assertNotIn((2, 16, 4, 3), direct)
        self.assertIn((2, 16, 4, 3), through_keras)  # Keras' own path copies it

    def test_what_does_not_apply(self):
        """Everything `conv2d_call` would compute differently goes through Keras."""
        from keras_asanet.layers import torch_conv

        class Subclass(keras.layers.Conv2D):
            pass

        refused = {
            "channels_first": keras.layers.Conv2D(4, 1, data_format="channels_first"),
            "a subclass": Subclass(4, 1),
            "same, stride 2 (asymmetric padding)": keras.layers.Conv2D(
                4, 3, strides=2, padding="same"
            ),
            "same, even kernel (asymmetric padding)": keras.layers.Conv2D(4, 2, padding="same"),
            "not a convolution": keras.layers.Dense(4),
        }
        for name, layer in refused.items():
            self.assertFalse(torch_conv.applies(layer), msg=name)
        self.assertTrue(torch_conv.applies(keras.layers.Conv2D(4, 3, padding="same")))
