import json

import numpy as np

from keras_asanet.evaluation import ranking_benchmark
from keras_asanet.evaluation.ranking import evaluate_ranking
from keras_asanet.tests.test_case import TestCase


class RankingBenchmarkTest(TestCase):
    def test_small_run_agrees_and_serialises(self):
        out = ranking_benchmark.run(
            num_query=60, num_gallery=300, dim=8, large_gallery=2000, large_dim=4, repeats=1
        )
        json.dumps(out)
        for key in ("mars_size", "mars_size_unstructured"):
            self.assertLessEqual(out[key]["max_abs_difference"], 1e-9)
            self.assertGreater(out[key]["fast_seconds"], 0)
        large = out["large_gallery"]
        self.assertEqual(large["num_gallery"], 2000)
        self.assertTrue(large["under_4GB"])
        self.assertGreater(large["tracemalloc_peak_bytes_during_call"], 0)
        self.assertNotIn(
            "large_gallery",
            ranking_benchmark.run(num_query=20, num_gallery=100, dim=4, skip_large=True, repeats=1),
        )

    def test_structure_is_mars_like(self):
        q_pids, q_cams, g_pids, g_cams = ranking_benchmark.mars_like_structure(seed=0)
        self.assertEqual((len(q_pids), len(g_pids)), (1980, 9330))
        self.assertEqual(len(np.unique(q_pids)), 629)  # MARS test: 636 identities
        self.assertGreater((g_pids == 0).sum(), 3000)  # distractors
        # one query per identity and camera
        pairs = set(zip(q_pids.tolist(), q_cams.tolist()))
        self.assertLen(pairs, 1980)

    def test_reference_agrees_with_fast_path_on_ties(self):
        rng = np.random.default_rng(0)
        qf, gf = rng.integers(0, 3, (30, 2)), rng.integers(0, 3, (200, 2))
        args = (
            qf,
            gf,
            rng.integers(1, 5, 30),
            rng.integers(0, 5, 200),
            rng.integers(0, 3, 30),
            rng.integers(0, 3, 200),
        )
        ref = ranking_benchmark.reference_evaluate_ranking(*args)
        fast = evaluate_ranking(*args)
        self.assertEqual(ref["num_valid_queries"], fast.num_valid_queries)
        self.assertAlmostEqual(ref["mAP"], fast.mAP, places=12)
        self.assertAlmostEqual(ref["mINP"], fast.mINP, places=12)
        np.testing.assert_allclose(ref["cmc"], fast.cmc, atol=1e-12)
