import dataclasses
import types

import numpy as np

from keras_asanet.evaluation.feature_extraction_test import H, W, decode, write_tracklets
from keras_asanet.evaluation.protocols import get_protocol
from keras_asanet.evaluation.ranking import evaluate_ranking
from keras_asanet.evaluation.raw_pixels import raw_pixel_baseline, raw_pixel_features
from keras_asanet.tests.test_case import TestCase


def manual_mean(tracklet, indices):
    return np.mean([decode(tracklet.frames[j]) for j in indices], axis=0).reshape(-1) / 255.0


class RawPixelFeaturesTest(TestCase):
    def setUp(self):
        super().setUp()
        self.tracklets = write_tracklets(self.get_temp_dir(), [5, 2, 3])

    def test_dense_uses_the_models_frames(self):
        feats = raw_pixel_features(
            self.tracklets, image_size=(H, W), mode="dense", seq_len=2, normalize=False
        )
        self.assertEqual(feats.shape, (3, H * W * 3))
        self.assertEqual(feats.dtype, np.float32)
        # 5 frames in clips of 2: [0 1] [2 3] [4 4] -- the last frame counts twice.
        np.testing.assert_allclose(
            feats[0], manual_mean(self.tracklets[0], [0, 1, 2, 3, 4, 4]), atol=1e-5
        )
        np.testing.assert_allclose(feats[1], manual_mean(self.tracklets[1], [0, 1]), atol=1e-5)
        self.assertFalse(
            np.allclose(feats[0], manual_mean(self.tracklets[0], [0, 1, 2, 3, 4]), atol=1e-5)
        )

    def test_sampled_and_normalised(self):
        feats = raw_pixel_features(self.tracklets, image_size=(H, W), mode="sampled", seq_len=2)
        np.testing.assert_allclose(np.linalg.norm(feats, axis=1), 1.0, atol=1e-5)
        # evenly_spaced(5, 2) = [1, 3]
        expected = manual_mean(self.tracklets[0], [1, 3])
        np.testing.assert_allclose(feats[0], expected / np.linalg.norm(expected), atol=1e-5)

    def test_resizes(self):
        feats = raw_pixel_features(self.tracklets, image_size=(4, 2), seq_len=2)
        self.assertEqual(feats.shape, (3, 4 * 2 * 3))

    def test_bad_arguments(self):
        with self.assertRaisesRegex(ValueError, "mode must be one of"):
            raw_pixel_features(self.tracklets, mode="evenly")
        with self.assertRaisesRegex(ValueError, "image_size"):
            raw_pixel_features(self.tracklets, image_size=(0, 4))
        with self.assertRaisesRegex(ValueError, "empty"):
            raw_pixel_features([])


class RawPixelBaselineTest(TestCase):
    def setUp(self):
        super().setUp()
        raw = write_tracklets(self.get_temp_dir(), [3, 5, 2, 4, 6, 1])
        layout = [(1, 0), (2, 0), (1, 1), (2, 1), (0, 0), (2, 2)]
        tracklets = [
            dataclasses.replace(t, pid=p, camid=c, original_pid=p) for t, (p, c) in zip(raw, layout)
        ]
        self.dataset = types.SimpleNamespace(
            name="mars", train=[], query=tracklets[:2], gallery=tracklets[2:]
        )
        self.tracklets = tracklets

    def test_same_ranking_code_as_the_model(self):
        result = raw_pixel_baseline(
            self.dataset, protocol="mixing", image_size=(H, W), mode="dense", seq_len=2
        )
        feats = raw_pixel_features(self.tracklets, image_size=(H, W), mode="dense", seq_len=2)
        pids = np.array([t.pid for t in self.tracklets])
        camids = np.array([t.camid for t in self.tracklets])
        expected = evaluate_ranking(feats[:2], feats, pids[:2], pids, camids[:2], camids)
        self.assertEqual(result.name, "mars/mixing")
        self.assertEqual(result.num_gallery, 6)
        self.assertEqual(result.num_valid_queries, expected.num_valid_queries)
        self.assertAlmostEqual(result.mAP, expected.mAP, places=6)
        np.testing.assert_allclose(result.cmc, expected.cmc)
        np.testing.assert_allclose(result.query_ap, expected.query_ap)

    def test_protocol_object_and_cross_dataset_name(self):
        protocol = get_protocol(self.dataset, "usual")
        a = raw_pixel_baseline(protocol=protocol, image_size=(H, W), seq_len=2)
        b = raw_pixel_baseline(self.dataset, image_size=(H, W), seq_len=2)
        self.assertEqual(a.name, "mars/usual")
        self.assertEqual(a.num_gallery, 4)
        self.assertAlmostEqual(a.mAP, b.mAP, places=7)
        c = raw_pixel_baseline(self.dataset, trained_on="duke", image_size=(H, W), seq_len=2)
        self.assertEqual(c.name, "duke->mars/usual")
        with self.assertRaisesRegex(ValueError, "needs a dataset"):
            raw_pixel_baseline(protocol="usual")
