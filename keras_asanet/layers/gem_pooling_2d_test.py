import keras
import numpy as np
from keras import ops

from keras_asanet.layers.gem_pooling_2d import GeMPooling2D
from keras_asanet.tests.test_case import TestCase


def gem_oracle(x, p, eps, axis):
    x = np.maximum(x.astype(np.float64), eps)
    return np.mean(x**p, axis=axis) ** (1.0 / p)


class GeMPooling2DTest(TestCase):
    def test_layer_behaviors(self):
        x = np.random.RandomState(0).rand(2, 4, 2, 8).astype("float32")
        self.run_layer_test(
            GeMPooling2D,
            init_kwargs={"p": 3.0},
            input_data=x,
            expected_output_shape=(2, 8),
            expected_num_trainable_weights=1,
            expected_num_non_trainable_weights=0,
        )

    def test_layer_behaviors_channels_first_keepdims_fixed_p(self):
        x = np.random.RandomState(1).rand(2, 8, 4, 2).astype("float32")
        self.run_layer_test(
            GeMPooling2D,
            init_kwargs={
                "p": 2.0,
                "trainable_p": False,
                "data_format": "channels_first",
                "keepdims": True,
            },
            input_data=x,
            expected_output_shape=(2, 8, 1, 1),
            # A fixed p is still saved, as a non-trainable weight.
            expected_num_trainable_weights=0,
            expected_num_non_trainable_weights=1,
            run_training_check=False,
        )

    def test_numpy_oracle(self):
        # Include negatives and zeros: they are clamped at eps.
        x = np.random.RandomState(3).randn(2, 4, 2, 8).astype("float32")
        layer = GeMPooling2D(p=3.0, eps=1e-6)
        out = layer(x)
        self.assertAllClose(out, gem_oracle(x, 3.0, 1e-6, (1, 2)), atol=1e-5, rtol=1e-5)
        layer_cf = GeMPooling2D(p=2.5, data_format="channels_first")
        x_cf = np.abs(x).transpose(0, 3, 1, 2)
        self.assertAllClose(
            layer_cf(x_cf), gem_oracle(x_cf, 2.5, 1e-6, (2, 3)), atol=1e-5, rtol=1e-5
        )

    def test_hand_computed(self):
        # One channel, values 1 and 2 (and two clamped zeros) with p = 2:
        # sqrt((1 + 4 + 2 * eps^2) / 4) = sqrt(5/4).
        x = np.array([[[[1.0], [2.0]], [[0.0], [-3.0]]]], dtype="float32")
        out = GeMPooling2D(p=2.0)(x)
        self.assertAllClose(out, np.array([[np.sqrt(5.0 / 4.0)]]), atol=1e-6)

    def test_p_one_is_average_pooling(self):
        x = np.random.RandomState(4).rand(2, 4, 2, 8).astype("float32") + 0.1
        out = GeMPooling2D(p=1.0)(x)
        avg = keras.layers.GlobalAveragePooling2D()(x)
        self.assertAllClose(out, avg, atol=1e-6, rtol=1e-5)

    def test_large_p_approaches_max_pooling(self):
        x = np.random.RandomState(5).rand(2, 4, 2, 8).astype("float32") + 0.5
        out = GeMPooling2D(p=60.0)(x)
        self.assertAllClose(out, x.max(axis=(1, 2)), atol=0.05, rtol=0.05)

    def test_gradient_of_p(self):
        # d/dp of the GeM of a single channel, checked against a central finite difference.
        x = np.random.RandomState(6).rand(1, 3, 3, 1).astype("float32") + 0.2
        layer = GeMPooling2D(p=3.0)
        layer(x)
        from keras_asanet.tests.test_case import compute_gradients

        (grad,) = compute_gradients(lambda: ops.sum(layer(x)), [layer.p])
        h = 1e-3
        numeric = (gem_oracle(x, 3.0 + h, 1e-6, (1, 2)) - gem_oracle(x, 3.0 - h, 1e-6, (1, 2))) / (
            2 * h
        )
        grad = ops.convert_to_numpy(grad)
        self.assertAllClose(np.reshape(grad, ()), np.reshape(numeric, ()), atol=1e-4, rtol=1e-3)

    def test_mixed_float16_no_overflow(self):
        # 60 ** 3 = 216000 overflows float16; the power is taken in float32.
        x = np.full((1, 2, 2, 3), 60.0, dtype="float32")
        out = GeMPooling2D(dtype="mixed_float16")(x)
        self.assertEqual(keras.backend.standardize_dtype(out.dtype), "float16")
        self.assertAllClose(ops.cast(out, "float32"), np.full((1, 3), 60.0), rtol=1e-3)

    def test_bad_arguments(self):
        with self.assertRaisesRegex(ValueError, "p=0"):
            GeMPooling2D(p=0)
        with self.assertRaisesRegex(ValueError, "p=-1.0"):
            GeMPooling2D(p=-1.0)
        with self.assertRaisesRegex(ValueError, "eps"):
            GeMPooling2D(eps=0.0)
        with self.assertRaisesRegex(ValueError, "data_format"):
            GeMPooling2D(data_format="channels_middle")

    def test_wrong_rank(self):
        with self.assertRaisesRegex(ValueError, "rank 4"):
            GeMPooling2D()(np.ones((2, 3, 4), "float32"))
        layer = GeMPooling2D()
        layer(np.ones((2, 3, 4, 5), "float32"))
        with self.assertRaisesRegex(ValueError, "rank 4"):
            layer(np.ones((2, 3, 4, 5, 6), "float32"))
