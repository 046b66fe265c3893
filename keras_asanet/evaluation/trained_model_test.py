import json
import os
import types

import pytest

from keras_asanet.evaluation import trained_model
from keras_asanet.tests.test_case import TestCase

# Pure numpy / file code: the README's test command runs it under one backend only.
pytestmark = pytest.mark.backend_independent


def _dataset(*pids):
    return types.SimpleNamespace(train=[types.SimpleNamespace(pid=p) for p in pids])


class _Model:
    """A stand-in model: its class count as an attribute, in its config, or nowhere."""

    def __init__(self, attr=None, config=None, input_shape=None, build_shape=None):
        if attr is not None:
            self.num_identities = attr
        self._config = config
        self._input_shape = input_shape
        self._build_shape = build_shape

    def get_config(self):
        if self._config is None:
            raise NotImplementedError
        return self._config

    @property
    def input_shape(self):
        if self._input_shape is None:
            raise AttributeError("not built")
        return self._input_shape

    def get_build_config(self):
        return {"input_shape": self._build_shape}


class TrainedModelTest(TestCase):
    def test_model_num_classes(self):
        self.assertEqual(trained_model.model_num_classes(_Model(attr=7)), 7)
        self.assertEqual(trained_model.model_num_classes(_Model(config={"num_classes": 5})), 5)
        self.assertIsNone(trained_model.model_num_classes(_Model(config={"num_identities": 0})))
        self.assertIsNone(trained_model.model_num_classes(_Model(config={"num_classes": True})))
        self.assertIsNone(trained_model.model_num_classes(_Model()))

    def test_class_count_check(self):
        dataset = _dataset(0, 0, 1, 2)  # three training identities
        trained_model.check_identity_classes(_Model(attr=3), dataset, "mars")
        trained_model.check_identity_classes(_Model(), dataset, "mars")  # count unknown: passes
        with self.assertRaisesRegex(
            trained_model.ClassCountMismatch,
            r"has 702 identity classes \(that is the class count of duke\) but the mars "
            r"training split has 3 identities: it was not trained on mars\.",
        ):
            trained_model.check_identity_classes(_Model(attr=702), dataset, "mars")
        with self.assertRaisesRegex(
            trained_model.ClassCountMismatch, r"has 4 identity classes but"
        ):
            trained_model.check_identity_classes(_Model(attr=4), dataset, "mars")
        # Without a training split, the published count of the dataset is the reference.
        no_train = types.SimpleNamespace(train=[])
        trained_model.check_identity_classes(_Model(attr=625), no_train, "mars")
        with self.assertRaisesRegex(trained_model.ClassCountMismatch, "training split has 625"):
            trained_model.check_identity_classes(_Model(attr=626), no_train, "mars")
        trained_model.check_identity_classes(_Model(attr=626), no_train, "other")

    def test_run_config_beside_the_checkpoint(self):
        folder = self.get_temp_dir()
        weights = os.path.join(folder, "model.keras")
        self.assertEqual(trained_model.training_run_config(weights), {})
        with open(os.path.join(folder, "results.json"), "w") as f:
            f.write("{not json")
        self.assertEqual(trained_model.training_run_config(weights), {})
        with open(os.path.join(folder, "results.json"), "w") as f:
            json.dump({"config": {"seq_len": 2, "image_size": [64, 32]}}, f)
        self.assertEqual(
            trained_model.training_run_config(weights), {"seq_len": 2, "image_size": [64, 32]}
        )

    def test_image_size_sources_in_order(self):
        run = {"image_size": [64, 32]}
        fixed = _Model(input_shape=(None, 4, 48, 24, 3), build_shape=[None, 4, 16, 8, 3])
        self.assertEqual(
            trained_model.training_image_size(fixed, run), ((48, 24), "the model's input size")
        )
        built = _Model(build_shape=[None, 4, 16, 8, 3])
        self.assertEqual(
            trained_model.training_image_size(built, run),
            ((64, 32), "the training run's results.json"),
        )
        self.assertEqual(
            trained_model.training_image_size(built, {"image_size": [0, 32]}),
            ((16, 8), "the size the model was built for"),
        )
        self.assertEqual(trained_model.training_image_size(_Model(), {}), (None, None))

    def test_seq_len(self):
        self.assertEqual(trained_model.training_seq_len({"seq_len": 4}, 2), 2)
        self.assertEqual(trained_model.training_seq_len({"seq_len": 4}), 4)
        self.assertEqual(trained_model.training_seq_len({"seq_len": 0}), 6)
        self.assertEqual(trained_model.training_seq_len({}), trained_model.DEFAULT_SEQ_LEN)
        with self.assertRaisesRegex(ValueError, "seq_len must be >= 1"):
            trained_model.training_seq_len({"seq_len": 4}, 0)  # 0 is not "unset"

    def test_eval_batch_size(self):
        self.assertEqual(trained_model.training_eval_batch_size({"eval_batch_size": 128}, 8), 8)
        self.assertEqual(trained_model.training_eval_batch_size({"eval_batch_size": 128}), 128)
        self.assertEqual(trained_model.training_eval_batch_size({"eval_batch_size": 0}), 32)
        self.assertEqual(trained_model.training_eval_batch_size({}), 32)
        with self.assertRaisesRegex(ValueError, "batch_size must be >= 1"):
            trained_model.training_eval_batch_size({}, 0)

    def test_flip_test(self):
        self.assertTrue(trained_model.training_flip_test({"flip_test": True}))
        self.assertFalse(trained_model.training_flip_test({"flip_test": True}, False))
        self.assertTrue(trained_model.training_flip_test({}, True))
        # Runs written before the setting, and checkpoints without a run: scored unflipped.
        self.assertFalse(trained_model.training_flip_test({}))
        self.assertFalse(trained_model.training_flip_test({"flip_test": "yes"}))
