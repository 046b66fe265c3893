import dataclasses
import types

import numpy as np

from keras_asanet.evaluation.feature_extraction import extract_features
from keras_asanet.evaluation.feature_extraction_test import (
    H,
    W,
    decode,
    numpy_model,
    write_tracklets,
)
from keras_asanet.evaluation.protocols import get_protocol
from keras_asanet.evaluation.ranking import evaluate_ranking
from keras_asanet.evaluation.raw_pixels import (
    RawPixelSums,
    raw_pixel_baseline,
    raw_pixel_features,
)
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


class RawPixelSumsTest(TestCase):
    """The baseline described from the frames a model's extraction decodes."""

    def setUp(self):
        super().setUp()
        self.tracklets = write_tracklets(self.get_temp_dir(), [5, 2, 3, 7, 1])

    def test_from_extraction_equals_raw_pixel_features_to_the_bit(self):
        # Model frames at the files' own size and resized; the baseline's resized and not;
        # dense (the last frame repeated) and sampled; batches splitting tracklets.
        cases = [
            ("dense", 2, (H, W), (4, 3), 3),
            ("dense", 3, (4, 4), (H, W), 2),
            ("sampled", 4, (H, W), (4, 3), 2),
            ("dense", 2, (H, W), (H, W), 64),
        ]
        for mode, seq_len, model_size, size, batch in cases:
            msg = f"{mode} T={seq_len} model {model_size} baseline {size} batch {batch}"
            sums = RawPixelSums(len(self.tracklets), size)
            extract_features(
                numpy_model,
                self.tracklets,
                mode=mode,
                seq_len=seq_len,
                batch_size=batch,
                image_size=model_size,
                verbose=False,
                flip=True,
                raw_pixels=sums,
            )
            for normalize in (True, False):
                expected = raw_pixel_features(
                    self.tracklets, size, mode=mode, seq_len=seq_len, normalize=normalize
                )
                self.assertAllEqual(sums.features(normalize=normalize), expected, msg=msg)

    def test_extraction_results_do_not_change(self):
        plain = extract_features(numpy_model, self.tracklets, seq_len=2, verbose=False)
        sums = RawPixelSums(len(self.tracklets), (4, 3))
        shared = extract_features(
            numpy_model, self.tracklets, seq_len=2, verbose=False, raw_pixels=sums
        )
        self.assertAllEqual(shared.features, plain.features)

    def test_bad_use(self):
        sums = RawPixelSums(2, (4, 3))
        with self.assertRaisesRegex(ValueError, "got a frame of shape"):
            sums.add(0, np.zeros((3, 4, 3), np.uint8))
        sums.add(0, np.zeros((4, 3, 3), np.uint8))
        with self.assertRaisesRegex(ValueError, r"No frame was added for tracklets \[1\]"):
            sums.features()
        with self.assertRaisesRegex(ValueError, "describes 2 tracklets; there are 5"):
            extract_features(numpy_model, self.tracklets, verbose=False, raw_pixels=sums)


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
