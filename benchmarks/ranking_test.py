import json

import numpy as np
import pytest

from benchmarks import ranking as ranking_benchmark
from keras_asanet.evaluation.ranking import evaluate_ranking
from keras_asanet.tests.test_case import TestCase

# numpy only: the README's test command runs it under one backend.
pytestmark = pytest.mark.backend_independent


class RankingBenchmarkTest(TestCase):
    def test_small_run_reports_the_reference_ranking_of_its_problems(self):
        """Every mAP / rank-1 / mINP the benchmark prints is the full-argsort reference's on
        the same problem (and the library's, to 1e-12, or run() raises)."""
        sizes = dict(num_query=60, num_gallery=300)
        out = ranking_benchmark.run(
            **sizes, dim=8, large_gallery=2000, large_dim=4, repeats=1, community_baseline=True
        )
        json.dumps(out)
        mars = ranking_benchmark.mars_size_problem(**sizes, dim=8, seed=0)
        problems = {
            "mars_size": mars,
            "mars_size_unstructured": ranking_benchmark.unstructured_problem(mars, seed=0),
            "large_gallery": ranking_benchmark.large_gallery_problem(
                **sizes, large_gallery=2000, dim=4, seed=0
            ),
        }
        for key, problem in problems.items():
            ref = ranking_benchmark.reference_evaluate_ranking(*problem)
            self.assertGreater(ref["num_valid_queries"], 40, key)
            self.assertEqual(out[key]["num_valid_queries"], ref["num_valid_queries"], key)
            self.assertAlmostEqual(out[key]["mAP"], ref["mAP"], places=6, msg=key)
            self.assertAlmostEqual(out[key]["rank1"], ref["cmc"][0], places=6, msg=key)
            if key != "large_gallery":
                self.assertAlmostEqual(out[key]["mINP"], ref["mINP"], places=6, msg=key)
                self.assertLessEqual(out[key]["max_abs_difference"], 1e-12)
        # The structured features rank far better than structure-free ones.
        self.assertGreater(out["mars_size"]["mAP"], out["mars_size_unstructured"]["mAP"] + 0.2)
        self.assertEqual(len(problems["large_gallery"][1]), 2000)
        self.assertEqual(out["large_gallery"]["num_gallery"], 2000)
        self.assertTrue(out["large_gallery"]["under_4GB"])
        self.assertLessEqual(out["mars_size"]["community_loop_max_abs_difference"], 1e-12)
        # Without a torchreid checkout its evaluators are not measured, and the table says so.
        self.assertIn("not measured", out["mars_size"]["torchreid_cython"])
        table = ranking_benchmark.table(out)
        self.assertIn("not measured", table)
        self.assertIn("| 60 x 2,000, d 4 |", table)
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
