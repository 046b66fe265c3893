import os

import keras
import numpy as np

from keras_asanet.models.saving import ModelFileError, check_model_file, load_model, save_model
from keras_asanet.tests.test_case import TestCase


@keras.saving.register_keras_serializable(package="keras_asanet_tests")
class FailingSave(keras.layers.Layer):
    """A layer whose weights cannot be written when `fail` is set (a save cut short, as by a
    full disk or a kill, after Keras has started the archive)."""

    def __init__(self, fail=False, **kwargs):
        super().__init__(**kwargs)
        self.fail = fail

    def build(self, input_shape):
        self.scale = self.add_weight(shape=(input_shape[-1],), initializer="ones")

    def call(self, x):
        return x * self.scale

    def save_own_variables(self, store):
        if self.fail:
            raise OSError("No space left on device")
        super().save_own_variables(store)

    def get_config(self):
        return {**super().get_config(), "fail": self.fail}


def _model(fail=False):
    inputs = keras.Input((3,))
    return keras.Model(inputs, FailingSave(fail)(keras.layers.Dense(4)(inputs)))


class SavingTest(TestCase):
    def setUp(self):
        super().setUp()
        self.tmp = self.get_temp_dir()
        self.path = os.path.join(self.tmp, "model.keras")

    def test_round_trip(self):
        model = _model()
        save_model(model, self.path)
        self.assertEqual(os.listdir(self.tmp), ["model.keras"])
        restored = load_model(self.path)
        x = np.ones((2, 3), "float32")
        self.assertAllClose(restored.predict(x, verbose=0), model.predict(x, verbose=0))

    def test_truncated_or_foreign_files_are_named(self):
        save_model(_model(), self.path)
        with open(self.path, "rb") as f:
            data = f.read()
        cut = os.path.join(self.tmp, "cut.keras")
        with open(cut, "wb") as f:
            f.write(data[: len(data) // 2])
        # Keras itself says "File not found" for this file.
        with self.assertRaisesRegex(ModelFileError, f"{cut!r} is truncated or not a .keras"):
            load_model(cut)
        text = os.path.join(self.tmp, "notes.keras")
        with open(text, "w") as f:
            f.write("not a model")
        with self.assertRaisesRegex(ModelFileError, "not a zip archive"):
            check_model_file(text)
        with self.assertRaisesRegex(ModelFileError, "does not exist"):
            load_model(os.path.join(self.tmp, "missing.keras"))

    def test_interrupted_save_keeps_the_previous_file(self):
        save_model(_model(), self.path)
        with open(self.path, "rb") as f:
            before = f.read()
        with self.assertRaisesRegex(OSError, "No space left"):
            save_model(_model(fail=True), self.path)
        with open(self.path, "rb") as f:
            self.assertEqual(f.read(), before)
        self.assertEqual(os.listdir(self.tmp), ["model.keras"])  # no temporary file left
        check_model_file(self.path)
        # What keras' in-place save leaves after the same failure: refused by name.
        in_place = os.path.join(self.tmp, "in_place.keras")
        with self.assertRaises(OSError):
            _model(fail=True).save(in_place)
        with self.assertRaisesRegex(ModelFileError, "no model.weights file"):
            check_model_file(in_place)
