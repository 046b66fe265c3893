"""tf-keras-vis' CAMs (TensorFlow backend only) against the library's own Grad-CAM on one
functional model with a planted answer (saliency_test.py's)."""

import keras
import numpy as np
import pytest

from keras_asanet.tests.test_case import TestCase
from keras_asanet.visualization import grad_cam
from keras_asanet.visualization.saliency_test import _images, _planted_model
from keras_asanet.visualization.tf_keras_vis_cams import tf_keras_vis_cam

#: Where each image's explained class has its evidence (saliency_test._images): rows, cols.
PATCHES = {0: (slice(1, 3), slice(5, 7)), 1: (slice(5, 7), slice(1, 3))}


@pytest.mark.only_backends("tensorflow")
class TfKerasVisCamTest(TestCase):
    def test_gradcam_equals_the_own_grad_cam(self):
        model, x = _planted_model(), _images()
        ours = grad_cam(model, x, class_index=[0, 1], feature="features").maps[:, 0]
        theirs = tf_keras_vis_cam(model, x, [0, 1], "features", method="gradcam")
        self.assertEqual(theirs.shape, (2, 8, 8))
        self.assertAllClose(theirs, ours, atol=1e-5)

    def test_gradcam_plus_plus_and_scorecam_peak_where_the_own_grad_cam_does(self):
        model, x = _planted_model(), _images()
        ours = grad_cam(model, x, class_index=[0, 1], feature="features").maps[:, 0]
        for method in ("gradcam++", "scorecam"):
            maps = tf_keras_vis_cam(model, x, [0, 1], "features", method=method)
            self.assertEqual(maps.shape, (2, 8, 8), method)
            self.assertAllClose(maps.max(axis=(1, 2)), [1.0, 1.0], msg=method)
            for b in (0, 1):
                rows, cols = PATCHES[b]
                for cam in (ours[b], maps[b]):
                    peak = np.unravel_index(cam.argmax(), cam.shape)
                    self.assertTrue(
                        rows.start <= peak[0] < rows.stop and cols.start <= peak[1] < cols.stop,
                        f"{method}, image {b}: peak {peak} is off the planted patch",
                    )

    def test_bad_arguments(self):
        model, x = _planted_model(), _images()
        with self.assertRaisesRegex(ValueError, "method must be one of"):
            tf_keras_vis_cam(model, x, 0, "features", method="smoothgrad")

        class Subclassed(keras.Model):
            def call(self, inputs):
                return model(inputs)

        with self.assertRaisesRegex(ValueError, "functional keras.Model.*grad_cam"):
            tf_keras_vis_cam(Subclassed(), x, 0, "features")


@pytest.mark.only_backends("jax", "torch")
class TfKerasVisOtherBackendTest(TestCase):
    def test_refused_with_the_backend_named(self):
        with self.assertRaisesRegex(
            RuntimeError, f"running backend is '{keras.backend.backend()}'"
        ):
            tf_keras_vis_cam(_planted_model(), _images(), 0, "features")
