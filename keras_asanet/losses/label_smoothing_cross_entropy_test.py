import keras
import numpy as np

from keras_asanet.losses.label_smoothing_cross_entropy import (
    LabelSmoothingCrossEntropy,
    label_smoothing_cross_entropy,
)
from keras_asanet.tests.test_case import TestCase


def _np_log_softmax(x):
    x = x - x.max(axis=-1, keepdims=True)
    return x - np.log(np.exp(x).sum(axis=-1, keepdims=True))


def _np_lsce(labels, logits, epsilon):
    """AGW's CrossEntropyLabelSmooth, per sample, in float64 with explicit loops."""
    logits = logits.astype("float64")
    num_classes = logits.shape[1]
    log_p = _np_log_softmax(logits)
    out = np.zeros(len(labels))
    for i, y in enumerate(labels):
        for j in range(num_classes):
            q = (1.0 - epsilon) * (j == y) + epsilon / num_classes
            out[i] -= q * log_p[i, j]
    return out


class LabelSmoothingCrossEntropyTest(TestCase):
    def setUp(self):
        super().setUp()
        rng = np.random.default_rng(0)
        self.labels = rng.integers(0, 5, size=(12,))
        self.logits = (3.0 * rng.normal(size=(12, 5))).astype("float32")

    def test_matches_numpy_oracle(self):
        for eps in (0.0, 0.1, 0.5):
            expected = _np_lsce(self.labels, self.logits, eps)
            loss = LabelSmoothingCrossEntropy(epsilon=eps)
            self.assertAllClose(loss(self.labels, self.logits), expected.mean(), atol=1e-5)
            self.assertAllClose(
                label_smoothing_cross_entropy(self.labels, self.logits, epsilon=eps),
                expected,
                atol=1e-5,
            )

    def test_label_layouts_and_probabilities(self):
        expected = _np_lsce(self.labels, self.logits, 0.1).mean()
        loss = LabelSmoothingCrossEntropy()
        self.assertAllClose(loss(self.labels[:, None], self.logits), expected, atol=1e-5)
        self.assertAllClose(loss(self.labels.astype("float32"), self.logits), expected, atol=1e-5)
        probs = np.exp(_np_log_softmax(self.logits.astype("float64"))).astype("float32")
        loss_p = LabelSmoothingCrossEntropy(from_logits=False)
        self.assertAllClose(loss_p(self.labels, probs), expected, atol=1e-4)

    def test_hand_computed_uniform_logits(self):
        # Uniform prediction: -sum_j q_j log(1/M) = log(M) whatever the smoothing.
        loss = LabelSmoothingCrossEntropy(epsilon=0.3)
        self.assertAllClose(loss(np.array([0, 3]), np.zeros((2, 4), "float32")), np.log(4.0))

    def test_no_smoothing_equals_sparse_cross_entropy(self):
        ref = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        ours = LabelSmoothingCrossEntropy(epsilon=0.0)
        self.assertAllClose(
            ours(self.labels, self.logits), ref(self.labels, self.logits), atol=1e-5
        )

    def test_sample_weight_and_reduction(self):
        w = np.linspace(0.0, 1.0, 12).astype("float32")
        per = _np_lsce(self.labels, self.logits, 0.1)
        self.assertAllClose(
            LabelSmoothingCrossEntropy()(self.labels, self.logits, sample_weight=w),
            (per * w).sum() / 12,
            atol=1e-5,
        )
        self.assertAllClose(
            LabelSmoothingCrossEntropy(reduction=None)(self.labels, self.logits), per, atol=1e-5
        )

    def test_half_precision_logits(self):
        out = LabelSmoothingCrossEntropy()(self.labels, self.logits.astype("float16"))
        self.assertEqual(keras.backend.standardize_dtype(out.dtype), "float32")
        expected = _np_lsce(self.labels, self.logits.astype("float16"), 0.1).mean()
        self.assertAllClose(out, expected, atol=1e-3)

    def test_invalid_arguments(self):
        for bad in (-0.1, 1.0, "0.1", True):
            with self.assertRaisesRegex(ValueError, "epsilon"):
                LabelSmoothingCrossEntropy(epsilon=bad)
        with self.assertRaisesRegex(ValueError, "logits"):
            label_smoothing_cross_entropy(self.labels, self.logits[:, :, None])
        with self.assertRaisesRegex(ValueError, "labels"):
            label_smoothing_cross_entropy(np.zeros((12, 2), "int32"), self.logits)

    def test_serialization(self):
        loss = LabelSmoothingCrossEntropy(epsilon=0.2, from_logits=False, name="xent")
        revived = self.run_serialization_test(loss)
        self.assertEqual(revived.epsilon, 0.2)
        self.assertFalse(revived.from_logits)

    def test_compile_and_fit(self):
        model = keras.Sequential([keras.Input((5,)), keras.layers.Dense(5)])
        model.compile(optimizer=keras.optimizers.SGD(0.1), loss=LabelSmoothingCrossEntropy())
        x = self.logits
        before = float(model.evaluate(x, self.labels, verbose=0))
        model.fit(x, self.labels, batch_size=12, epochs=3, verbose=0)
        after = float(model.evaluate(x, self.labels, verbose=0))
        self.assertTrue(np.isfinite(after))
        self.assertLess(after, before)
