import os

import keras
import numpy as np

from keras_asanet.losses.center_loss import CenterLoss, center_loss
from keras_asanet.losses.class_centers import ClassCenters
from keras_asanet.tests.test_case import TestCase, compute_gradients


def _pk_batch(p=3, k=4, dim=6, seed=0):
    rng = np.random.default_rng(seed)
    pids = np.repeat(np.arange(p), k)[rng.permutation(p * k)]
    return pids, rng.normal(size=(p * k, dim)).astype("float32")


def _np_center(pids, features, centers):
    """AGW's CenterLoss: masked distance matrix, clamped, summed, divided by the batch size
    (without the (M - 1) * 1e-12 the clamp adds for masked-out entries)."""
    out = 0.0
    for i, y in enumerate(pids):
        d = float(np.sum((features[i].astype("float64") - centers[y]) ** 2))
        out += min(max(d, 1e-12), 1e12)
    return out / len(pids)


@keras.saving.register_keras_serializable(package="keras_asanet_test")
class CenterTestModel(keras.Model):
    """A tiny subclassed model wired as the CenterLoss docstring says."""

    def __init__(self, num_classes=3, dim=4, **kwargs):
        super().__init__(**kwargs)
        self.num_classes, self.dim = num_classes, dim
        self.dense = keras.layers.Dense(dim)
        self.center_loss = CenterLoss(num_classes, dim)
        self.class_centers = self.center_loss.centers_layer

    def call(self, x):
        return self.dense(x)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        return self.center_loss(y, y_pred)

    def get_config(self):
        return {"num_classes": self.num_classes, "dim": self.dim, "name": self.name}


class CenterLossTest(TestCase):
    def test_matches_numpy_oracle(self):
        pids, f = _pk_batch()
        loss = CenterLoss(num_classes=3, feature_dim=6)
        centers = self.to_numpy(loss.centers)
        self.assertAllClose(loss(pids, f), _np_center(pids, f, centers), atol=1e-5)
        self.assertAllClose(
            center_loss(pids[:, None], f, centers),
            [_np_center([y], f[i : i + 1], centers) for i, y in enumerate(pids)],
            atol=1e-5,
        )

    def test_hand_computed_with_zero_centres(self):
        loss = CenterLoss(2, 2, centers_initializer="zeros")
        f = np.array([[3.0, 4.0], [1.0, 0.0]], "float32")
        self.assertAllClose(loss(np.array([1, 0]), f), (25.0 + 1.0) / 2)

    def test_gradients_to_features_and_centres(self):
        pids, f = _pk_batch()
        loss = CenterLoss(3, 6)
        feats = keras.Variable(f)
        g_f, g_c = compute_gradients(lambda: loss(pids, feats), [feats, loss.centers])
        c = self.to_numpy(loss.centers)
        diff = f - c[pids]
        self.assertAllClose(g_f, 2.0 * diff / 12, atol=1e-5)
        expected_c = np.zeros_like(c)
        np.add.at(expected_c, pids, -2.0 * diff / 12)
        self.assertAllClose(g_c, expected_c, atol=1e-5)

    def test_features_on_their_centres(self):
        # Distance 0 is clamped to 1e-12: value 1e-12, gradients finite (zero).
        loss = CenterLoss(3, 6, centers_initializer="ones")
        feats = keras.Variable(np.ones((4, 6), "float32"))
        pids = np.array([0, 1, 2, 2])
        self.assertAllClose(loss(pids, feats), 1e-12, atol=1e-15)
        grads = compute_gradients(lambda: loss(pids, feats), [feats, loss.centers])
        for g in grads:
            self.assertTrue(np.all(np.isfinite(self.to_numpy(g))))

    def test_centres_variable_name_path_and_layer(self):
        loss = CenterLoss(5, 3, name="cent")
        self.assertIsInstance(loss.centers_layer, ClassCenters)
        self.assertEqual(loss.centers.name, "centers")
        self.assertEqual(loss.centers.path, "cent_centers/centers")
        self.assertTrue(loss.centers.trainable)
        self.assertEqual((loss.num_classes, loss.feature_dim), (5, 3))

    def test_model_trains_and_saves_the_centres(self):
        pids, f = _pk_batch(dim=5)
        model = CenterTestModel(num_classes=3, dim=4)
        model(f)
        paths = [v.path for v in model.trainable_variables]
        self.assertIn(model.center_loss.centers.path, paths)
        before = self.to_numpy(model.center_loss.centers).copy()
        model.compile(optimizer=keras.optimizers.SGD(0.1))
        model.fit(f, pids, batch_size=12, epochs=1, verbose=0)
        after = self.to_numpy(model.center_loss.centers)
        # Only the rows of the classes in the batch move (here all three).
        self.assertGreater(np.abs(after - before).min(axis=1).min(), 0.0)
        path = os.path.join(self.get_temp_dir(), "centers.keras")
        model.save(path)
        restored = keras.saving.load_model(path)
        self.assertAllClose(restored.center_loss.centers, after)
        self.assertAllClose(
            restored.center_loss(pids, restored(f)), model.center_loss(pids, model(f))
        )

    def test_invalid_arguments(self):
        with self.assertRaisesRegex(ValueError, "num_classes"):
            CenterLoss(0, 4)
        with self.assertRaisesRegex(ValueError, "feature_dim"):
            CenterLoss(4, -1)
        loss = CenterLoss(3, 6)
        pids, f = _pk_batch(dim=5)
        with self.assertRaisesRegex(ValueError, "feature_dim"):
            loss(pids, f)
        with self.assertRaisesRegex(ValueError, "batch size"):
            center_loss(pids[:3], np.zeros((12, 6)), np.zeros((3, 6)))
        for low, high in ((-1.0, 1e12), (1.0, 0.5)):
            with self.assertRaisesRegex(ValueError, f"clip_min={low!r}, clip_max={high!r}"):
                center_loss(pids, np.zeros((12, 6)), np.zeros((3, 6)), low, high)

    def test_serialization(self):
        loss = CenterLoss(7, 3, centers_initializer="zeros", name="cl")
        revived = self.run_serialization_test(loss)
        self.assertEqual((revived.num_classes, revived.feature_dim), (7, 3))
        self.assertAllClose(revived.centers, np.zeros((7, 3)))
        # The config holds no centre values: a default-initialised loss gets fresh centres.
        fresh = CenterLoss.from_config(CenterLoss(7, 3).get_config())
        self.assertEqual(tuple(fresh.centers.shape), (7, 3))

    def test_half_precision_features(self):
        pids, f = _pk_batch()
        loss = CenterLoss(3, 6)
        out = loss(pids, f.astype("float16"))
        self.assertEqual(keras.backend.standardize_dtype(out.dtype), "float32")
        c = self.to_numpy(loss.centers)
        self.assertAllClose(out, _np_center(pids, f.astype("float16"), c), atol=1e-4)
