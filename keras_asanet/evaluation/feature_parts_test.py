import numpy as np
import pytest

from keras_asanet.data.tracklet import Tracklet
from keras_asanet.evaluation.feature_parts import check_feature_parts, score_feature_parts
from keras_asanet.evaluation.protocols import EvaluationProtocol
from keras_asanet.evaluation.ranking import evaluate_ranking
from keras_asanet.tests.test_case import TestCase

pytestmark = pytest.mark.backend_independent


def _protocol(num_ids=6, per_id=3):
    """Queries from camera 0, gallery from the others: one true match per camera."""
    tracklets = tuple(
        Tracklet(
            frames=(f"{pid}_{cam}.jpg",), pid=pid, camid=cam, tracklet_id=cam, original_pid=pid
        )
        for pid in range(1, num_ids + 1)
        for cam in range(per_id)
    )
    camids = np.asarray([t.camid for t in tracklets])
    return EvaluationProtocol(
        name="toy",
        dataset="toy",
        setup="usual",
        trained_on="toy",
        tracklets=tracklets,
        query_index=np.flatnonzero(camids == 0),
        gallery_index=np.flatnonzero(camids != 0),
    )


class FeaturePartsTest(TestCase):
    def test_each_part_is_ranked_alone(self):
        protocol = _protocol()
        pids = np.asarray([t.pid for t in protocol.tracklets])
        camids = np.asarray([t.camid for t in protocol.tracklets])
        rng = np.random.default_rng(0)
        identity = np.eye(8)[pids] + 0.01 * rng.normal(size=(len(pids), 8))  # separates ids
        noise = rng.normal(size=(len(pids), 5))  # knows nothing
        features = np.concatenate([noise, identity], 1)
        scores = score_feature_parts(
            protocol,
            features,
            pids,
            camids,
            {"noise": (0, 5), "identity": (5, 13)},
            metric="cosine",
        )
        self.assertEqual(list(scores.results), ["noise", "identity"])
        self.assertAllClose(scores.results["identity"].mAP, 1.0)
        self.assertLess(scores.results["noise"].mAP, 0.9)
        # Exactly the ranking of the columns by themselves (numpy oracle: evaluate_ranking on
        # the query / gallery rows of the slice).
        qi, gi = protocol.query_index, protocol.gallery_index
        expected = evaluate_ranking(
            features[qi, :5],
            features[gi, :5],
            pids[qi],
            pids[gi],
            camids[qi],
            camids[gi],
            metric="cosine",
        )
        self.assertAllClose(scores.results["noise"].mAP, expected.mAP)
        self.assertAllClose(scores.results["noise"].cmc, expected.cmc)
        text = str(scores)
        self.assertIn("identity [5:13] mAP 100.0", text)
        self.assertEqual(scores.to_dict()["noise"]["columns"], [0, 5])

    def test_bad_parts_are_refused(self):
        for parts, message in (
            ({}, "at least one"),
            ({"a": (0, 0)}, "non-empty"),
            ({"a": (0, 11)}, "non-empty"),
            ({"a": (0, 6), "b": (5, 8)}, "overlaps"),
        ):
            with self.assertRaisesRegex(ValueError, message):
                check_feature_parts(parts, 10)
