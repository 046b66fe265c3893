import os

import pytest

from keras_asanet.data import default_synthetic_root
from keras_asanet.evaluation.unseen_synthetic import unseen_synthetic
from keras_asanet.tests.test_case import TestCase
from keras_asanet.training.runner import RunConfig

# Pure numpy / file code: the README's test command runs it under one backend only.
pytestmark = pytest.mark.backend_independent


class UnseenSyntheticTest(TestCase):
    def test_defaults_come_from_the_training_run_then_the_training_defaults(self):
        plan = unseen_synthetic({}, cache_dir="/cache")
        self.assertEqual(plan.seed, RunConfig.heldout_seed)
        self.assertEqual(plan.identities, RunConfig.heldout_identities)
        self.assertEqual(plan.image_size, tuple(RunConfig.image_size))
        self.assertEqual(
            plan.root,
            default_synthetic_root(
                RunConfig.heldout_identities, RunConfig.image_size, 1000, base="/cache"
            ),
        )
        self.assertIsNone(plan.warning)
        run = {"dataset": "synthetic", "dataset_seed": 0, "synthetic_identities": 40}
        plan = unseen_synthetic(run, seed=7, image_size=(32, 16), cache_dir="/cache")
        self.assertEqual((plan.seed, plan.identities, plan.image_size), (7, 40, (32, 16)))
        self.assertEqual(plan.root, default_synthetic_root(40, (32, 16), 7, base="/cache"))
        self.assertIn("(40 identities, 32x16)", plan.describe())
        self.assertEqual(unseen_synthetic(run, identities=12, cache_dir="/c").identities, 12)
        # A run that trained on more identities than it was scored on: its held-out size wins.
        run = {**run, "synthetic_identities": 600, "heldout_identities": 300}
        self.assertEqual(unseen_synthetic(run, seed=7, cache_dir="/c").identities, 300)

    def test_the_training_seed_is_flagged(self):
        run = {"dataset": "synthetic", "dataset_seed": 3}
        self.assertIn("trained on synthetic seed 3", unseen_synthetic(run, seed=3).warning)
        self.assertIsNone(unseen_synthetic(run, seed=4).warning)
        # Runs older than the separate dataset seed trained on their training seed.
        self.assertIn("seed 5", unseen_synthetic({"dataset": "synthetic", "seed": 5}, 5).warning)
        self.assertIsNone(unseen_synthetic({"dataset": "mars", "dataset_seed": 3}, 3).warning)

    def test_build_writes_the_dataset_once(self):
        plan = unseen_synthetic(
            {}, seed=2, identities=8, image_size=(32, 16), cache_dir=self.get_temp_dir()
        )
        root = plan.build()
        self.assertEqual(root, plan.root)
        info = os.path.join(root, "synthetic_info.json")
        stamp = os.path.getmtime(info)
        self.assertEqual(plan.build(), root)
        self.assertEqual(os.path.getmtime(info), stamp)
