import numpy as np
from keras import ops

from keras_asanet.layers.bn_neck import BNNeck
from keras_asanet.tests.test_case import TestCase


def to_np(v):
    return np.asarray(ops.convert_to_numpy(v), np.float64)


def numpy_nest(x):
    """Tensors -> numpy arrays, tuples -> lists (see `BNNeckTest.assertAllClose`)."""
    if isinstance(x, (list, tuple)):
        return [numpy_nest(item) for item in x]
    return np.asarray(ops.convert_to_numpy(x))


def bn_neck_oracle(layer, x, training):
    bn = layer.batch_norm
    x = x.astype(np.float64)
    if training:
        mean, var = x.mean(axis=0), x.var(axis=0)
    else:
        mean, var = to_np(bn.moving_mean), to_np(bn.moving_variance)
    feature = to_np(bn.gamma) * (x - mean) / np.sqrt(var + layer.epsilon)
    if layer.classifier is None:
        return feature
    return feature, feature @ to_np(layer.classifier.kernel)


class BNNeckTest(TestCase):
    def assertAllClose(self, actual, expected, **kwargs):
        # Local workaround: the shared functional/saving checks compare `model(x)` (a tuple for
        # a two-output layer) with `model.predict(x)` (a list), and the shared `_to_numpy`
        # calls `np.asarray` on tuples of torch tensors that require grad. Normalise first.
        super().assertAllClose(numpy_nest(actual), numpy_nest(expected), **kwargs)

    def setUp(self):
        super().setUp()
        self.x = np.random.RandomState(0).randn(4, 8).astype("float32")

    def test_layer_behaviors(self):
        self.run_layer_test(
            BNNeck,
            init_kwargs={"num_classes": 5},
            input_data=self.x,
            expected_output_shape=((4, 8), (4, 5)),
            # BN gamma (no beta: center=False) and the bias-free classifier kernel.
            expected_num_trainable_weights=2,
            expected_num_non_trainable_weights=2,
        )

    def test_layer_behaviors_without_classifier(self):
        self.run_layer_test(
            BNNeck,
            init_kwargs={"num_classes": None},
            input_data=self.x,
            expected_output_shape=(4, 8),
            expected_num_trainable_weights=1,
            expected_num_non_trainable_weights=2,
        )
        # num_classes=0 means the same: only the BN feature comes back.
        layer = BNNeck(num_classes=0)
        out = layer(self.x)
        self.assertEqual(tuple(out.shape), (4, 8))
        self.assertIsNone(layer.classifier)

    def test_structure(self):
        layer = BNNeck(num_classes=5)
        layer(self.x)
        self.assertFalse(layer.batch_norm.center)
        self.assertIsNone(layer.batch_norm.beta)
        self.assertFalse(layer.classifier.use_bias)
        self.assertEqual(tuple(layer.classifier.kernel.shape), (8, 5))
        # BoT/AGW initialisation: N(0, 0.001) classifier.
        self.assertLess(float(np.std(to_np(layer.classifier.kernel))), 0.005)
        self.assertEqual(BNNeck(num_classes=0).get_config()["num_classes"], None)

    def test_numpy_oracle(self):
        rng = np.random.RandomState(1)
        layer = BNNeck(num_classes=5, kernel_initializer="glorot_uniform")
        layer(self.x)
        bn = layer.batch_norm
        bn.gamma.assign(rng.uniform(0.5, 1.5, 8).astype("float32"))
        bn.moving_mean.assign(rng.normal(0.0, 0.5, 8).astype("float32"))
        bn.moving_variance.assign(rng.uniform(0.5, 2.0, 8).astype("float32"))
        for training in (False, True):
            expected = bn_neck_oracle(layer, self.x, training)
            self.assertAllClose(layer(self.x, training=training), expected, atol=1e-5, rtol=1e-5)

    def test_training_updates_moving_statistics_with_momentum(self):
        layer = BNNeck(num_classes=None, momentum=0.9)
        layer(self.x, training=True)
        # Keras convention: moving = momentum * moving + (1 - momentum) * batch, from 0 / 1.
        self.assertAllClose(layer.batch_norm.moving_mean, 0.1 * self.x.mean(0), atol=1e-6)
        self.assertAllClose(
            layer.batch_norm.moving_variance, 0.9 + 0.1 * self.x.var(0), atol=1e-5, rtol=1e-5
        )

    def test_bad_arguments(self):
        with self.assertRaisesRegex(ValueError, "num_classes=-3"):
            BNNeck(num_classes=-3)
        with self.assertRaisesRegex(ValueError, "num_classes='625'"):
            BNNeck(num_classes="625")

    def test_wrong_rank(self):
        with self.assertRaisesRegex(ValueError, "rank 2"):
            BNNeck(num_classes=3)(np.ones((2, 4, 8), "float32"))
