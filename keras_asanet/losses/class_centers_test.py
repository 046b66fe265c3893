import keras
import numpy as np

from keras_asanet.losses.class_centers import ClassCenters
from keras_asanet.tests.test_case import TestCase


class ClassCentersTest(TestCase):
    def test_layer_battery(self):
        labels = np.array([0, 3, 3, 1, 2, 0], "int32")
        self.run_layer_test(
            ClassCenters,
            {"num_classes": 4, "feature_dim": 5},
            labels,
            expected_output_shape=(6, 5),
            expected_num_trainable_weights=1,
            expected_num_non_trainable_weights=0,
        )

    def test_lookup_and_variable(self):
        init = np.arange(12, dtype="float32").reshape(4, 3)
        layer = ClassCenters(4, 3, centers_initializer=keras.initializers.Constant(init))
        out = layer(np.array([[2], [0], [2]]))
        self.assertAllClose(out, init[[2, 0, 2]])
        self.assertEqual(layer.centers.name, "centers")
        self.assertTrue(layer.centers.path.endswith("/centers"))
        self.assertEqual(tuple(layer.centers.shape), (4, 3))
        self.assertEqual(layer.compute_output_shape((None, 1)), (None, 3))

    def test_default_initializer_is_unit_normal(self):
        layer = ClassCenters(200, 50)
        layer.build()
        values = self.to_numpy(layer.centers)
        self.assertAllClose(values.std(), 1.0, atol=0.05)
        self.assertAllClose(values.mean(), 0.0, atol=0.05)

    def test_invalid_arguments(self):
        for bad in (0, -3, 2.5, True, None):
            with self.assertRaisesRegex(ValueError, "num_classes"):
                ClassCenters(bad, 4)
            with self.assertRaisesRegex(ValueError, "feature_dim"):
                ClassCenters(4, bad)
        with self.assertRaisesRegex(ValueError, "inputs"):
            ClassCenters(4, 3).compute_output_shape((2, 3))
