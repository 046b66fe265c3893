import numpy as np
import pytest

from keras_asanet.data.frame_sampling import dense_chunks, evenly_spaced, restricted_random
from keras_asanet.tests.test_case import TestCase

# Pure numpy / file code: the README's test command runs it under one backend only.
pytestmark = pytest.mark.backend_independent


class FrameSamplingTest(TestCase):
    def test_restricted_random_takes_one_frame_per_chunk(self):
        rng = np.random.default_rng(0)
        seen = set()
        for _ in range(200):
            idx = restricted_random(12, 4, rng)
            self.assertLen(idx, 4)
            for chunk, i in enumerate(idx):  # chunks [0,3) [3,6) [6,9) [9,12)
                self.assertTrue(3 * chunk <= i < 3 * (chunk + 1))
            seen.update(idx.tolist())
        self.assertEqual(seen, set(range(12)))  # every frame can be drawn

    def test_restricted_random_repeats_frames_of_short_tracklets(self):
        idx = restricted_random(2, 6, np.random.default_rng(1))
        self.assertLen(idx, 6)
        self.assertTrue(np.all(np.diff(idx) >= 0))
        self.assertEqual(set(idx.tolist()), {0, 1})

    def test_restricted_random_is_seeded(self):
        a = restricted_random(50, 6, np.random.default_rng(7))
        b = restricted_random(50, 6, np.random.default_rng(7))
        self.assertAllEqual(a, b)

    def test_evenly_spaced(self):
        self.assertAllEqual(evenly_spaced(12, 4), [1, 4, 7, 10])
        self.assertAllEqual(evenly_spaced(3, 6), [0, 0, 1, 1, 2, 2])
        self.assertAllEqual(evenly_spaced(1, 3), [0, 0, 0])

    def test_dense_chunks_cover_every_frame(self):
        chunks = dense_chunks(7, 3)
        self.assertAllEqual(chunks, [[0, 1, 2], [3, 4, 5], [6, 6, 6]])
        self.assertAllEqual(dense_chunks(6, 6), [[0, 1, 2, 3, 4, 5]])

    def test_bad_lengths(self):
        with self.assertRaisesRegex(ValueError, "seq_len"):
            evenly_spaced(5, 0)
        with self.assertRaisesRegex(ValueError, "empty tracklet"):
            dense_chunks(0, 4)
