"""Checks that the shared `TestCase` helpers catch what they claim to catch."""

import keras
import numpy as np
from keras import ops

from keras_asanet.tests.test_case import TestCase


class _DeadWeightLayer(keras.layers.Layer):
    """A layer with one weight that never reaches the output: the gradient check must fail."""

    def build(self, input_shape):
        self.used = self.add_weight(shape=(input_shape[-1],), initializer="ones", name="used")
        self.unused = self.add_weight(shape=(1,), initializer="ones", name="unused")

    def call(self, x):
        return x * self.used

    def compute_output_shape(self, input_shape):
        return input_shape


@keras.saving.register_keras_serializable(package="keras_asanet_test")
class _TwoOutputLayer(keras.layers.Layer):
    """A layer returning a tuple, like BNNeck and ASRE(return_mask=True)."""

    def build(self, input_shape):
        self.scale = self.add_weight(shape=(input_shape[-1],), initializer="ones", name="scale")

    def call(self, x):
        return x * self.scale, ops.sum(x * self.scale, axis=-1, keepdims=True)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape), (*input_shape[:-1], 1)


class TestCaseTest(TestCase):
    def test_layer_battery_passes_on_a_keras_layer(self):
        x = np.random.default_rng(0).normal(size=(2, 3, 4)).astype("float32")
        self.run_layer_test(
            keras.layers.Dense,
            {"units": 5},
            x,
            expected_output_shape=(2, 3, 5),
            expected_num_trainable_weights=2,
        )

    def test_gradient_check_detects_a_dead_weight(self):
        x = np.ones((2, 4), "float32")
        with self.assertRaisesRegex(AssertionError, "unused"):
            self.run_gradient_test(_DeadWeightLayer(), x)

    def test_shape_check_detects_a_wrong_shape(self):
        x = np.ones((2, 4), "float32")
        with self.assertRaises(AssertionError):
            self.run_layer_test(
                keras.layers.Dense,
                {"units": 3},
                x,
                expected_output_shape=(2, 4),
                run_training_check=False,
                run_precision_check=False,
                run_functional_check=False,
            )

    def test_assert_all_close_compares_tensors(self):
        self.assertAllClose(ops.ones((2,)), np.ones((2,)))
        with self.assertRaises(AssertionError):
            self.assertAllClose(ops.ones((2,)), np.zeros((2,)))

    def test_call_tuples_and_predict_lists_compare_as_they_are(self):
        """A model's call gives a tuple of tensors (tracking gradients on torch), its predict
        a list of arrays: the shared helpers compare the two without a local conversion
        (which asre_test.py and bn_neck_test.py still carry; they can drop it)."""
        inputs = keras.Input((4,))
        model = keras.Model(inputs, [keras.layers.Dense(3)(inputs), keras.layers.Dense(2)(inputs)])
        x = np.random.default_rng(0).normal(size=(2, 4)).astype("float32")
        called, predicted = tuple(model(x)), model.predict(x, verbose=0)
        self.assertIsInstance(predicted, list)
        self.assertAllClose(called, predicted, atol=1e-5)
        with self.assertRaises(AssertionError):
            self.assertAllClose(called, [predicted[0], predicted[1] + 1.0])
        # The whole battery (functional model, .keras round trip) on a two-output layer.
        self.run_layer_test(
            _TwoOutputLayer,
            {},
            x,
            expected_output_shape=((2, 4), (2, 1)),
            expected_num_trainable_weights=1,
            run_precision_check=False,
        )
