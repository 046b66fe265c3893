import keras
import numpy as np

from keras_asanet.losses import utils
from keras_asanet.tests.test_case import TestCase, compute_gradients


class LossUtilsTest(TestCase):
    def test_pairwise_distances(self):
        x = np.random.default_rng(0).normal(size=(5, 3)).astype("float32")
        expected = np.sqrt(((x[:, None] - x[None]) ** 2).sum(-1))
        self.assertAllClose(utils.pairwise_squared_distances(x), expected**2, atol=1e-5)
        dist = self.to_numpy(utils.pairwise_euclidean_distances(x))
        np.fill_diagonal(expected, 1e-6)  # sqrt(1e-12)
        self.assertAllClose(dist, expected, atol=1e-5)
        self.assertAllClose(np.diag(dist), np.full(5, 1e-6), rtol=1e-6)

    def test_distance_gradient_finite_for_equal_rows(self):
        var = keras.Variable(np.ones((4, 3), "float32"))
        (grad,) = compute_gradients(
            lambda: keras.ops.sum(utils.pairwise_euclidean_distances(var)), [var]
        )
        self.assertTrue(np.all(np.isfinite(self.to_numpy(grad))))

    def test_masked_softmax(self):
        logits = np.array([[1.0, 2.0, 3.0], [1000.0, -1000.0, 999.0], [5.0, 6.0, 7.0]])
        mask = np.array([[True, False, True], [True, True, True], [False, False, False]])
        out = self.to_numpy(utils.masked_softmax(logits.astype("float32"), mask))
        e = np.exp([1.0 - 3.0, 0.0])
        self.assertAllClose(out[0], [e[0] / e.sum(), 0.0, e[1] / e.sum()], atol=1e-6)
        self.assertAllClose(out[1], [1 / (1 + np.exp(-1)), 0.0, np.exp(-1) / (1 + np.exp(-1))])
        self.assertAllEqual(out[2], np.zeros(3))  # empty row: zeros, not NaN

    def test_masked_softmax_gradient_of_empty_row(self):
        var = keras.Variable(np.array([[1.0, 2.0], [3.0, 4.0]], "float32"))
        mask = np.array([[True, True], [False, False]])
        weights = np.array([[1.0, -2.0], [3.0, 5.0]], "float32")
        (grad,) = compute_gradients(
            lambda: keras.ops.sum(keras.ops.multiply(utils.masked_softmax(var, mask), weights)),
            [var],
        )
        grad = self.to_numpy(grad)
        p = np.exp([1.0, 2.0]) / np.exp([1.0, 2.0]).sum()
        # d/dx sum_k w_k p_k = p * (w - sum_k w_k p_k)
        self.assertAllClose(grad[0], p * (weights[0] - (weights[0] * p).sum()), atol=1e-6)
        self.assertAllEqual(grad[1], np.zeros(2))

    def test_l2_normalize(self):
        x = np.array([[3.0, 4.0], [0.0, 0.0]], "float32")
        self.assertAllClose(utils.l2_normalize(x), [[0.6, 0.8], [0.0, 0.0]])
        var = keras.Variable(x)
        (grad,) = compute_gradients(lambda: keras.ops.sum(utils.l2_normalize(var)), [var])
        self.assertTrue(np.all(np.isfinite(self.to_numpy(grad))))

    def test_labels_and_floats(self):
        self.assertAllEqual(utils.to_label_vector(np.array([[3.0], [1.0]])), [3, 1])
        self.assertEqual(
            keras.backend.standardize_dtype(utils.to_label_vector(np.array([2, 4])).dtype),
            "int32",
        )
        with self.assertRaisesRegex(ValueError, "pids"):
            utils.to_label_vector(np.zeros((2, 2)), "pids")
        for dtype in ("float16", "bfloat16", "int32"):
            x = keras.ops.cast(np.ones(2), dtype)
            self.assertEqual(keras.backend.standardize_dtype(utils.to_float(x).dtype), "float32")

    def test_masked_mean_and_weights(self):
        values = np.array([1.0, 2.0, 4.0], "float32")
        self.assertAllClose(utils.masked_mean(values, np.array([True, False, True])), 2.5)
        self.assertAllClose(utils.masked_mean(values, np.zeros(3, bool)), 0.0)
        valid = np.array([True, False, True, True])
        self.assertAllClose(
            utils.combine_valid_and_sample_weight(valid, None, "sum_over_batch_size"),
            [4 / 3, 0.0, 4 / 3, 4 / 3],
        )
        self.assertAllClose(
            utils.combine_valid_and_sample_weight(valid, np.array([[2.0]] * 4), "sum"),
            [2.0, 0.0, 2.0, 2.0],
        )
        self.assertAllClose(
            utils.combine_valid_and_sample_weight(np.zeros(4, bool), None, "mean"), np.zeros(4)
        )
