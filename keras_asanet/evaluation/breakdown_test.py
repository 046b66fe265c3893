import json

import numpy as np
import pytest

from keras_asanet.data.attributes import AttributeSchema
from keras_asanet.data.tracklet import Tracklet
from keras_asanet.evaluation.breakdown import breakdown_by_query, camera_pair_breakdown
from keras_asanet.evaluation.ranking import evaluate_ranking
from keras_asanet.evaluation.ranking_test import (
    HAND_G,
    HAND_G_CAMS,
    HAND_G_PIDS,
    HAND_Q,
    HAND_Q_CAMS,
    HAND_Q_PIDS,
)
from keras_asanet.tests.test_case import TestCase

# Pure numpy / file code: the README's test command runs it under one backend only.
pytestmark = pytest.mark.backend_independent


def _q(tid, occlusion=None, pose=None, motion=None):
    attributes = None if pose is None else {"pose": pose, "motion": motion}
    quality = None if occlusion is None else {"occlusion": occlusion, "cut_out": 0}
    return Tracklet(
        frames=("x.jpg",),
        pid=1,
        camid=0,
        tracklet_id=tid,
        original_pid=1,
        attributes=attributes,
        quality=quality,
    )


class BreakdownTest(TestCase):
    def test_breakdown_by_query_annotation(self):
        # The hand-computed ranking: q0 first match at rank 2 (AP .5), q1 skipped,
        # q2 first match at rank 4 (AP .25), q3 skipped.
        result = evaluate_ranking(
            HAND_Q, HAND_G, HAND_Q_PIDS, HAND_G_PIDS, HAND_Q_CAMS, HAND_G_CAMS
        )
        queries = [
            _q(0, occlusion=1, pose=0, motion=1),
            _q(1),
            _q(2, occlusion=0, pose=0, motion=0),
            _q(3, occlusion=1, pose=2, motion=0),
        ]
        b = breakdown_by_query(result, queries, AttributeSchema.for_dataset("mars")).to_dict()
        occluded = b["quality"]["occlusion=1"]
        self.assertEqual((occluded["num_queries"], occluded["num_valid_queries"]), (2, 1))
        self.assertEqual((occluded["rank1"], occluded["mAP"]), (0.0, 0.5))
        self.assertEqual(b["quality"]["occlusion=0"]["mAP"], 0.25)
        self.assertEqual(b["quality"]["cut_out=1"]["num_queries"], 0)
        self.assertEqual(b["quality"]["cut_out=0"]["num_queries"], 3)
        self.assertEqual(b["pose"]["frontal"]["num_valid_queries"], 2)
        self.assertAlmostEqual(b["pose"]["frontal"]["mAP"], 0.375)
        self.assertEqual(b["pose"]["lateral"]["num_queries"], 1)
        self.assertIsNone(b["pose"]["lateral"]["mAP"])  # its only query was skipped
        self.assertEqual(b["motion"]["walking"]["num_queries"], 2)
        self.assertEqual(b["motion"]["running"]["mAP"], 0.5)
        self.assertEqual(b["all"]["unannotated"]["num_queries"], 1)
        self.assertEqual(b["all"]["all"]["mAP"], 0.375)
        json.dumps(b)
        text = str(breakdown_by_query(result, queries))
        self.assertIn("quality:occlusion=1", text)
        self.assertIn("pose:class_0", text)  # no schema: class indices
        with self.assertRaisesRegex(ValueError, "query_tracklets has 3 entries"):
            breakdown_by_query(result, queries[:3])

    def test_camera_pair_matrix(self):
        rng = np.random.default_rng(0)
        q_pids, g_pids = rng.integers(1, 6, 20), rng.integers(0, 6, 60)
        q_cams, g_cams = rng.integers(0, 3, 20), rng.integers(0, 3, 60)
        qf, gf = rng.normal(size=(20, 4)), rng.normal(size=(60, 4))
        m = camera_pair_breakdown(qf, gf, q_pids, g_pids, q_cams, g_cams)
        np.testing.assert_array_equal(m.query_cameras, [0, 1, 2])
        np.testing.assert_array_equal(m.gallery_cameras, [0, 1, 2])
        self.assertTrue(np.isnan(np.diag(m.mAP)).all())  # same camera: every match removed
        self.assertTrue((np.diag(m.num_valid_queries) == 0).all())
        # each cell = the ranking of that camera's queries against that camera's gallery
        for i in range(3):
            for j in range(3):
                if i == j:
                    continue
                qs, gs = q_cams == i, g_cams == j
                if m.num_valid_queries[i, j] == 0:
                    self.assertTrue(np.isnan(m.mAP[i, j]))
                    continue
                r = evaluate_ranking(qf[qs], gf[gs], q_pids[qs], g_pids[gs], q_cams[qs], g_cams[gs])
                self.assertEqual(m.num_valid_queries[i, j], r.num_valid_queries)
                self.assertAlmostEqual(m.mAP[i, j], r.mAP, places=12)
                self.assertAlmostEqual(m.rank1[i, j], r.rank(1), places=12)
        d = json.loads(json.dumps(m.to_dict()))
        self.assertIsNone(d["mAP"][0][0])
        self.assertIn("cam0", str(m))
