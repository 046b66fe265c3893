"""k-reciprocal re-ranking against a plain-Python oracle written from the paper's definitions,
its limits (lambda 1 is the original ranking), a problem it is meant to fix, and bad input."""

import numpy as np
import pytest

from keras_asanet.evaluation.ranking import evaluate_distance_matrix, evaluate_ranking
from keras_asanet.evaluation.reranking import k_reciprocal_distance
from keras_asanet.tests.test_case import TestCase

# numpy only: the same result under every backend.
pytestmark = pytest.mark.backend_independent


def _oracle(qf, gf, k1, k2, lam, metric):
    """Zhong et al.'s definitions with Python sets and loops, in float64."""
    x = np.concatenate([qf, gf]).astype(np.float64)
    n, nq = len(x), len(qf)
    d = np.zeros((n, n))
    for i in range(n):
        for j in range(n):
            if metric == "cosine":
                d[i, j] = 1 - x[i] @ x[j] / (np.linalg.norm(x[i]) * np.linalg.norm(x[j]))
            else:
                d[i, j] = np.sum((x[i] - x[j]) ** 2)
    d = np.maximum(d, 0)
    d = d / d.max(axis=1, keepdims=True)
    order = [sorted(range(n), key=lambda j, i=i: (d[i, j], j)) for i in range(n)]

    def near(i, k):
        return set(order[i][: k + 1])

    def reciprocal(i, k):
        return {j for j in near(i, k) if i in near(j, k)}

    v = np.zeros((n, n))
    for i in range(n):
        core = reciprocal(i, k1)
        expanded = set(core)
        for c in core:
            candidate = reciprocal(c, round(k1 / 2))
            if len(candidate & core) > 2 / 3 * len(candidate):
                expanded |= candidate
        total = sum(np.exp(-d[i, j]) for j in expanded)
        for j in expanded:
            v[i, j] = np.exp(-d[i, j]) / total
    v = np.array([np.mean([v[j] for j in order[i][:k2]], axis=0) for i in range(n)])
    out = np.zeros((nq, n - nq))
    for i in range(nq):
        for g in range(n - nq):
            a, b = v[i], v[nq + g]
            jaccard = 1 - np.minimum(a, b).sum() / np.maximum(a, b).sum()
            out[i, g] = (1 - lam) * jaccard + lam * d[i, nq + g]
    return out


class KReciprocalDistanceTest(TestCase):
    def setUp(self):
        super().setUp()
        rng = np.random.default_rng(0)
        self.qf = rng.normal(size=(9, 6)).astype(np.float32)
        self.gf = rng.normal(size=(23, 6)).astype(np.float32)

    def test_matches_the_oracle(self):
        for k1, k2, lam, metric in (
            (6, 3, 0.3, "euclidean"),
            (4, 1, 0.0, "cosine"),
            (9, 5, 0.6, "cosine"),
        ):
            got = k_reciprocal_distance(self.qf, self.gf, k1, k2, lam, metric=metric)
            self.assertEqual(got.shape, (9, 23))
            self.assertEqual(got.dtype, np.float32)
            want = _oracle(self.qf, self.gf, k1, k2, lam, metric)
            self.assertAllClose(got, want, atol=2e-5, msg=f"{k1}, {k2}, {lam}, {metric}")

    def test_lambda_one_is_the_original_ranking(self):
        got = k_reciprocal_distance(self.qf, self.gf, lambda_value=1.0, k1=5)
        d = np.sum((self.qf[:, None] - self.gf[None]) ** 2, axis=-1)
        everything = np.concatenate([self.qf, self.gf])
        row_max = np.max(np.sum((self.qf[:, None] - everything[None]) ** 2, axis=-1), axis=1)
        self.assertAllClose(got, d / row_max[:, None], atol=1e-5)

    def test_a_look_alike_of_another_person_drops_below_the_true_matches(self):
        # Identity 0: a tight cluster of five gallery tracklets, the query 0.55 from it.
        # Identity 1: a tight cluster of seven and a look-alike 0.5 from the query (nearer
        # than any of identity 0) but 0.4 from its own cluster. The look-alike's five nearest
        # are its own cluster, while identity 0's have the query among theirs: with k1 = 5
        # the query's k-reciprocal set is identity 0, and re-ranking puts it first.
        rng = np.random.default_rng(1)
        own = 0.05 * rng.normal(size=(5, 2))
        other = np.array([0.55, 0.9]) + 0.05 * rng.normal(size=(8, 2))
        other[0] = [0.55, 0.5]  # identity 1's look-alike
        gallery = np.concatenate([own, other, [[3.0, 5.0], [5.0, 5.0]]]).astype(np.float32)
        g_pids = np.array([0] * 5 + [1] * 8 + [2, 3])
        query = np.array([[0.55, 0.0], [0.55, 1.4]], np.float32)
        q_pids = np.array([0, 1])
        q_cams, g_cams = np.zeros(2, int), np.ones(len(gallery), int)
        plain = evaluate_ranking(query, gallery, q_pids, g_pids, q_cams, g_cams)
        self.assertEqual(plain.query_first_rank[0], 2)  # the look-alike first
        # Without the query expansion (k2 = 1), and with it over three neighbours.
        for k2 in (1, 3):
            dist = k_reciprocal_distance(query, gallery, k1=5, k2=k2)
            reranked = evaluate_distance_matrix(dist, q_pids, g_pids, q_cams, g_cams)
            self.assertEqual(reranked.query_ap.tolist(), [1.0, 1.0], k2)
            self.assertGreater(reranked.mAP, plain.mAP)

    def test_bad_input(self):
        with self.assertRaisesRegex(ValueError, "k1=40 needs more than k1 items"):
            k_reciprocal_distance(self.qf, self.gf, k1=40)
        with self.assertRaisesRegex(ValueError, "k2 must be an integer >= 1"):
            k_reciprocal_distance(self.qf, self.gf, k2=0)
        with self.assertRaisesRegex(ValueError, r"lambda_value must be in \[0, 1\]"):
            k_reciprocal_distance(self.qf, self.gf, lambda_value=1.5)
        with self.assertRaisesRegex(ValueError, "needs about .* GiB .* pass a larger max_memory"):
            k_reciprocal_distance(self.qf, self.gf, k1=4, max_memory=1000)
        bad = self.qf.copy()
        bad[2, 1] = np.nan
        with self.assertRaisesRegex(ValueError, "NaN"):
            k_reciprocal_distance(bad, self.gf, k1=4)
        with self.assertRaisesRegex(ValueError, "dimension"):
            k_reciprocal_distance(self.qf, self.gf[:, :4], k1=4)
