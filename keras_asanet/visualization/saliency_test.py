"""Grad-CAM on the backend the suite runs on (KERAS_BACKEND): the gradient helper of that
backend (backend_gradients.py) is what is tested."""

import os

import keras
import numpy as np
from PIL import Image

from keras_asanet.tests.test_case import TestCase
from keras_asanet.visualization import grad_cam, grad_cam_maps, plot_model_grad_cams
from keras_asanet.visualization._testing import synthetic_dataset, tiny_asanet

#: Identity head of the planted model: class 0 likes red and dislikes green, class 1 the
#: opposite.
HEAD = np.array([[2.0, -1.0], [-1.0, 2.0]], np.float32)


def _planted_model():
    """Images (8, 8, 3) -> 1x1 conv "features" (channel 0 = red, channel 1 = green, ReLU)
    -> global mean -> identity logits `HEAD`."""
    inputs = keras.Input((8, 8, 3))
    conv = keras.layers.Conv2D(2, 1, use_bias=False, activation="relu", name="features")
    x = conv(inputs)
    dense = keras.layers.Dense(2, use_bias=False, name="logits")
    outputs = dense(keras.layers.GlobalAveragePooling2D()(x))
    model = keras.Model(inputs, outputs)
    kernel = np.zeros((1, 1, 3, 2), np.float32)
    kernel[0, 0, 0, 0] = kernel[0, 0, 1, 1] = 1.0
    conv.kernel.assign(kernel)
    dense.kernel.assign(HEAD)
    return model


def _images():
    """Image 0: a bright red patch (rows 1-2, cols 5-6) and a dim green one (rows 5-6,
    cols 1-2); image 1: the same places, green bright and red dim."""
    x = np.zeros((2, 8, 8, 3), np.float32)
    x[0, 1:3, 5:7, 0], x[0, 5:7, 1:3, 1] = 200.0, 100.0
    x[1, 1:3, 5:7, 0], x[1, 5:7, 1:3, 1] = 100.0, 200.0
    return x


class GradCAMMathTest(TestCase):
    def test_maps_by_hand(self):
        a = np.zeros((1, 2, 2, 2))
        a[0, 0, 0] = [1.0, 0.0]
        a[0, 1, 1] = [0.0, 3.0]
        g = np.zeros_like(a)
        g[0, 0, 0, 0] = 4.0  # channel 0 weight: mean = 1
        g[0, :, :, 1] = -1.0  # channel 1 weight: -1
        # relu(1 * a0 - 1 * a1)
        self.assertAllClose(grad_cam_maps(a, g)[0], [[1.0, 0.0], [0.0, 0.0]])


class GradCAMPlantedTest(TestCase):
    def test_peak_on_the_planted_feature_and_the_analytic_map(self):
        model = _planted_model()
        x = _images()
        cam = grad_cam(model, x, feature="features")
        # Image 0's red patch wins class 0, image 1's green patch class 1.
        self.assertAllEqual(cam.class_index, [0, 1])
        logits = keras.ops.convert_to_numpy(model(x))
        self.assertAllClose(cam.scores, [logits[0, 0], logits[1, 1]], atol=1e-4)
        self.assertEqual(cam.maps.shape, (2, 1, 8, 8))
        # Grad-CAM here is relu(sum_c HEAD[c, k] / 64 * A_c), normalised to a peak of 1.
        features = np.stack([x[..., 0], x[..., 1]], axis=-1)
        for b, k in ((0, 0), (1, 1)):
            expected = np.maximum(features[b] @ HEAD[:, k], 0.0)
            self.assertAllClose(cam.maps[b, 0], expected / expected.max(), atol=1e-5)
            peak = np.unravel_index(cam.maps[b, 0].argmax(), (8, 8))
            inside = (1 <= peak[0] <= 2 and 5 <= peak[1] <= 6) if k == 0 else (
                5 <= peak[0] <= 6 and 1 <= peak[1] <= 2
            )  # fmt: skip
            self.assertTrue(inside, f"image {b}: peak {peak} is not on the planted patch")
        # Explaining the other class moves the map to the other patch.
        other = grad_cam(model, x, class_index=[1, 0], feature="features")
        self.assertAllEqual(other.class_index, [1, 0])
        self.assertEqual(np.unravel_index(other.maps[0, 0].argmax(), (8, 8))[0] >= 5, True)
        self.assertEqual(other.maps[0, 0, 1:3, 5:7].max(), 0.0)  # red is evidence against 1


class ASANetGradCAMTest(TestCase):
    @classmethod
    def setUpClass(cls):
        _, cls.dataset = synthetic_dataset()
        cls.model = tiny_asanet()

    def test_identity_grad_cam_of_tracklets(self):
        from keras_asanet.data.frame_sampling import evenly_spaced
        from keras_asanet.data.image_io import read_frame

        tracklets = self.dataset.query[:2]
        folder = self.get_temp_dir()
        paths = [os.path.join(folder, f"cam{i}.png") for i in range(2)]
        figures = plot_model_grad_cams(
            self.model, tracklets, seq_len=2, image_size=(32, 16), paths=paths
        )
        cam = figures[0].grad_cam
        self.assertEqual(cam.maps.shape, (2, 2, 2, 1))  # (B, T, h, w): the 2x1 backbone grid
        self.assertEqual(cam.feature, "backbone_map")
        # The tap leaves the model's output unchanged: the explained class is the top logit
        # of the compiled prediction, and the score is that logit.
        clips = np.stack(
            [[read_frame(t.frames[i], (32, 16)) for i in evenly_spaced(t.num_frames, 2)]
             for t in tracklets]
        ).astype(np.float32)  # fmt: skip
        self.model.set_inference_outputs("dict")  # compiled predict of the output dict
        try:
            logits = np.asarray(self.model.predict_on_batch(clips)["id_logits"])
        finally:
            self.model.set_inference_outputs("feature")
        self.assertAllEqual(cam.class_index, logits.argmax(axis=1))
        self.assertAllClose(cam.scores, logits[np.arange(2), cam.class_index], atol=1e-4)
        self.assertTrue(np.isfinite(cam.maps).all())
        for b in range(2):
            # Normalised per clip: a peak of 1, or all zeros where no position has positive
            # evidence (possible with random weights).
            self.assertIn(round(float(cam.maps[b].max()), 6), (0.0, 1.0))
            self.assertGreaterEqual(cam.maps[b].min(), 0.0)
            axes = figures[b].axes  # frames row, then the Grad-CAM row
            self.assertLen(axes, 4)
            for t in range(2):
                shown = np.asarray(axes[2 + t].images[1].get_array())
                self.assertAllClose(shown, cam.maps[b, t])
            self.assertIn(f"class {cam.class_index[b]}", figures[b]._suptitle.get_text())
            with Image.open(paths[b]) as image:
                width, height = figures[b].get_size_inches() * figures[b].dpi
                self.assertEqual(image.size, (round(width), round(height)))
        with self.assertRaisesRegex(ValueError, "feature must be one of"):
            grad_cam(self.model, clips, feature="layer2")
