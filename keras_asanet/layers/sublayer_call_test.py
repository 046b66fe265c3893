import contextlib
from unittest import mock

import keras
import numpy as np
from absl.testing import parameterized

from keras_asanet.layers import sublayer_call
from keras_asanet.layers.sublayer_call import call_sublayer
from keras_asanet.tests.test_case import TestCase, compute_gradients

ON_TORCH = keras.backend.backend() == "torch"


class _Recording(keras.layers.Dense):
    """A Dense layer that counts how often Keras' `__call__` runs."""

    calls = 0

    def __call__(self, *args, **kwargs):
        type(self).calls += 1
        return super().__call__(*args, **kwargs)


def _tiny_asanet(dtype=None):
    from keras_asanet.models import ASANet

    model = ASANet.from_preset("asanet_tiny", num_identities=4, dtype=dtype)
    model.build_for_input((None, 2, 32, 16, 3))
    return model


def _batch():
    rng = np.random.default_rng(0)
    clips = rng.uniform(0, 255, (4, 2, 32, 16, 3)).astype("float32")
    targets = {
        "pid": np.array([0, 0, 1, 1], "int32"),
        "re_attr": rng.integers(0, 2, (4, 32)).astype("float32"),
        "ir_attr": rng.integers(0, 2, (4, 11)).astype("float32"),
        "attr_mask": np.ones((4,), "float32"),
    }
    return clips, targets


class CallSublayerTest(TestCase):
    def _dense(self, **kwargs):
        _Recording.calls = 0
        layer = _Recording(3, **kwargs)
        layer.build((None, 5))
        return layer

    def _x(self, dtype="float32"):
        return keras.ops.convert_to_tensor(np.ones((2, 5), dtype))

    def test_same_outputs_as_keras_call(self):
        layer = self._dense()
        x = self._x()
        self.assertAllEqual(call_sublayer(layer, x), layer(x))

    def test_direct_path_on_torch_only(self):
        """On torch (eager every step) Keras' `__call__` is skipped; on JAX and TensorFlow,
        which trace a step once, it always runs."""
        layer = self._dense()
        call_sublayer(layer, self._x())
        self.assertEqual(_Recording.calls, 0 if ON_TORCH else 1)

    def test_keras_call_where_it_does_something(self):
        """Every case in which `__call__` converts, builds, casts or hooks goes through it."""
        cases = {
            "unbuilt": (lambda: _Recording(3), self._x),
            "numpy input": (self._dense, lambda: np.ones((2, 5), "float32")),
            "float64 input to a float32 layer": (self._dense, lambda: self._x("float64")),
            "mixed precision policy": (
                lambda: self._dense(dtype="mixed_float16"),
                lambda: self._x("float16"),
            ),
        }
        if ON_TORCH:
            cases["forward hook"] = (self._hooked_dense, self._x)
            cases["masked input"] = (self._dense, self._masked_x)
        for name, (make_layer, make_x) in cases.items():
            layer = make_layer()
            _Recording.calls = 0
            outputs = call_sublayer(layer, make_x())
            self.assertEqual(_Recording.calls, 1, msg=name)
            self.assertEqual(tuple(outputs.shape), (2, 3), msg=name)
        if ON_TORCH:  # a hook registered for every torch module, after the first calls
            from torch.nn.modules.module import register_module_forward_hook

            handle = register_module_forward_hook(lambda module, args, output: None)
            try:
                layer = self._dense()
                call_sublayer(layer, self._x())
                self.assertEqual(_Recording.calls, 1, msg="global forward hook")
            finally:
                handle.remove()
            call_sublayer(layer, self._x())
            self.assertEqual(_Recording.calls, 1, msg="hook removed: the direct path again")

    def _hooked_dense(self):
        layer = self._dense()
        layer.register_forward_hook(lambda module, args, output: None)
        return layer

    def _masked_x(self):
        x = self._x()
        x._keras_mask = keras.ops.ones((2,), "bool")
        return x

    def test_symbolic_inputs_use_keras_call(self):
        layer = self._dense()
        outputs = call_sublayer(layer, keras.Input((5,)))
        self.assertIsInstance(outputs, keras.KerasTensor)
        self.assertEqual(_Recording.calls, 1)

    @parameterized.named_parameters(("float32", None), ("mixed_bfloat16", "mixed_bfloat16"))
    def test_training_step_is_the_same_to_the_bit(self, dtype):
        """ASANet's training-mode outputs, gradients and moving statistics with the direct
        path (and its torch convolution, `torch_conv`) equal those through Keras' `__call__`
        exactly: the same ops in the same order, in float32 and under mixed precision."""
        clips, targets = _batch()
        runs = []
        for direct in (True, False):
            keras.utils.set_random_seed(3)
            model = _tiny_asanet(dtype)
            patch = (
                contextlib.nullcontext()
                if direct
                else mock.patch.object(sublayer_call, "_direct_call_applies", return_value=False)
            )
            with patch:

                def loss_fn(model=model):
                    outputs = model(clips, training=True)
                    return model.compute_loss(clips, targets, outputs)

                grads = compute_gradients(loss_fn, model.trainable_variables)
                outputs = model(clips, training=True)
            moving = [keras.ops.convert_to_numpy(v) for v in model.non_trainable_variables]
            runs.append((outputs, grads, moving))
        (out_a, grads_a, moving_a), (out_b, grads_b, moving_b) = runs
        for key in out_a:
            self.assertAllEqual(out_a[key], out_b[key], msg=key)
        self.assertEqual(len(grads_a), len(grads_b))
        for a, b in zip(grads_a, grads_b):
            self.assertAllEqual(a, b)
        for a, b in zip(moving_a, moving_b):
            self.assertAllEqual(a, b)
