import collections

import numpy as np
import pytest

from keras_asanet.data.samplers import PKSampler
from keras_asanet.tests.test_case import TestCase

# Pure numpy / file code: the README's test command runs it under one backend only.
pytestmark = pytest.mark.backend_independent


class PKSamplerTest(TestCase):
    def setUp(self):
        super().setUp()
        # 5 identities with 1, 2, 4, 6, 3 tracklets.
        self.pids = np.repeat(np.arange(5), [1, 2, 4, 6, 3])

    def test_batches_are_p_by_k_and_visit_every_identity(self):
        sampler = PKSampler(self.pids, num_identities=2, num_instances=4, seed=0)
        batches = sampler.epoch_batches()
        self.assertLen(batches, 3)  # ceil(5 / 2)
        visited = set()
        for batch in batches:
            self.assertLen(batch, 8)
            ids = self.pids[batch].reshape(2, 4)
            self.assertTrue(np.all(ids == ids[:, :1]))  # K consecutive of one identity
            self.assertNotEqual(ids[0, 0], ids[1, 0])  # P distinct identities
            visited.update(ids[:, 0].tolist())
        self.assertEqual(visited, set(range(5)))

    def test_without_replacement_when_enough_tracklets(self):
        sampler = PKSampler(self.pids, num_identities=5, num_instances=3, seed=1)
        for batch in sampler.epoch_batches():
            per_id = collections.defaultdict(list)
            for i in batch:
                per_id[self.pids[i]].append(i)
            for pid, members in per_id.items():
                if (self.pids == pid).sum() >= 3:
                    self.assertLen(set(members), 3)
                else:
                    self.assertTrue(set(members) <= set(np.flatnonzero(self.pids == pid)))

    def test_deterministic_and_resumable(self):
        a = PKSampler(self.pids, 2, 2, seed=5)
        b = PKSampler(self.pids, 2, 2, seed=5)
        a.epoch = 3
        b.set_state(a.get_state())
        self.assertEqual(a.epoch_batches(), b.epoch_batches())
        self.assertNotEqual(a.epoch_batches(0), a.epoch_batches(1))

    def test_p_larger_than_identities(self):
        with self.assertRaisesRegex(ValueError, "only 5 identities"):
            PKSampler(self.pids, num_identities=6, num_instances=2)

    def test_bad_arguments(self):
        with self.assertRaisesRegex(ValueError, "must be >= 1"):
            PKSampler(self.pids, num_identities=2, num_instances=0)
        with self.assertRaisesRegex(ValueError, "non-empty"):
            PKSampler([], 1, 1)
        with self.assertRaisesRegex(ValueError, "integers"):
            PKSampler([0.5, 1.5], 1, 1)

    def test_degenerate_batches_are_refused(self):
        # K = 1: no positive pair; P = 1: no negative; both: batch norm over one clip.
        with self.assertRaisesRegex(ValueError, "K = 1 .* no positive pair"):
            PKSampler(self.pids, num_identities=2, num_instances=1)
        with self.assertRaisesRegex(ValueError, "P = 1 .* no negative"):
            PKSampler(self.pids, num_identities=1, num_instances=4)
        with self.assertRaisesRegex(ValueError, "K = 1"):
            PKSampler(self.pids, num_identities=1, num_instances=1)
