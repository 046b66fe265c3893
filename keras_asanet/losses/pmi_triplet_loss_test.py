import keras
import numpy as np

from keras_asanet.losses.pmi_triplet_loss import PMITripletLoss, pmi_triplet_loss, pmi_triplet_terms
from keras_asanet.tests.test_case import TestCase, compute_gradients


def _pk_batch(p=3, k=4, dim=6, attr_dim=4, seed=0):
    rng = np.random.default_rng(seed)
    pids = np.repeat(np.arange(p) * 5 + 1, k)[rng.permutation(p * k)]
    f_final = rng.normal(size=(p * k, dim)).astype("float32")
    f_ir = rng.normal(size=(p * k, attr_dim)).astype("float32")
    return pids, f_final, f_ir


def _np_pmi_terms(pids, f_final, f_ir):
    """Eq. 11-13 with explicit loops: (per-anchor hinge or None when no partner)."""
    f = f_final.astype("float64")
    a = f_ir.astype("float64")

    def d_cos(i, j):
        return 1.0 - f[i] @ f[j] / (np.linalg.norm(f[i]) * np.linalg.norm(f[j]))

    out = []
    for i in range(len(pids)):
        partners = [j for j in range(len(pids)) if j != i and pids[j] == pids[i]]
        if not partners:
            out.append(None)
            continue
        d_attr = [np.linalg.norm(a[j] - a[i]) for j in partners]
        ap = partners[int(np.argmin(d_attr))]
        an = partners[int(np.argmax(d_attr))]
        out.append(max(d_cos(i, an) - d_cos(i, ap), 0.0))
    return out


def _np_pmi(pids, f_final, f_ir):
    terms = [t for t in _np_pmi_terms(pids, f_final, f_ir) if t is not None]
    return float(np.mean(terms)) if terms else 0.0


class PMITripletLossTest(TestCase):
    def test_matches_numpy_oracle_on_pk_batches(self):
        for seed in range(3):
            pids, f, a = _pk_batch(seed=seed)
            expected = _np_pmi(pids, f, a)
            self.assertGreater(expected, 0.0)
            self.assertAllClose(pmi_triplet_loss(pids, f, a), expected, atol=1e-5)
            loss = PMITripletLoss()
            self.assertAllClose(loss(pids, {"f_final": f, "f_ir_attr": a}), expected, atol=1e-5)
            self.assertAllClose(loss(pids, (f, a)), expected, atol=1e-5)
            self.assertAllClose(loss(pids, [f, a]), expected, atol=1e-5)
            concat = np.concatenate([f, a], axis=-1)
            self.assertAllClose(PMITripletLoss(final_dim=6)(pids, concat), expected, atol=1e-5)

    def test_hand_computed(self):
        # One identity, 1-D attribute positions 0, 1, 3; final features at 0, 90, 90 degrees.
        pids = np.zeros(3, "int32")
        f_ir = np.array([[0.0], [1.0], [3.0]], "float32")
        f = np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 2.0]], "float32")
        # Anchor 0: AP=1, AN=2 -> 1 - 1 = 0. Anchor 1: AP=0 (d=1), AN=2 (d=0) -> 0.
        # Anchor 2: AP=1 (d=0), AN=0 (d=1) -> 1. Mean over 3 anchors = 1/3.
        per, valid = pmi_triplet_terms(pids, f, f_ir)
        self.assertAllClose(per, [0.0, 0.0, 1.0], atol=1e-6)
        self.assertAllEqual(valid, [True, True, True])
        self.assertAllClose(pmi_triplet_loss(pids, f, f_ir), 1.0 / 3.0, atol=1e-6)

    def test_two_clips_per_identity_gives_zero(self):
        # With K = 2 the only partner is both AP and AN.
        pids, f, a = _pk_batch(p=6, k=2)
        self.assertAllClose(pmi_triplet_loss(pids, f, a), 0.0, atol=1e-6)

    def test_identity_with_one_clip_is_excluded(self):
        pids, f, a = _pk_batch()
        pids = pids.copy()
        lonely = int(np.flatnonzero(pids == pids[0])[0])
        pids[lonely] = 99  # this clip's identity now has one clip in the batch
        terms = _np_pmi_terms(pids, f, a)
        self.assertIsNone(terms[lonely])
        expected = float(np.mean([t for t in terms if t is not None]))
        self.assertAllClose(PMITripletLoss()(pids, (f, a)), expected, atol=1e-5)
        per = self.to_numpy(PMITripletLoss(reduction=None)(pids, (f, a)))
        self.assertEqual(per[lonely], 0.0)
        self.assertAllClose(PMITripletLoss(reduction="sum")(pids, (f, a)), expected * 11, atol=1e-5)
        w = np.linspace(0.5, 2.0, 12).astype("float32")
        weighted = sum(w[i] * t for i, t in enumerate(terms) if t is not None) / 11
        self.assertAllClose(PMITripletLoss()(pids, (f, a), sample_weight=w), weighted, atol=1e-5)

    def test_no_anchor_with_partner_gives_zero(self):
        _, f, a = _pk_batch()
        pids = np.arange(12)
        fv = keras.Variable(f)
        loss = PMITripletLoss()
        self.assertAllClose(loss(pids, (fv, a)), 0.0)
        self.assertAllClose(pmi_triplet_loss(pids, f, a), 0.0)
        (grad,) = compute_gradients(lambda: loss(pids, (fv, a)), [fv])
        self.assertAllEqual(grad, np.zeros_like(f))

    def test_all_equal_features_finite(self):
        pids, _, _ = _pk_batch()
        fv = keras.Variable(np.full((12, 6), 0.7, "float32"))
        av = keras.Variable(np.full((12, 4), -0.2, "float32"))
        zv = keras.Variable(np.zeros((12, 6), "float32"))
        loss = PMITripletLoss()
        self.assertAllClose(loss(pids, (fv, av)), 0.0, atol=1e-6)
        for feats in (fv, zv):
            grads = compute_gradients(lambda feats=feats: loss(pids, (feats, av)), [feats])
            self.assertTrue(np.all(np.isfinite(self.to_numpy(grads[0]))))

    def test_selection_carries_no_gradient(self):
        pids, f, a = _pk_batch()
        fv, av = keras.Variable(f), keras.Variable(a)
        loss = PMITripletLoss()
        g_f, g_a = compute_gradients(lambda: loss(pids, {"f_final": fv, "f_ir_attr": av}), [fv, av])
        if keras.backend.backend() == "jax":  # JAX differentiates every input: zeros
            self.assertAllEqual(g_a, np.zeros_like(a))
        else:  # TF and torch report an input the loss does not depend on as None
            self.assertIsNone(g_a)
        g_f = self.to_numpy(g_f)
        self.assertTrue(np.all(np.isfinite(g_f)))
        self.assertGreater(np.abs(g_f).max(), 0.0)

    def test_gradient_matches_finite_differences(self):
        pids, f, a = _pk_batch(p=2, k=3, dim=3, attr_dim=2, seed=4)
        self.assertGreater(_np_pmi(pids, f, a), 0.0)
        fv = keras.Variable(f)
        (grad,) = compute_gradients(lambda: pmi_triplet_loss(pids, fv, a), [fv])
        f64 = f.astype("float64")
        numeric = np.zeros_like(f64)
        h = 1e-6
        for idx in np.ndindex(*f.shape):
            up, down = f64.copy(), f64.copy()
            up[idx] += h
            down[idx] -= h
            numeric[idx] = (_np_pmi(pids, up, a) - _np_pmi(pids, down, a)) / (2 * h)
        self.assertAllClose(grad, numeric, atol=1e-4, rtol=1e-3)

    def test_half_precision(self):
        pids, f, a = _pk_batch()
        out = PMITripletLoss()(pids, (f.astype("float16"), a.astype("float16")))
        self.assertEqual(keras.backend.standardize_dtype(out.dtype), "float32")
        self.assertAllClose(out, _np_pmi(pids, f.astype("float16"), a.astype("float16")), atol=1e-3)

    def test_invalid_inputs(self):
        pids, f, a = _pk_batch()
        with self.assertRaisesRegex(ValueError, "final_dim"):
            PMITripletLoss()(pids, np.concatenate([f, a], -1))
        with self.assertRaisesRegex(ValueError, "final_dim"):
            PMITripletLoss(final_dim=10)(pids, f)
        for bad in (0, -2, 1.5, True):
            with self.assertRaisesRegex(ValueError, "final_dim"):
                PMITripletLoss(final_dim=bad)
        with self.assertRaisesRegex(ValueError, "f_ir_attr"):
            PMITripletLoss()(pids, {"f_final": f, "attr": a})
        with self.assertRaisesRegex(ValueError, "pair"):
            PMITripletLoss()(pids, (f, a, a))
        with self.assertRaisesRegex(ValueError, "batch size"):
            pmi_triplet_loss(pids, f, a[:6])
        with self.assertRaisesRegex(ValueError, "f_final"):
            pmi_triplet_loss(pids, f[:, :, None], a)

    def test_serialization(self):
        revived = self.run_serialization_test(PMITripletLoss(final_dim=8, name="pmi"))
        self.assertEqual(revived.final_dim, 8)

    def test_compile_and_fit_with_concatenated_output(self):
        pids, x, a = _pk_batch()
        inp = keras.Input((6,))
        f_final = keras.layers.Dense(5)(inp)
        f_ir = keras.layers.Dense(3)(inp)
        model = keras.Model(inp, keras.layers.Concatenate()([f_final, f_ir]))
        model.compile(optimizer=keras.optimizers.SGD(0.5), loss=PMITripletLoss(final_dim=5))
        out = self.to_numpy(model(x))
        before = float(model.evaluate(x, pids, batch_size=12, verbose=0))
        self.assertAllClose(before, _np_pmi(pids, out[:, :5], out[:, 5:]), atol=1e-5)
        self.assertEqual(tuple(model.layers[2].kernel.shape), (6, 3))
        attr_kernel = self.to_numpy(model.layers[2].kernel).copy()
        model.fit(x, pids, batch_size=12, epochs=2, verbose=0)
        # The attribute branch gets no gradient from PMI: SGD leaves it unchanged.
        self.assertAllEqual(model.layers[2].kernel, attr_kernel)
        self.assertTrue(np.isfinite(float(model.evaluate(x, pids, batch_size=12, verbose=0))))
