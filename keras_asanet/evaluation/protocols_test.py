import types

import numpy as np
import pytest

from keras_asanet.data.tracklet import Tracklet
from keras_asanet.evaluation.protocols import (
    canonical_dataset_name,
    cross_dataset_protocol,
    duke_protocol,
    get_protocol,
    mars_protocol,
)
from keras_asanet.tests.test_case import TestCase

# Pure numpy / file code: the README's test command runs it under one backend only.
pytestmark = pytest.mark.backend_independent


def _t(pid, cam, tid):
    return Tracklet(frames=(f"f{tid}.jpg",), pid=pid, camid=cam, tracklet_id=tid, original_pid=pid)


# Queries qA (pid 1, cam 0, x=0), qB (pid 1, cam 1, x=10), qC (pid 2, cam 0, x=5);
# gallery g0 (pid 2, cam 2, x=5.5), g1 (distractor, cam 1, x=0.1), g2 (pid 1, cam 0, x=20).
QUERY = [_t(1, 0, 1), _t(1, 1, 2), _t(2, 0, 3)]
GALLERY = [_t(2, 2, 4), _t(0, 1, 5), _t(1, 0, 6)]
FEATURES = np.array([[0.0], [10.0], [5.0], [5.5], [0.1], [20.0]])


def dataset(name="mars", query=QUERY, gallery=GALLERY):
    return types.SimpleNamespace(
        name=name, train=[], query=query, gallery=gallery, attribute_schema=None
    )


class ProtocolTest(TestCase):
    def test_usual_layout_and_scores(self):
        p = mars_protocol(dataset(), "usual")
        self.assertEqual(p.name, "mars/usual")
        self.assertLen(p.tracklets, 6)
        np.testing.assert_array_equal(p.query_index, [0, 1, 2])
        np.testing.assert_array_equal(p.gallery_index, [3, 4, 5])
        self.assertIn("3 queries vs 3 gallery tracklets", p.describe())
        r = p.evaluate(FEATURES)
        # qA: its only pid-1 gallery item g2 is in its camera -> skipped.
        # qB: g0 20.25, g1 98.01, g2 100 -> match at rank 3; qC: g0 first.
        self.assertEqual(r.num_valid_queries, 2)
        self.assertAlmostEqual(r.mAP, (1 / 3 + 1) / 2, places=12)
        self.assertEqual(r.name, "mars/usual")

    def test_mixing_adds_queries_and_removes_each_query_itself(self):
        p = mars_protocol(dataset(), "mixing")
        self.assertEqual(p.name, "mars/mixing")
        np.testing.assert_array_equal(p.gallery_index, [0, 1, 2, 3, 4, 5])
        self.assertIn("own tracklet removed", p.describe())
        r = p.evaluate(FEATURES)
        # qA: qA and g2 removed (pid 1, cam 0); g1 .01, qC 25, g0 30.25, qB 100 -> rank 4.
        # qB: qB removed; g0 20.25, qC 25, g1 98.01, qA 100, g2 100 (tie, qA first) -> 4, 5.
        # qC: qC (distance 0) removed; g0 first.
        self.assertEqual(r.num_valid_queries, 3)
        np.testing.assert_array_equal(r.query_first_rank, [4, 4, 1])
        self.assertAlmostEqual(r.mAP, (1 / 4 + (1 / 4 + 2 / 5) / 2 + 1) / 3, places=12)

    def test_distractors_stay_in_the_gallery(self):
        p = mars_protocol(dataset(), "usual")
        self.assertIn(0, [t.pid for t in p.gallery_tracklets])
        self.assertEqual([t.tracklet_id for t in p.query_tracklets], [1, 2, 3])

    def test_junk_is_refused(self):
        with self.assertRaisesRegex(ValueError, "junk"):
            mars_protocol(dataset(gallery=GALLERY + [_t(-1, 0, 9)]))

    def test_duke_and_cross_dataset(self):
        p = duke_protocol(dataset("DukeMTMC-VideoReID"))
        self.assertEqual(p.name, "duke/usual")
        self.assertFalse(p.cross_dataset)
        p = cross_dataset_protocol(dataset("mars"), trained_on="duke")
        self.assertEqual(p.name, "duke->mars/usual")
        self.assertTrue(p.cross_dataset)
        self.assertIn("model trained on duke", p.describe())
        self.assertEqual(
            get_protocol(dataset("duke"), "mixing", trained_on="mars").name, "mars->duke/mixing"
        )
        # a user's own dataset in the same layout
        self.assertEqual(get_protocol(dataset("mydata")).name, "mydata/usual")

    def test_bad_arguments(self):
        with self.assertRaisesRegex(ValueError, "setup must be one of"):
            mars_protocol(dataset(), "mixed")
        with self.assertRaisesRegex(ValueError, "mars_protocol needs the MARS dataset"):
            mars_protocol(dataset("duke"))
        with self.assertRaisesRegex(ValueError, "duke_protocol needs"):
            duke_protocol(dataset("mars"))
        with self.assertRaisesRegex(ValueError, "'query' split .* is empty"):
            mars_protocol(dataset(query=[]))
        p = mars_protocol(dataset())
        with self.assertRaisesRegex(ValueError, r"features must have shape \(6, D\)"):
            p.evaluate(FEATURES[:5])
        with self.assertRaisesRegex(ValueError, r"pids must have shape \(6,\)"):
            p.split(FEATURES, pids=[1, 2])

    def test_dataset_names(self):
        self.assertEqual(canonical_dataset_name("MARS"), "mars")
        self.assertEqual(canonical_dataset_name("DukeMTMC-VideoReID"), "duke")
        self.assertEqual(canonical_dataset_name("dukev"), "duke")
        with self.assertRaisesRegex(ValueError, "Unknown dataset 'market'"):
            canonical_dataset_name("market")
