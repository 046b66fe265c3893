import keras
import numpy as np
from keras import ops

from keras_asanet.losses.weighted_regularization_triplet import (
    WeightedRegularizationTriplet,
    weighted_regularization_triplet,
)
from keras_asanet.tests.test_case import TestCase, compute_gradients


def _pk_batch(p=3, k=4, dim=6, seed=0):
    rng = np.random.default_rng(seed)
    pids = np.repeat(np.arange(p) * 7 + 2, k)  # non-contiguous pid values
    order = rng.permutation(p * k)
    return pids[order], rng.normal(size=(p * k, dim)).astype("float32")


def _np_wrt(pids, features):
    """Eq. 14 per anchor, float64, explicit loops; the anchor is one of its own positives."""
    f = features.astype("float64")
    n = len(pids)
    dist = np.zeros((n, n))
    for i in range(n):
        for j in range(n):
            dist[i, j] = np.sqrt(max(np.sum((f[i] - f[j]) ** 2), 1e-12))
    out = np.zeros(n)
    for i in range(n):
        pos = [j for j in range(n) if pids[j] == pids[i]]
        neg = [j for j in range(n) if pids[j] != pids[i]]
        wp = np.exp(dist[i, pos] - dist[i, pos].max())
        wp /= wp.sum()
        ap = float(np.sum(wp * dist[i, pos]))
        an = 0.0
        if neg:
            wn = np.exp(-dist[i, neg] + dist[i, neg].min())
            wn /= wn.sum()
            an = float(np.sum(wn * dist[i, neg]))
        out[i] = np.logaddexp(0.0, ap - an)
    return out


def _np_agw(pids, features):
    """A line-by-line numpy transcription of AGW's WeightedRegularizedTriplet (vectorised)."""
    x = features.astype("float64")
    sq = (x**2).sum(1, keepdims=True)
    dist = np.sqrt(np.clip(sq + sq.T - 2 * x @ x.T, 1e-12, None))
    is_pos = (pids[:, None] == pids[None, :]).astype("float64")
    is_neg = 1.0 - is_pos
    dist_ap, dist_an = dist * is_pos, dist * is_neg

    def softmax_weights(d, mask):
        max_v = np.max(d * mask, axis=1, keepdims=True)
        diff = d - max_v
        z = np.sum(np.exp(diff) * mask, axis=1, keepdims=True) + 1e-6
        return np.exp(diff) * mask / z

    fp = np.sum(dist_ap * softmax_weights(dist_ap, is_pos), 1)
    cn = np.sum(dist_an * softmax_weights(-dist_an, is_neg), 1)
    return np.mean(np.log1p(np.exp(-(cn - fp))))


class WeightedRegularizationTripletTest(TestCase):
    def test_matches_numpy_oracle_on_pk_batch(self):
        pids, f = _pk_batch()
        expected = _np_wrt(pids, f)
        self.assertAllClose(weighted_regularization_triplet(pids, f), expected, atol=1e-5)
        self.assertAllClose(WeightedRegularizationTriplet()(pids, f), expected.mean(), atol=1e-5)
        self.assertAllClose(WeightedRegularizationTriplet()(pids, f), _np_agw(pids, f), atol=1e-5)

    def test_identity_with_one_clip_and_batch_without_positives(self):
        _, f = _pk_batch(seed=1)
        # pid 5 has a single clip: its only positive is itself.
        pids = np.array([1, 1, 1, 5, 2, 2, 2, 3, 3, 3, 3, 1])
        self.assertAllClose(
            WeightedRegularizationTriplet(reduction=None)(pids, f), _np_wrt(pids, f), atol=1e-5
        )
        # Every pid alone: positive term is sqrt(1e-12) = 1e-6 for everyone.
        pids = np.arange(12)
        per = WeightedRegularizationTriplet(reduction=None)(pids, f)
        self.assertAllClose(per, _np_wrt(pids, f), atol=1e-5)
        self.assertTrue(np.all(self.to_numpy(per) < np.log(2.0)))

    def test_single_identity_has_no_negatives(self):
        _, f = _pk_batch(seed=2)
        pids = np.zeros(12, "int32")
        per = self.to_numpy(WeightedRegularizationTriplet(reduction=None)(pids, f))
        self.assertAllClose(per, _np_wrt(pids, f), atol=1e-5)
        self.assertTrue(np.all(per > np.log(2.0)))  # softplus(positive > 0)

    def test_all_equal_features_value_and_finite_gradients(self):
        pids, _ = _pk_batch()
        f = keras.Variable(np.ones((12, 6), "float32") * 0.3)
        loss = WeightedRegularizationTriplet()
        # All distances are sqrt(1e-12): softplus(1e-6 - 1e-6) = log 2.
        self.assertAllClose(loss(pids, f), np.log(2.0), atol=1e-6)
        (grad,) = compute_gradients(lambda: loss(pids, f), [f])
        grad = self.to_numpy(grad)
        self.assertTrue(np.all(np.isfinite(grad)))
        zero = keras.Variable(np.zeros((12, 6), "float32"))
        (grad,) = compute_gradients(lambda: loss(pids, zero), [zero])
        self.assertTrue(np.all(np.isfinite(self.to_numpy(grad))))

    def test_gradient_matches_finite_differences(self):
        # The softmax weights are differentiated too (AGW does not detach them).
        pids = np.array([0, 0, 1, 1, 1, 2])
        f0 = np.random.default_rng(3).normal(size=(6, 3))
        var = keras.Variable(f0.astype("float32"))
        loss = WeightedRegularizationTriplet()
        (grad,) = compute_gradients(lambda: loss(pids, var), [var])
        numeric = np.zeros_like(f0)
        h = 1e-6
        for idx in np.ndindex(*f0.shape):
            up, down = f0.copy(), f0.copy()
            up[idx] += h
            down[idx] -= h
            numeric[idx] = (_np_wrt(pids, up).mean() - _np_wrt(pids, down).mean()) / (2 * h)
        self.assertAllClose(grad, numeric, atol=2e-4, rtol=1e-3)

    def test_large_distances_are_stable(self):
        pids, f = _pk_batch()
        f = f * 300.0  # distances ~1e3: exp(d) would overflow without the max shift
        out = self.to_numpy(WeightedRegularizationTriplet()(pids, f))
        self.assertTrue(np.isfinite(out))
        self.assertAllClose(out, _np_wrt(pids, f).mean(), rtol=1e-4, atol=1e-2)

    def test_half_precision_and_sample_weight(self):
        pids, f = _pk_batch()
        out = WeightedRegularizationTriplet()(pids, f.astype("float16"))
        self.assertEqual(keras.backend.standardize_dtype(out.dtype), "float32")
        self.assertAllClose(out, _np_wrt(pids, f.astype("float16")).mean(), atol=1e-4)
        w = np.arange(12, dtype="float32")
        self.assertAllClose(
            WeightedRegularizationTriplet()(pids, f, sample_weight=w),
            (_np_wrt(pids, f) * w).sum() / 12,
            atol=1e-4,
        )

    def test_invalid_inputs(self):
        pids, f = _pk_batch()
        with self.assertRaisesRegex(ValueError, "features"):
            weighted_regularization_triplet(pids, f[:, :, None])
        with self.assertRaisesRegex(ValueError, "batch size"):
            weighted_regularization_triplet(pids[:5], f)

    def test_serialization(self):
        self.run_serialization_test(WeightedRegularizationTriplet(name="wrt"))

    def test_compile_and_fit(self):
        pids, f = _pk_batch()
        model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(4)])
        model.compile(optimizer=keras.optimizers.SGD(0.05), loss=WeightedRegularizationTriplet())
        before = float(model.evaluate(f, pids, batch_size=12, verbose=0))
        model.fit(f, pids, batch_size=12, epochs=3, shuffle=False, verbose=0)
        after = float(model.evaluate(f, pids, batch_size=12, verbose=0))
        self.assertLess(after, before)
        expected = _np_wrt(pids, self.to_numpy(model(f))).mean()
        self.assertAllClose(after, expected, atol=1e-4)
        self.assertTrue(np.isfinite(float(ops.convert_to_numpy(model.predict(f, verbose=0)[0, 0]))))
