import keras
import numpy as np

from keras_asanet.losses.multi_binary_attribute_loss import (
    MultiBinaryAttributeLoss,
    multi_binary_attribute_loss,
    positive_ratio_weights,
)
from keras_asanet.tests.test_case import TestCase, compute_gradients


def _np_bce(targets, logits, ratios=None):
    """Mean over annotated rows of each row's mean BCE over its annotated (>= 0) slots; with
    `ratios`, each term weighted exp(1 - r) where the target is 1 and exp(r) where it is 0."""
    rows = []
    for t_row, x_row in zip(targets, logits.astype("float64")):
        terms = []
        for j, (t, x) in enumerate(zip(t_row, x_row)):
            if t < 0:
                continue
            p = 1.0 / (1.0 + np.exp(-x))
            w = 1.0
            if ratios is not None:
                w = t * np.exp(1.0 - ratios[j]) + (1.0 - t) * np.exp(ratios[j])
            terms.append(-w * (t * np.log(p) + (1.0 - t) * np.log(1.0 - p)))
        if terms:
            rows.append(np.mean(terms))
    return float(np.mean(rows)) if rows else 0.0


def _batch(seed=0, rows=6, slots=5):
    rng = np.random.default_rng(seed)
    targets = (rng.random((rows, slots)) > 0.5).astype("float32")
    logits = (2.0 * rng.normal(size=(rows, slots))).astype("float32")
    return targets, logits


class MultiBinaryAttributeLossTest(TestCase):
    def test_matches_numpy_oracle(self):
        targets, logits = _batch()
        expected = _np_bce(targets, logits)
        self.assertAllClose(MultiBinaryAttributeLoss()(targets, logits), expected, atol=1e-5)
        self.assertAllClose(multi_binary_attribute_loss(targets, logits), expected, atol=1e-5)
        probs = (1.0 / (1.0 + np.exp(-logits.astype("float64")))).astype("float32")
        self.assertAllClose(
            MultiBinaryAttributeLoss(from_logits=False)(targets, probs), expected, atol=1e-4
        )

    def test_hand_computed(self):
        # Zero logits: every slot costs log 2; the unannotated row is not counted.
        targets = np.array([[1, 0, 1], [-1, -1, -1]], "float32")
        self.assertAllClose(
            MultiBinaryAttributeLoss()(targets, np.zeros((2, 3), "float32")), np.log(2.0)
        )
        # Confident and right / wrong: softplus(-10) and softplus(10).
        targets = np.array([[1.0], [0.0]], "float32")
        logits = np.array([[10.0], [10.0]], "float32")
        expected = (np.log1p(np.exp(-10.0)) + np.log1p(np.exp(10.0))) / 2
        self.assertAllClose(MultiBinaryAttributeLoss()(targets, logits), expected, atol=1e-5)

    def test_masked_rows_are_left_out(self):
        targets, logits = _batch()
        masked = targets.copy()
        masked[[1, 4]] = -1.0
        expected = _np_bce(targets[[0, 2, 3, 5]], logits[[0, 2, 3, 5]])
        self.assertAllClose(MultiBinaryAttributeLoss()(masked, logits), expected, atol=1e-5)
        # The same with the explicit row mask of the pure function.
        mask = np.array([1, 0, 1, 1, 0, 1])
        self.assertAllClose(
            multi_binary_attribute_loss(targets, logits, mask=mask), expected, atol=1e-5
        )
        self.assertAllClose(
            multi_binary_attribute_loss(targets, logits, mask=mask[:, None].astype(bool)),
            expected,
            atol=1e-5,
        )
        # Garbage logits in masked rows change nothing.
        noisy = logits.copy()
        noisy[[1, 4]] = 1e4
        self.assertAllClose(MultiBinaryAttributeLoss()(masked, noisy), expected, atol=1e-5)

    def test_partially_annotated_rows(self):
        targets, logits = _batch()
        targets[0, :2] = -1.0
        self.assertAllClose(
            MultiBinaryAttributeLoss()(targets, logits), _np_bce(targets, logits), atol=1e-5
        )

    def test_all_rows_masked_gives_zero_and_zero_gradient(self):
        _, logits = _batch()
        targets = -np.ones_like(logits)
        var = keras.Variable(logits)
        for reduction in ("sum_over_batch_size", "sum", "mean_with_sample_weight"):
            loss = MultiBinaryAttributeLoss(reduction=reduction)
            self.assertAllClose(loss(targets, var), 0.0)
            (grad,) = compute_gradients(lambda loss=loss: loss(targets, var), [var])
            self.assertAllEqual(grad, np.zeros_like(logits))
        self.assertAllClose(multi_binary_attribute_loss(targets, logits), 0.0)

    def test_reductions_and_sample_weight(self):
        targets, logits = _batch()
        targets[2] = -1.0
        per = np.array([_np_bce(targets[i : i + 1], logits[i : i + 1]) for i in range(6)])
        self.assertAllClose(
            MultiBinaryAttributeLoss(reduction=None)(targets, logits), per, atol=1e-5
        )
        self.assertAllClose(
            MultiBinaryAttributeLoss(reduction="sum")(targets, logits), per.sum(), atol=1e-5
        )
        w = np.array([1.0, 2.0, 3.0, 0.5, 0.0, 1.0], "float32")
        self.assertAllClose(
            MultiBinaryAttributeLoss()(targets, logits, sample_weight=w),
            (per * w).sum() / 5,  # five annotated rows
            atol=1e-5,
        )
        valid_w = w * (np.arange(6) != 2)
        self.assertAllClose(
            MultiBinaryAttributeLoss(reduction="mean_with_sample_weight")(
                targets, logits, sample_weight=w[:, None]
            ),
            (per * valid_w).sum() / valid_w.sum(),
            atol=1e-5,
        )

    def test_extreme_logits_and_gradient(self):
        targets, _ = _batch()
        logits = np.where(targets > 0, -80.0, 80.0).astype("float32")  # all confidently wrong
        var = keras.Variable(logits)
        loss = MultiBinaryAttributeLoss()
        self.assertAllClose(loss(targets, var), 80.0, rtol=1e-5)
        (grad,) = compute_gradients(lambda: loss(targets, var), [var])
        # d/dx BCE = sigmoid(x) - y = +-1, divided by the 30 annotated slots.
        self.assertAllClose(grad, np.where(targets > 0, -1.0, 1.0) / 30.0, atol=1e-6)

    def test_half_precision(self):
        targets, logits = _batch()
        out = MultiBinaryAttributeLoss()(targets, logits.astype("float16"))
        self.assertEqual(keras.backend.standardize_dtype(out.dtype), "float32")
        self.assertAllClose(out, _np_bce(targets, logits.astype("float16")), atol=1e-4)

    def test_invalid_inputs(self):
        targets, logits = _batch()
        with self.assertRaisesRegex(ValueError, "same shape"):
            multi_binary_attribute_loss(targets, logits[:, :4])
        with self.assertRaisesRegex(ValueError, "y_true"):
            MultiBinaryAttributeLoss()(targets[:, 0], logits)
        with self.assertRaisesRegex(ValueError, "mask"):
            multi_binary_attribute_loss(targets, logits, mask=np.ones((6, 2)))

    def test_serialization(self):
        revived = self.run_serialization_test(MultiBinaryAttributeLoss(from_logits=False))
        self.assertFalse(revived.from_logits)

    def test_compile_and_fit_with_masked_rows(self):
        targets, x = _batch(rows=8)
        targets[[0, 5]] = -1.0
        model = keras.Sequential([keras.Input((5,)), keras.layers.Dense(5)])
        model.compile(optimizer=keras.optimizers.SGD(0.5), loss=MultiBinaryAttributeLoss())
        before = float(model.evaluate(x, targets, batch_size=8, verbose=0))
        self.assertAllClose(before, _np_bce(targets, self.to_numpy(model(x))), atol=1e-5)
        model.fit(x, targets, batch_size=8, epochs=3, verbose=0)
        after = float(model.evaluate(x, targets, batch_size=8, verbose=0))
        self.assertLess(after, before)

    # ------------------------------------------------------- positive-ratio weighting

    def test_positive_ratio_weighting_matches_numpy_oracle(self):
        targets, logits = _batch()
        targets[1] = -1.0  # an unannotated row
        targets[3, :2] = -1.0  # a partly annotated one
        ratios = [0.1, 0.5, 0.9, 0.0, 1.0]
        expected = _np_bce(targets, logits, ratios)
        self.assertAllClose(
            MultiBinaryAttributeLoss(positive_ratios=ratios)(targets, logits),
            expected,
            atol=1e-5,
        )
        self.assertAllClose(
            multi_binary_attribute_loss(targets, logits, positive_ratios=ratios),
            expected,
            atol=1e-5,
        )
        # Not the plain BCE.
        self.assertGreater(abs(expected - _np_bce(targets, logits)), 1e-2)

    def test_positive_ratio_weights_by_hand(self):
        targets = np.array([[1.0, 0.0], [0.0, 1.0]], "float32")
        weights = positive_ratio_weights(targets, [0.2, 0.5])
        self.assertAllClose(
            weights,
            [[np.exp(0.8), np.exp(0.5)], [np.exp(0.2), np.exp(0.5)]],
            atol=1e-6,
        )

    def test_uninformed_optimum_stays_on_the_majority_side(self):
        # One constant logit for a slot that is on in 15 % of the rows: the weighted loss
        # is lowest below 0.5 probability (the majority answer), above the plain optimum.
        targets = np.zeros((20, 1), "float32")
        targets[:3] = 1.0
        grid = np.linspace(-4.0, 4.0, 801, dtype="float32")
        losses = [
            float(
                multi_binary_attribute_loss(
                    targets, np.full((20, 1), g, "float32"), positive_ratios=[0.15]
                )
            )
            for g in grid
        ]
        best = 1.0 / (1.0 + np.exp(-grid[int(np.argmin(losses))]))
        odds = 0.15 * np.exp(0.85) / (0.85 * np.exp(0.15))
        self.assertAllClose(best, odds / (1.0 + odds), atol=5e-3)
        self.assertGreater(best, 0.15 + 0.05)
        self.assertLess(best, 0.5)

    def test_positive_ratios_are_validated(self):
        targets, logits = _batch()
        with self.assertRaisesRegex(ValueError, "5 attribute slots"):
            multi_binary_attribute_loss(targets, logits, positive_ratios=[0.5] * 4)
        for bad in ([0.5, 1.5], [float("nan")], "abc", []):
            with self.assertRaisesRegex(ValueError, "positive_ratios"):
                MultiBinaryAttributeLoss(positive_ratios=bad)

    def test_serialization_keeps_positive_ratios(self):
        revived = self.run_serialization_test(
            MultiBinaryAttributeLoss(positive_ratios=[0.25, 0.75])
        )
        self.assertEqual(revived.positive_ratios, (0.25, 0.75))
        targets, logits = _batch(slots=2)
        self.assertAllClose(
            revived(targets, logits), _np_bce(targets, logits, [0.25, 0.75]), atol=1e-5
        )
