import numpy as np
from keras import ops

from keras_asanet.layers.attribute_head import AttributeHead
from keras_asanet.tests.test_case import TestCase


def randomize_batch_norm(bn, rng):
    """Non-trivial BN parameters and moving statistics, so the oracle checks them."""
    dim = bn.gamma.shape[0]
    bn.gamma.assign(rng.uniform(0.5, 1.5, dim).astype("float32"))
    bn.beta.assign(rng.normal(0.0, 0.5, dim).astype("float32"))
    bn.moving_mean.assign(rng.normal(0.0, 0.5, dim).astype("float32"))
    bn.moving_variance.assign(rng.uniform(0.5, 2.0, dim).astype("float32"))


def head_oracle(layer, x, training, activation=lambda z: np.maximum(z, 0.0)):
    w2 = np.asarray(ops.convert_to_numpy(layer.hidden_dense.kernel), np.float64)
    bn = layer.batch_norm
    gamma, beta = (
        np.asarray(ops.convert_to_numpy(bn.gamma)),
        np.asarray(ops.convert_to_numpy(bn.beta)),
    )
    h = x.astype(np.float64) @ w2
    if training:
        mean, var = h.mean(axis=0), h.var(axis=0)
    else:
        mean, var = (
            np.asarray(ops.convert_to_numpy(bn.moving_mean)),
            np.asarray(ops.convert_to_numpy(bn.moving_variance)),
        )
    h = gamma * (h - mean) / np.sqrt(var + layer.epsilon) + beta
    h = activation(h)
    w1 = np.asarray(ops.convert_to_numpy(layer.output_dense.kernel))
    b1 = np.asarray(ops.convert_to_numpy(layer.output_dense.bias))
    return h @ w1 + b1


class AttributeHeadTest(TestCase):
    def setUp(self):
        super().setUp()
        self.x = np.random.RandomState(0).randn(4, 8).astype("float32")

    def test_layer_behaviors(self):
        self.run_layer_test(
            AttributeHead,
            init_kwargs={"num_outputs": 5, "hidden_dim": 6},
            input_data=self.x,
            expected_output_shape=(4, 5),
            # W2 kernel, BN gamma/beta, W1 kernel/bias; BN moving mean/variance.
            expected_num_trainable_weights=5,
            expected_num_non_trainable_weights=2,
        )

    def test_activation_config_round_trip_and_oracle(self):
        layer = AttributeHead(num_outputs=3, activation="tanh")
        layer(self.x)
        revived = self.run_serialization_test(layer)
        self.assertEqual(revived.get_config()["activation"], "tanh")
        expected = head_oracle(layer, self.x, False, activation=np.tanh)
        self.assertAllClose(layer(self.x), expected, atol=1e-5, rtol=1e-5)

    def test_default_hidden_dim_is_input_width(self):
        layer = AttributeHead(num_outputs=3)
        layer(self.x)
        self.assertEqual(tuple(layer.hidden_dense.kernel.shape), (8, 8))
        self.assertEqual(tuple(layer.output_dense.kernel.shape), (8, 3))
        self.assertIsNone(getattr(layer.hidden_dense, "bias", None))

    def test_numpy_oracle_inference_and_training(self):
        rng = np.random.RandomState(1)
        layer = AttributeHead(num_outputs=5, hidden_dim=6)
        layer(self.x)
        randomize_batch_norm(layer.batch_norm, rng)
        layer.output_dense.bias.assign(rng.normal(size=5).astype("float32"))
        self.assertAllClose(
            layer(self.x, training=False), head_oracle(layer, self.x, False), atol=1e-5
        )
        # Training mode normalises with the batch statistics.
        expected_train = head_oracle(layer, self.x, True)
        self.assertAllClose(layer(self.x, training=True), expected_train, atol=1e-5, rtol=1e-5)

    def test_outputs_are_logits_not_probabilities(self):
        layer = AttributeHead(num_outputs=4, activation="linear")
        layer(self.x)
        layer.output_dense.bias.assign(np.array([-5.0, 5.0, 0.0, 10.0], "float32"))
        out = layer(np.zeros((2, 8), "float32"), training=False)
        # Zero input -> BN(0) = beta = 0 -> W1 . 0 + b = b exactly.
        self.assertAllClose(out, np.tile([[-5.0, 5.0, 0.0, 10.0]], (2, 1)), atol=1e-6)

    def test_bad_arguments(self):
        with self.assertRaisesRegex(ValueError, "num_outputs=0"):
            AttributeHead(num_outputs=0)
        with self.assertRaisesRegex(ValueError, "hidden_dim=-2"):
            AttributeHead(num_outputs=3, hidden_dim=-2)
        with self.assertRaisesRegex(ValueError, "num_outputs=2.5"):
            AttributeHead(num_outputs=2.5)

    def test_wrong_rank(self):
        with self.assertRaisesRegex(ValueError, "rank 2"):
            AttributeHead(num_outputs=3)(np.ones((2, 3, 8), "float32"))

    def test_dropout_drops_the_input_in_training_only(self):
        x = np.abs(np.random.RandomState(1).randn(64, 16)).astype("float32") + 0.5
        layer = AttributeHead(num_outputs=3, hidden_dim=6, dropout=0.5)
        layer(x)
        randomize_batch_norm(layer.batch_norm, np.random.RandomState(2))
        # Inference: exactly the head without dropout (the oracle has none).
        self.assertAllClose(layer(x, training=False), head_oracle(layer, x, False), atol=1e-5)
        # Training: the first Dense sees the input with about half its entries zeroed and the
        # rest scaled by 2, so the hidden pre-activations differ from the undropped ones.
        dropped = self.to_numpy(layer.input_dropout(x, training=True))
        zero = dropped == 0.0
        self.assertGreater(zero.mean(), 0.35)
        self.assertLess(zero.mean(), 0.65)
        self.assertAllClose(dropped[~zero], 2.0 * x[~zero], atol=1e-6)
        with self.assertRaises(AssertionError):
            self.assertAllClose(layer(x, training=True), head_oracle(layer, x, True), atol=1e-3)

    def test_dropout_zero_adds_no_layer_or_weight(self):
        layer = AttributeHead(num_outputs=3, dropout=0.0)
        layer(self.x)
        self.assertIsNone(layer.input_dropout)
        with_dropout = AttributeHead(num_outputs=3, dropout=0.3)
        with_dropout(self.x)
        self.assertEqual(len(layer.weights), len(with_dropout.trainable_weights) + 2)
        revived = self.run_serialization_test(with_dropout)
        self.assertEqual(revived.get_config()["dropout"], 0.3)
        for bad in (1.0, -0.1, "0.5", True):
            with self.assertRaisesRegex(ValueError, "dropout"):
                AttributeHead(num_outputs=3, dropout=bad)
