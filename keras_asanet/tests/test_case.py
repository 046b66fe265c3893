"""The shared test base class, in the style of KerasHub's `TestCase`.

Every test module of the library subclasses `TestCase` so that the same checks (output shapes,
config round trip, `.keras` save/load, use inside a functional model, gradients reaching every
trainable weight, mixed precision) are written once and run on whichever backend
`KERAS_BACKEND` names. It is built on absl's `parameterized.TestCase` (plain `unittest`), not
`tf.test.TestCase`, so the torch and JAX runs do not depend on TensorFlow internals.
"""

import os
import tempfile

import keras
import numpy as np
from absl.testing import parameterized
from keras import ops


def _is_number_nest(x):
    if isinstance(x, (list, tuple)):
        return all(_is_number_nest(i) for i in x)
    return isinstance(x, (int, float, bool, np.number, np.bool_))


def _to_numpy(x):
    """Converts a backend tensor (or a nest of them) to numpy; a (nested) list of plain
    numbers becomes one array."""
    if isinstance(x, (list, tuple)) and _is_number_nest(x):
        return np.asarray(x)
    return keras.tree.map_structure(lambda t: np.asarray(ops.convert_to_numpy(t)), x)


def _leaves(x):
    """Leaves of a nest as numpy arrays; tuples and lists count as the same structure (a
    functional model returns a tuple from `__call__` and a list from `predict`)."""
    return [np.asarray(leaf) for leaf in keras.tree.flatten(_to_numpy(x))]


def _as_list(x):
    if isinstance(x, (list, tuple)):
        return list(x)
    return [x]


class TestCase(parameterized.TestCase):
    """Base class of the library's tests, with reusable layer and model checks."""

    def setUp(self):
        super().setUp()
        keras.config.set_floatx("float32")
        keras.config.set_dtype_policy("float32")
        keras.utils.set_random_seed(1337)

    def tearDown(self):
        keras.config.set_dtype_policy("float32")
        keras.backend.clear_session()
        super().tearDown()

    # ------------------------------------------------------------------ helpers

    def get_temp_dir(self):
        """A temporary directory removed after the test."""
        temp = tempfile.TemporaryDirectory()
        self.addCleanup(temp.cleanup)
        return temp.name

    def to_numpy(self, x):
        return _to_numpy(x)

    def assertAllClose(self, actual, expected, atol=1e-6, rtol=1e-6, msg=None):
        """Compares nests of tensors / arrays elementwise."""
        actual, expected = _leaves(actual), _leaves(expected)
        self.assertEqual(len(actual), len(expected), "different numbers of tensors")
        for a, e in zip(actual, expected):
            np.testing.assert_allclose(a, e, atol=atol, rtol=rtol, err_msg=msg or "")

    def assertAllEqual(self, actual, expected, msg=None):
        actual, expected = _leaves(actual), _leaves(expected)
        self.assertEqual(len(actual), len(expected), "different numbers of tensors")
        for a, e in zip(actual, expected):
            np.testing.assert_array_equal(a, e, err_msg=msg or "")

    # ------------------------------------------------------------ layer checks

    def run_layer_test(
        self,
        cls,
        init_kwargs,
        input_data,
        expected_output_shape,
        expected_num_trainable_weights=None,
        expected_num_non_trainable_weights=None,
        call_kwargs=None,
        run_training_check=True,
        run_precision_check=True,
        run_functional_check=True,
        run_saving_check=True,
    ):
        """Runs the standard battery of checks on one layer class.

        Args:
            cls: the layer class.
            init_kwargs: dict of constructor arguments.
            input_data: a numpy array or a list of them (the layer's inputs).
            expected_output_shape: a shape tuple, or a nest of them matching the output.
            expected_num_trainable_weights: if given, checked after the first call.
            expected_num_non_trainable_weights: likewise.
            call_kwargs: extra keyword arguments for `call`.
            run_training_check: check that a loss on the output sends a non-zero gradient to
                every trainable weight.
            run_precision_check: build under `mixed_float16` and `mixed_bfloat16` and check the
                output dtype follows the compute dtype and is finite.
            run_functional_check: use the layer inside a functional model.
            run_saving_check: save that functional model to `.keras` and reload it.
        """
        call_kwargs = call_kwargs or {}
        layer = cls(**init_kwargs)
        output = layer(input_data, **call_kwargs)
        self._check_shapes(output, expected_output_shape)
        if expected_num_trainable_weights is not None:
            self.assertLen(layer.trainable_weights, expected_num_trainable_weights)
        if expected_num_non_trainable_weights is not None:
            self.assertLen(layer.non_trainable_weights, expected_num_non_trainable_weights)
        # compute_output_shape must agree with what call returns.
        input_shapes = keras.tree.map_structure(lambda x: tuple(x.shape), input_data)
        if isinstance(input_data, (list, tuple)):
            input_shapes = list(input_shapes)
        predicted = layer.compute_output_shape(input_shapes)
        self._check_shapes_against_predicted(output, predicted)
        self.run_serialization_test(layer)
        if run_functional_check:
            self.run_functional_test(cls, init_kwargs, input_data, call_kwargs, run_saving_check)
        if run_training_check:
            self.run_gradient_test(cls(**init_kwargs), input_data, call_kwargs)
        if run_precision_check:
            self.run_precision_test(cls, init_kwargs, input_data, call_kwargs)
        return output

    def _check_shapes(self, output, expected):
        if isinstance(expected, tuple) and all(isinstance(d, (int, type(None))) for d in expected):
            self.assertEqual(tuple(output.shape), expected)
            return
        out_flat = keras.tree.flatten(output)
        exp_flat = _flatten_shapes(expected)
        self.assertLen(out_flat, len(exp_flat))
        for o, e in zip(out_flat, exp_flat):
            self.assertEqual(tuple(o.shape), tuple(e))

    def _check_shapes_against_predicted(self, output, predicted):
        out_flat = keras.tree.flatten(output)
        pred_flat = _flatten_shapes(predicted)
        self.assertLen(out_flat, len(pred_flat), "compute_output_shape disagrees with call")
        for o, p in zip(out_flat, pred_flat):
            for od, pd in zip(tuple(o.shape), tuple(p)):
                if pd is not None:
                    self.assertEqual(od, pd, f"compute_output_shape {p} vs call {o.shape}")

    def run_serialization_test(self, instance):
        """`get_config` -> `from_config` gives an object with the same config, and the
        registered name round-trips through `keras.saving.serialize_keras_object`."""
        config = instance.get_config()
        revived = instance.__class__.from_config(config)
        self.assertEqual(revived.get_config(), config)
        serialized = keras.saving.serialize_keras_object(instance)
        revived = keras.saving.deserialize_keras_object(serialized)
        self.assertIsInstance(revived, instance.__class__)
        self.assertEqual(revived.get_config(), config)
        return revived

    def run_functional_test(self, cls, init_kwargs, input_data, call_kwargs=None, save=True):
        """Uses the layer inside a functional model; optionally `.keras` round trip."""
        call_kwargs = call_kwargs or {}
        inputs = [
            keras.Input(shape=tuple(x.shape)[1:], dtype=x.dtype) for x in _as_list(input_data)
        ]
        layer = cls(**init_kwargs)
        layer_inputs = inputs if isinstance(input_data, (list, tuple)) else inputs[0]
        outputs = layer(layer_inputs, **call_kwargs)
        model = keras.Model(layer_inputs, outputs)
        data = _as_list(input_data) if isinstance(input_data, (list, tuple)) else input_data
        expected = model.predict(data, verbose=0)
        direct = model(data)
        self.assertAllClose(direct, expected, atol=1e-5, rtol=1e-5)
        if save:
            self.run_model_saving_test(model, data, expected)
        return model

    def run_model_saving_test(self, model, input_data, expected=None, atol=1e-5):
        """Saves a model to `.keras`, reloads it and checks identical outputs."""
        if expected is None:
            expected = model(input_data)
        path = os.path.join(self.get_temp_dir(), "model.keras")
        model.save(path)
        restored = keras.saving.load_model(path)
        self.assertAllClose(restored(input_data), expected, atol=atol, rtol=atol)
        return restored

    def run_gradient_test(self, layer, input_data, call_kwargs=None, training=True):
        """A scalar loss on the output sends a finite, non-zero gradient to every trainable
        weight of `layer`."""
        call_kwargs = dict(call_kwargs or {})
        layer(input_data, **call_kwargs)  # build
        weights = layer.trainable_weights
        self.assertNotEmpty(weights, "layer has no trainable weights to check")

        def loss_fn():
            out = layer(input_data, training=training, **call_kwargs)
            total = 0.0
            for i, o in enumerate(keras.tree.flatten(out)):
                o = ops.cast(o, "float32")
                # A non-symmetric weighting so that normalising layers still get gradients.
                w = ops.cast(ops.reshape(ops.arange(ops.size(o)), ops.shape(o)), "float32")
                total = total + ops.sum(ops.sin(o * 0.37 + w * 0.1) * (w + 1.0 + i))
            return total

        grads = compute_gradients(loss_fn, weights)
        for w, g in zip(weights, grads):
            self.assertIsNotNone(g, f"no gradient reaches {w.path}")
            g = np.asarray(ops.convert_to_numpy(g))
            self.assertTrue(np.all(np.isfinite(g)), f"non-finite gradient for {w.path}")
            self.assertGreater(np.abs(g).max(), 0.0, f"zero gradient for {w.path}")

    def run_precision_test(self, cls, init_kwargs, input_data, call_kwargs=None):
        """Under mixed precision the output follows the compute dtype and stays finite."""
        call_kwargs = call_kwargs or {}
        for policy, dtype in (("mixed_float16", "float16"), ("mixed_bfloat16", "bfloat16")):
            layer = cls(**init_kwargs, dtype=policy)
            output = layer(input_data, **call_kwargs)
            for o in keras.tree.flatten(output):
                if "float" in str(o.dtype):
                    self.assertEqual(keras.backend.standardize_dtype(o.dtype), dtype)
                    self.assertTrue(
                        np.all(np.isfinite(ops.convert_to_numpy(ops.cast(o, "float32")))),
                        f"non-finite output under {policy}",
                    )
            for w in layer.weights:
                self.assertEqual(w.dtype, "float32", f"{w.path} not kept in float32")


def _flatten_shapes(nest):
    """Flattens a nest of shape tuples (a shape is a tuple of ints/None)."""
    if isinstance(nest, tuple) and all(isinstance(d, (int, type(None))) for d in nest):
        return [nest]
    if isinstance(nest, dict):
        return [s for k in sorted(nest) for s in _flatten_shapes(nest[k])]
    if isinstance(nest, (list, tuple)):
        return [s for item in nest for s in _flatten_shapes(item)]
    raise TypeError(f"not a shape nest: {nest!r}")


def compute_gradients(loss_fn, variables):
    """Gradients of `loss_fn()` with respect to `variables` on the current backend.

    Test-only helper; the training code has its own per-backend gradient modules.
    """
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        with tf.GradientTape() as tape:
            loss = loss_fn()
        return tape.gradient(loss, [v.value for v in variables])
    if backend == "torch":
        import torch

        for v in variables:
            v.value.grad = None
        loss = loss_fn()
        grads = torch.autograd.grad(loss, [v.value for v in variables], allow_unused=True)
        return list(grads)
    if backend == "jax":
        import jax

        # JAX arrays are immutable: trace the loss with the variables' values substituted
        # through a StatelessScope.
        def stateless(vals):
            with keras.StatelessScope(state_mapping=list(zip(variables, vals))):
                return loss_fn()

        # Compiled: eager JAX compiles every op separately, which made gradient tests slow.
        return list(jax.jit(jax.grad(stateless))([v.value for v in variables]))
    raise ValueError(f"unsupported backend {backend!r}")
