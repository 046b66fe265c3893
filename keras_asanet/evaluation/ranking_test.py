import json
import os
import subprocess
import sys

import numpy as np
import pytest

from keras_asanet.evaluation import ranking
from keras_asanet.evaluation.ranking import (
    evaluate_distance_matrix,
    evaluate_ranking,
    pairwise_distance,
)
from keras_asanet.tests.test_case import TestCase

# Pure numpy / file code: the README's test command runs it under one backend only.
pytestmark = pytest.mark.backend_independent


def brute_force(qf, gf, q_pids, g_pids, q_cams, g_cams, max_rank=50, metric="euclidean"):
    """Independent oracle: Python sorting on (distance, gallery index), then the textbook
    formulas. Distances in float64 from the definitions."""
    qf, gf = np.asarray(qf, np.float64), np.asarray(gf, np.float64)
    if metric == "euclidean":
        dist = ((qf[:, None, :] - gf[None, :, :]) ** 2).sum(-1)
    else:
        qn = qf / np.linalg.norm(qf, axis=1, keepdims=True)
        gn = gf / np.linalg.norm(gf, axis=1, keepdims=True)
        dist = 1.0 - qn @ gn.T
    length = min(max_rank, len(g_pids))
    cmc = np.zeros(length)
    aps, inps, first = [], [], []
    for i in range(len(q_pids)):
        order = sorted(range(len(g_pids)), key=lambda j: (dist[i, j], j))
        kept = [j for j in order if not (g_pids[j] == q_pids[i] and g_cams[j] == q_cams[i])]
        hits = [g_pids[j] == q_pids[i] for j in kept]
        if not any(hits):
            first.append(-1)
            continue
        positions = [k + 1 for k, h in enumerate(hits) if h]  # 1-based ranks
        ap = sum((n + 1) / p for n, p in enumerate(positions)) / len(positions)
        aps.append(ap)
        inps.append(len(positions) / positions[-1])
        first.append(positions[0])
        for r in range(length):
            cmc[r] += positions[0] <= r + 1
    n = len(aps)
    return {
        "cmc": cmc / n,
        "mAP": float(np.mean(aps)),
        "mINP": float(np.mean(inps)),
        "num_valid": n,
        "first": np.array(first),
    }


def random_problem(rng, nq, ng, dim, num_ids, num_cams, integer=False, spread=1.0):
    q_pids = rng.integers(0, num_ids, nq)
    g_pids = rng.integers(0, num_ids, ng)
    q_cams = rng.integers(0, num_cams, nq)
    g_cams = rng.integers(0, num_cams, ng)
    if integer:  # exact distances with many exact ties
        qf = rng.integers(-2, 3, (nq, dim)).astype(np.float64)
        gf = rng.integers(-2, 3, (ng, dim)).astype(np.float64)
    else:
        centres = spread * rng.normal(size=(num_ids, dim))
        qf = centres[q_pids] + rng.normal(size=(nq, dim))
        gf = centres[g_pids] + rng.normal(size=(ng, dim))
    return qf, gf, q_pids, g_pids, q_cams, g_cams


# A hand-computed case. 1-D features, squared Euclidean distances.
#   gallery  x     pid cam
#   g0      1.0     2   1
#   g1      0.5     1   0
#   g2      2.0     1   1
#   g3      3.0     0   2   (distractor)
#   g4      4.0     1   2
#   g5    100.0     4   1
# q0 = 0.0, pid 1, cam 0: distances g1 .25 (same pid+cam: removed), g0 1, g2 4, g3 9, g4 16,
#   g5 1e4 -> kept order g0 g2 g3 g4 g5; matches at ranks 2 and 4:
#   AP = (1/2 + 2/4) / 2 = 0.5, INP = 2/4, first match at rank 2.
# q1 = 10.0, pid 3, cam 0: no pid 3 in the gallery -> skipped.
# q2 = 3.0, pid 2, cam 0: g3 0, g2 1, g4 1 (tie: g2 first, lower index), g0 4, g1 6.25;
#   its only match g0 is at rank 4: AP = 1/4, INP = 1/4.
# q3 = 0.0, pid 4, cam 1: its only pid-4 item g5 is in camera 1 -> removed -> skipped.
HAND_Q = np.array([[0.0], [10.0], [3.0], [0.0]])
HAND_G = np.array([[1.0], [0.5], [2.0], [3.0], [4.0], [100.0]])
HAND_Q_PIDS = np.array([1, 3, 2, 4])
HAND_G_PIDS = np.array([2, 1, 1, 0, 1, 4])
HAND_Q_CAMS = np.array([0, 0, 0, 1])
HAND_G_CAMS = np.array([1, 0, 1, 2, 2, 1])


class RankingHandComputedTest(TestCase):
    def test_hand_computed_case(self):
        r = evaluate_ranking(HAND_Q, HAND_G, HAND_Q_PIDS, HAND_G_PIDS, HAND_Q_CAMS, HAND_G_CAMS)
        self.assertEqual(r.num_queries, 4)
        self.assertEqual(r.num_valid_queries, 2)
        self.assertEqual(r.num_gallery, 6)
        self.assertAlmostEqual(r.mAP, (0.5 + 0.25) / 2, places=12)
        self.assertAlmostEqual(r.mINP, (0.5 + 0.25) / 2, places=12)
        np.testing.assert_allclose(r.cmc, [0.0, 0.5, 0.5, 1.0, 1.0, 1.0])
        self.assertEqual(r.rank(1), 0.0)
        self.assertEqual(r.rank(2), 0.5)
        self.assertEqual(r.rank(20), 1.0)  # past the gallery size: the last value
        np.testing.assert_array_equal(r.query_first_rank, [2, -1, 4, -1])
        np.testing.assert_array_equal(r.valid_mask, [True, False, True, False])
        np.testing.assert_allclose(r.query_ap, [0.5, np.nan, 0.25, np.nan])
        np.testing.assert_allclose(r.query_inp, [0.5, np.nan, 0.25, np.nan])

    def test_ties_are_broken_by_gallery_index(self):
        q, q_pid, q_cam = np.array([[0.0]]), [1], [0]
        # Negative first: the two matches tie with it and come after it.
        r = evaluate_ranking(
            q, np.array([[1.0], [-1.0], [1.0]]), q_pid, [5, 1, 1], q_cam, [1, 1, 2]
        )
        self.assertAlmostEqual(r.mAP, (1 / 2 + 2 / 3) / 2, places=12)
        self.assertEqual(r.rank(1), 0.0)
        # Same distances, match first: it wins the tie.
        r = evaluate_ranking(
            q, np.array([[-1.0], [1.0], [1.0]]), q_pid, [1, 5, 1], q_cam, [1, 1, 2]
        )
        self.assertAlmostEqual(r.mAP, (1 / 1 + 2 / 3) / 2, places=12)
        self.assertEqual(r.rank(1), 1.0)

    def test_tied_removed_item_does_not_count(self):
        # g0 (same pid and camera, removed) ties with the match g1 and precedes it.
        r = evaluate_ranking(
            np.array([[0.0]]), np.array([[1.0], [1.0], [2.0]]), [1], [1, 1, 7], [0], [0, 1, 1]
        )
        self.assertEqual(r.rank(1), 1.0)
        self.assertEqual(r.mAP, 1.0)

    def test_distractors_are_never_matches(self):
        # The distractor (pid 0) is nearest: the match is second.
        r = evaluate_ranking(np.array([[0.0]]), np.array([[0.1], [0.2]]), [3], [0, 3], [0], [1, 1])
        self.assertEqual(r.query_first_rank[0], 2)
        self.assertAlmostEqual(r.mAP, 0.5)

    def test_same_camera_match_removed_cross_camera_kept(self):
        # The nearest same-identity item is in the query's camera: removed, not a miss.
        r = evaluate_ranking(
            np.array([[0.0]]), np.array([[0.0], [5.0], [1.0]]), [2], [2, 9, 2], [3], [3, 1, 1]
        )
        self.assertEqual(r.query_first_rank[0], 1)
        self.assertEqual(r.mAP, 1.0)

    def test_cosine_metric(self):
        # Angles: g0 at 90 degrees, g1 at 0 (match), g2 at 45 degrees (match).
        q = np.array([[1.0, 0.0]])
        g = np.array([[0.0, 3.0], [5.0, 0.0], [1.0, 1.0]])
        r = evaluate_ranking(q, g, [1], [2, 1, 1], [0], [1, 1, 1], metric="cosine")
        self.assertEqual(r.mAP, 1.0)
        self.assertEqual(r.metric, "cosine")
        d = pairwise_distance(q, g, "cosine")
        np.testing.assert_allclose(d, [[1.0, 0.0, 1 - np.sqrt(0.5)]], atol=1e-7)

    def test_pairwise_distance_matches_definition(self):
        rng = np.random.default_rng(0)
        q, g = rng.normal(size=(5, 7)), rng.normal(size=(9, 7))
        expected = ((q[:, None] - g[None]) ** 2).sum(-1)
        self.assertAllClose(pairwise_distance(q, g), expected, atol=1e-10, rtol=1e-10)
        self.assertEqual(
            pairwise_distance(q.astype("float32"), g.astype("float32")).dtype, np.float32
        )

    def test_result_api(self):
        r = evaluate_ranking(
            HAND_Q, HAND_G, HAND_Q_PIDS, HAND_G_PIDS, HAND_Q_CAMS, HAND_G_CAMS, name="toy/usual"
        )
        d = json.loads(json.dumps(r.to_dict()))
        self.assertEqual(d["name"], "toy/usual")
        self.assertEqual(d["num_valid_queries"], 2)
        self.assertEqual(d["num_queries"], 4)
        self.assertAlmostEqual(d["mAP"], 0.375)
        self.assertEqual(d["rank1"], 0.0)
        self.assertEqual(d["rank5"], 1.0)
        self.assertLen(d["cmc"], 6)
        text = str(r)
        for piece in (
            "toy/usual",
            "2/4 queries",
            "mAP",
            "mINP",
            "Rank-1",
            "Rank-5",
            "Rank-10",
            "Rank-20",
            "37.50%",
        ):
            self.assertIn(piece, text)
        with self.assertRaisesRegex(ValueError, "k >= 1"):
            r.rank(0)

    def test_max_rank_shortens_cmc(self):
        r = evaluate_ranking(
            HAND_Q, HAND_G, HAND_Q_PIDS, HAND_G_PIDS, HAND_Q_CAMS, HAND_G_CAMS, max_rank=3
        )
        np.testing.assert_allclose(r.cmc, [0.0, 0.5, 0.5])


class RankingOracleTest(TestCase):
    def _check_against_oracle(self, problem, metric="euclidean", max_rank=50):
        oracle = brute_force(*problem, max_rank=max_rank, metric=metric)
        r = evaluate_ranking(*problem, metric=metric, max_rank=max_rank)
        self.assertEqual(r.num_valid_queries, oracle["num_valid"])
        np.testing.assert_array_equal(r.query_first_rank, oracle["first"])
        np.testing.assert_allclose(r.cmc, oracle["cmc"], rtol=0, atol=1e-12)
        self.assertAlmostEqual(r.mAP, oracle["mAP"], places=12)
        self.assertAlmostEqual(r.mINP, oracle["mINP"], places=12)

    def test_random_features_match_the_oracle(self):
        rng = np.random.default_rng(1)
        for _ in range(3):
            self._check_against_oracle(random_problem(rng, 30, 120, 6, 12, 4))
        self._check_against_oracle(random_problem(rng, 30, 120, 6, 12, 4), metric="cosine")

    def test_exact_ties_match_the_oracle(self):
        rng = np.random.default_rng(2)
        for _ in range(3):
            self._check_against_oracle(random_problem(rng, 25, 150, 2, 6, 3, integer=True))

    def test_many_matches_per_query_match_the_oracle(self):
        # Few identities: more than 48 matches per query takes the sorting path.
        rng = np.random.default_rng(3)
        problem = random_problem(rng, 12, 400, 2, 3, 3, integer=True)
        self.assertGreater(np.bincount(problem[3]).max(), 100)
        self._check_against_oracle(problem, max_rank=10)


class RankingBlockTest(TestCase):
    def _fields(self, r):
        return (r.cmc, r.query_ap, r.query_inp, r.query_first_rank)

    def test_blockwise_equals_all_at_once(self):
        # 2,100 queries x 9,000 gallery items: two query tiles of 1,056 rows (the last one
        # padded) and three gallery tiles of 3,008 columns. A block costs 1,056 * (4 + 1)
        # bytes per column: budgets give 1, 1, 2 tiles per block (two passes) and one pass.
        rng = np.random.default_rng(4)
        problem = random_problem(rng, 2100, 9000, 8, 1500, 6, spread=4.0)
        problem = (problem[0].astype("float32"), problem[1].astype("float32")) + problem[2:]
        full = evaluate_ranking(*problem, max_memory=None)
        grid = ranking._DistanceGrid(problem[0], problem[1], "euclidean")
        self.assertEqual((grid.q_tile, grid.g_tile), (1056, 3008))
        for budget, columns in (
            (1, 3008),
            (30 * 2**20, 3008),
            (2 * 5280 * 3008, 6016),
            (64 * 2**20, 9000),
        ):
            self.assertEqual(ranking._plan(grid, budget), columns)
            r = evaluate_ranking(*problem, max_memory=budget)
            for a, b in zip(self._fields(r), self._fields(full)):
                np.testing.assert_array_equal(a, b)
            self.assertEqual(r.mAP, full.mAP)
        # and it is the correct ranking: a stable argsort of the same distances.
        dist = pairwise_distance(problem[0][:200], problem[1])
        order = np.argsort(dist, axis=1, kind="stable")
        q_pids, g_pids, q_cams, g_cams = problem[2:]
        for i in range(200):
            keep = ~((g_pids[order[i]] == q_pids[i]) & (g_cams[order[i]] == q_cams[i]))
            hits = np.flatnonzero(g_pids[order[i]][keep] == q_pids[i])
            expected = hits[0] + 1 if len(hits) else -1
            self.assertEqual(full.query_first_rank[i], expected)

    def test_plan_uses_two_passes_only_when_rows_do_not_fit(self):
        rng = np.random.default_rng(5)
        qf, gf = rng.normal(size=(10, 4)), rng.normal(size=(5000, 4))
        grid = ranking._DistanceGrid(qf, gf, "euclidean")
        self.assertEqual(grid.g_tile, 2512)
        self.assertEqual(ranking._plan(grid, 2**30), 5000)
        self.assertEqual(ranking._plan(grid, 1), 2512)

    def test_distances_do_not_depend_on_blocking(self):
        rng = np.random.default_rng(6)
        qf = rng.normal(size=(2100, 16)).astype("float32")
        gf = rng.normal(size=(4500, 16)).astype("float32")
        full = pairwise_distance(qf, gf)
        grid = ranking._DistanceGrid(qf, gf, "euclidean")
        # the second gallery tile alone, for the second query tile
        start, stop = grid.query_rows(1)
        part = grid.compute(1, grid.g_tile, 4500)[: stop - start]
        np.testing.assert_array_equal(part, full[start:stop, grid.g_tile :])


class DistanceMatrixTest(TestCase):
    def test_equals_feature_path(self):
        rng = np.random.default_rng(7)
        problem = random_problem(rng, 2100, 300, 4, 40, 3, integer=True)
        ids = problem[2:]
        from_features = evaluate_ranking(*problem)
        dist = pairwise_distance(problem[0], problem[1])
        r = evaluate_distance_matrix(dist, *ids, name="re-ranked")
        for a, b in zip(
            (r.cmc, r.query_ap, r.query_first_rank),
            (from_features.cmc, from_features.query_ap, from_features.query_first_rank),
        ):
            np.testing.assert_array_equal(a, b)
        self.assertEqual((r.metric, r.name), ("precomputed", "re-ranked"))
        # a memmap is read block by block
        path = os.path.join(self.get_temp_dir(), "dist.npy")
        np.save(path, dist)
        r = evaluate_distance_matrix(np.load(path, mmap_mode="r"), *ids)
        self.assertEqual(r.mAP, from_features.mAP)
        # integer distances are accepted
        r = evaluate_distance_matrix(dist.astype(np.int64), *ids)
        self.assertEqual(r.mAP, from_features.mAP)

    def test_hand_computed_distances(self):
        # One query; distances to 4 gallery items; item 1 is removed (same pid and camera).
        dist = np.array([[0.3, 0.1, 0.2, 0.3]])
        r = evaluate_distance_matrix(dist, [5], [5, 5, 9, 5], [0], [1, 0, 1, 2])
        # kept order: g2 (0.2), g0 (0.3), g3 (0.3, tie -> after g0): matches at ranks 2, 3
        self.assertAlmostEqual(r.mAP, (1 / 2 + 2 / 3) / 2, places=12)
        self.assertAlmostEqual(r.mINP, 2 / 3, places=12)

    def test_bad_matrix(self):
        with self.assertRaisesRegex(ValueError, "query_pids has 1 entries but distmat has 2"):
            evaluate_distance_matrix(np.zeros((2, 3)), [1], [1, 1, 1], [0, 0], [1, 1, 1])
        with self.assertRaisesRegex(ValueError, r"gallery_camids has 2 entries but distmat \(col"):
            evaluate_distance_matrix(np.zeros((1, 3)), [1], [1, 1, 1], [0], [1, 1])
        with self.assertRaisesRegex(ValueError, "distmat holds NaN"):
            evaluate_distance_matrix(np.array([[np.nan, 1.0]]), [1], [1, 1], [0], [1, 1])


class RankingBadInputTest(TestCase):
    def _args(self, **override):
        args = dict(
            query_features=HAND_Q,
            gallery_features=HAND_G,
            query_pids=HAND_Q_PIDS,
            gallery_pids=HAND_G_PIDS,
            query_camids=HAND_Q_CAMS,
            gallery_camids=HAND_G_CAMS,
        )
        args.update(override)
        return args

    def test_errors_name_the_argument(self):
        nan_q = HAND_Q.copy()
        nan_q[1, 0] = np.nan
        inf_g = HAND_G.copy()
        inf_g[2, 0] = np.inf
        cases = [
            (dict(query_pids=HAND_Q_PIDS[:3]), "query_pids has 3 entries"),
            (dict(gallery_camids=HAND_G_CAMS[:2]), "gallery_camids has 2 entries"),
            (dict(query_features=nan_q), "query_features holds NaN or inf.*row 1"),
            (dict(gallery_features=inf_g), "gallery_features holds NaN or inf.*row 2"),
            (
                dict(query_features=np.zeros((0, 1)), query_pids=[], query_camids=[]),
                "query_features is empty",
            ),
            (
                dict(gallery_features=np.zeros((0, 1)), gallery_pids=[], gallery_camids=[]),
                "gallery_features is empty",
            ),
            (dict(gallery_features=np.zeros((6, 2))), "dimension 1 but gallery_features have"),
            (dict(query_camids=np.array([0.0, 1.5, 0.0, 1.0])), "query_camids must be integers"),
            (dict(gallery_pids=np.array(list("abcdef"))), "gallery_pids must be integers"),
            (dict(query_features=np.zeros(4)), "query_features must be 2-D"),
            (dict(metric="manhattan"), "metric must be one of"),
            (dict(max_rank=0), "max_rank must be >= 1"),
            (dict(max_memory=0), "max_memory must be a positive"),
            (dict(query_pids=[7, 8, 9, 10]), "None of the 4 queries has a true match"),
        ]
        for override, message in cases:
            with self.subTest(message=message):
                with self.assertRaisesRegex(ValueError, message):
                    evaluate_ranking(**self._args(**override))

    def test_integral_float_ids_are_accepted(self):
        r = evaluate_ranking(**self._args(query_pids=HAND_Q_PIDS.astype(float)))
        self.assertAlmostEqual(r.mAP, 0.375)


@pytest.mark.subprocess
def test_ranking_module_does_not_import_keras():
    path = os.path.join(os.path.dirname(__file__), "ranking.py")
    code = (
        "import importlib.util, sys\n"
        f"spec = importlib.util.spec_from_file_location('ranking_alone', {path!r})\n"
        "module = importlib.util.module_from_spec(spec)\nsys.modules['ranking_alone'] = module\n"
        "spec.loader.exec_module(module)\n"
        "print('keras' in sys.modules, 'tensorflow' in sys.modules, 'torch' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False", "False"], out.stdout + out.stderr
