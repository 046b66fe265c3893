import io
import os
import zipfile

import h5py
import keras
import numpy as np

import keras_asanet  # noqa: F401 - registers the classes plain keras loading needs
from keras_asanet.models.asanet_test import tiny_model
from keras_asanet.models.saved_layouts import CENTERS_PATH, LEGACY_CENTERS_PATH
from keras_asanet.tests.test_case import TestCase

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
#: A trained model written before the centres moved into the model: a real old file (the
#: tutorials' model until December 2026, see tests/fixtures/README.md).
LEGACY_ASSET = os.path.join(ROOT, "tests", "fixtures", "asanet_tiny_legacy_centres_layout.keras")


def _built(**kwargs):
    model = tiny_model(**kwargs)
    model.build((None, 2, 32, 16, 3))
    return model


def _weights_h5(keras_file):
    """The `model.weights.h5` inside a `.keras` archive, opened read-only in memory."""
    with zipfile.ZipFile(keras_file) as archive:
        return h5py.File(io.BytesIO(archive.read("model.weights.h5")), "r")


class SavedLayoutsTest(TestCase):
    def test_a_model_of_the_old_layout_loads_with_its_centres(self):
        with _weights_h5(LEGACY_ASSET) as f:
            self.assertIn(LEGACY_CENTERS_PATH, f)  # the asset really is of the old layout
            self.assertNotIn(CENTERS_PATH, f)
            saved = f[f"{LEGACY_CENTERS_PATH}/vars/0"][()]
        model = keras.saving.load_model(LEGACY_ASSET)
        self.assertAllClose(model.class_centers.centers, saved)
        self.assertEqual(model.class_centers.centers.path, "center_loss_centers/centers")
        # Written again, the file has today's layout, and reads back the same.
        path = os.path.join(self.get_temp_dir(), "again.keras")
        model.save(path)
        with _weights_h5(path) as f:
            self.assertNotIn("center_loss", f)
            self.assertAllClose(f[f"{CENTERS_PATH}/vars/0"][()], saved)
        again = keras.saving.load_model(path)
        self.assertAllClose(again.class_centers.centers, saved)
        clip = np.random.default_rng(0).uniform(0, 255, (1, 2, 64, 32, 3)).astype("float32")
        self.assertAllClose(again.predict(clip, verbose=0), model.predict(clip, verbose=0))

    def _legacy_weights_file(self, model):
        """`model`'s weights as a `.weights.h5` of the old layout (an old run's checkpoint)."""
        path = os.path.join(self.get_temp_dir(), "old.weights.h5")
        model.save_weights(path)
        with h5py.File(path, "a") as f:
            f.create_group("center_loss")
            f.move(CENTERS_PATH, LEGACY_CENTERS_PATH)
        return path

    def test_an_old_checkpoint_restores_the_centres(self):
        source = _built()
        path = self._legacy_weights_file(source)
        target = _built()
        before = self.to_numpy(target.class_centers.centers)
        self.assertFalse(np.allclose(before, self.to_numpy(source.class_centers.centers)))
        target.load_weights(path)
        self.assertAllClose(target.class_centers.centers, source.class_centers.centers)
        # The next load of today's layout is a real load again, not skipped.
        path = os.path.join(self.get_temp_dir(), "new.weights.h5")
        _built().save_weights(path)
        target.load_weights(path)
        with h5py.File(path, "r") as f:
            self.assertAllClose(target.class_centers.centers, f[f"{CENTERS_PATH}/vars/0"][()])

    def test_a_damaged_or_mismatched_old_file_is_refused(self):
        path = self._legacy_weights_file(_built())
        with self.assertRaisesRegex(ValueError, r"shape \(3, \d+\).*\(5, \d+\)"):
            _built(num_identities=5).load_weights(path)
        with h5py.File(path, "a") as f:
            del f[f"{LEGACY_CENTERS_PATH}/vars/0"]
        with self.assertRaisesRegex(ValueError, "damaged"):
            _built().load_weights(path)
