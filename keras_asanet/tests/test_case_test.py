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
