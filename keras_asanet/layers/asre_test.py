import inspect
import re
import textwrap

import keras
import numpy as np
from keras import ops

from keras_asanet.layers.asre import ASRE
from keras_asanet.tests.test_case import TestCase


def to_np(x):
    return np.asarray(ops.convert_to_numpy(x), np.float64)


def numpy_nest(x):
    """Tensors -> numpy arrays, tuples -> lists (see `ASRETest.assertAllClose`)."""
    if isinstance(x, (list, tuple)):
        return [numpy_nest(item) for item in x]
    return np.asarray(ops.convert_to_numpy(x))


def softmax(z, axis=-1):
    z = z - z.max(axis=axis, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=axis, keepdims=True)


def asre_oracle(layer, x_i, x_a, training=False, mask_activation=lambda m: m):
    """Eq. 8-10 in float64 numpy from the layer's weights (channels-last inputs)."""
    x_i = x_i.astype(np.float64)
    x_a = x_a.astype(np.float64)
    b, h, w, _ = x_i.shape

    def conv1x1(x, conv):
        y = x @ to_np(conv.kernel)[0, 0]
        if conv.use_bias:
            y = y + to_np(conv.bias)
        return y

    q = np.maximum(conv1x1(x_i, layer.query_conv), 0.0).reshape(b, h * w, -1)
    k = np.maximum(conv1x1(x_a, layer.key_conv), 0.0).reshape(b, h * w, -1)
    v = conv1x1(x_a, layer.value_conv).reshape(b, h * w, -1)
    d_k = q.shape[-1]
    axis = -1 if layer.softmax_over == "attribute_positions" else -2
    attention = softmax(q @ k.transpose(0, 2, 1) / np.sqrt(d_k), axis)  # (B, HW_I, HW_A)
    x_v = (attention @ v).reshape(b, h, w, -1)
    bn = layer.batch_norm
    if training:
        mean, var = x_v.mean(axis=(0, 1, 2)), x_v.var(axis=(0, 1, 2))
    else:
        mean, var = to_np(bn.moving_mean), to_np(bn.moving_variance)
    normed = to_np(bn.gamma) * (x_v - mean) / np.sqrt(var + bn.epsilon) + to_np(bn.beta)
    mask = mask_activation(conv1x1(normed, layer.mask_conv))  # (B, H, W, 1)
    enhanced = x_i + to_np(layer.alpha) * (mask * x_i)
    return enhanced, mask, attention


def randomize(layer, seed=0):
    """Non-trivial biases, BN parameters / statistics and alpha for the oracle checks."""
    rng = np.random.RandomState(seed)
    for conv in (layer.query_conv, layer.key_conv, layer.mask_conv):
        conv.bias.assign(rng.normal(0.0, 0.3, conv.bias.shape).astype("float32"))
    bn = layer.batch_norm
    dim = bn.gamma.shape[0]
    bn.gamma.assign(rng.uniform(0.5, 1.5, dim).astype("float32"))
    bn.beta.assign(rng.normal(0.0, 0.3, dim).astype("float32"))
    bn.moving_mean.assign(rng.normal(0.0, 0.3, dim).astype("float32"))
    bn.moving_variance.assign(rng.uniform(0.5, 2.0, dim).astype("float32"))
    layer.alpha.assign(np.array([0.7], "float32"))


class ASRETest(TestCase):
    def setUp(self):
        super().setUp()
        rng = np.random.RandomState(0)
        # (B, H, W) = (2, 4, 2); C_I = 8, C_A = 6.
        self.x_i = rng.randn(2, 4, 2, 8).astype("float32")
        self.x_a = rng.randn(2, 4, 2, 6).astype("float32")

    def assertAllClose(self, actual, expected, **kwargs):
        # Local workaround: the shared functional/saving checks compare `model(x)` (a tuple for
        # a two-output layer) with `model.predict(x)` (a list), and the shared `_to_numpy`
        # calls `np.asarray` on tuples of torch tensors that require grad. Normalise first.
        super().assertAllClose(numpy_nest(actual), numpy_nest(expected), **kwargs)

    def test_layer_behaviors(self):
        self.run_layer_test(
            ASRE,
            init_kwargs={},
            input_data=[self.x_i, self.x_a],
            expected_output_shape=(2, 4, 2, 8),
            # q, k kernels+biases, v kernel, BN gamma+beta, mask kernel+bias, alpha.
            expected_num_trainable_weights=10,
            expected_num_non_trainable_weights=2,
        )

    def test_layer_behaviors_channels_first_return_mask(self):
        self.run_layer_test(
            ASRE,
            init_kwargs={
                "return_mask": True,
                "key_dim": 3,
                "value_dim": 5,
                "data_format": "channels_first",
                "mask_activation": "sigmoid",
            },
            input_data=[self.x_i.transpose(0, 3, 1, 2), self.x_a.transpose(0, 3, 1, 2)],
            expected_output_shape=((2, 8, 4, 2), (2, 1, 4, 2)),
        )

    def test_weight_shapes(self):
        layer = ASRE(key_dim=3, value_dim=5)
        layer([self.x_i, self.x_a])
        self.assertEqual(tuple(layer.query_conv.kernel.shape), (1, 1, 8, 3))
        self.assertEqual(tuple(layer.key_conv.kernel.shape), (1, 1, 6, 3))
        self.assertEqual(tuple(layer.value_conv.kernel.shape), (1, 1, 6, 5))
        self.assertFalse(layer.value_conv.use_bias)
        self.assertEqual(tuple(layer.mask_conv.kernel.shape), (1, 1, 5, 1))
        self.assertAllClose(layer.alpha, np.array([1.0]))
        default = ASRE()
        default([self.x_i, self.x_a])
        self.assertEqual(tuple(default.query_conv.kernel.shape), (1, 1, 8, 8))
        self.assertEqual(tuple(default.value_conv.kernel.shape), (1, 1, 6, 8))

    def test_numpy_oracle_inference(self):
        layer = ASRE(return_mask=True, key_dim=3, value_dim=5)
        layer([self.x_i, self.x_a])
        randomize(layer)
        enhanced, mask = layer([self.x_i, self.x_a], training=False)
        expected_enhanced, expected_mask, attention = asre_oracle(layer, self.x_i, self.x_a)
        self.assertAllClose(enhanced, expected_enhanced, atol=1e-5, rtol=1e-5)
        self.assertAllClose(mask, expected_mask, atol=1e-5, rtol=1e-5)
        # Sanity of the oracle itself: each identity position's attention sums to one.
        np.testing.assert_allclose(attention.sum(-1), 1.0, atol=1e-12)

    def test_numpy_oracle_softmax_over_identity_positions(self):
        layer = ASRE(return_mask=True, key_dim=3, softmax_over="identity_positions")
        layer([self.x_i, self.x_a])
        randomize(layer, seed=2)
        enhanced, mask = layer([self.x_i, self.x_a], training=False)
        expected_enhanced, expected_mask, attention = asre_oracle(layer, self.x_i, self.x_a)
        self.assertAllClose(enhanced, expected_enhanced, atol=1e-5, rtol=1e-5)
        self.assertAllClose(mask, expected_mask, atol=1e-5, rtol=1e-5)
        # Each attribute position's response over the identity positions sums to one.
        np.testing.assert_allclose(attention.sum(-2), 1.0, atol=1e-12)
        # The other reading computes another mask from the same weights.
        other = ASRE.from_config({**layer.get_config(), "softmax_over": "attribute_positions"})
        other([self.x_i, self.x_a])
        other.set_weights(layer.get_weights())
        self.assertGreater(np.abs(to_np(other([self.x_i, self.x_a])[1]) - to_np(mask)).max(), 1e-4)
        self.assertEqual(layer.get_config()["softmax_over"], "identity_positions")

    def test_numpy_oracle_training_mode_and_sigmoid(self):
        layer = ASRE(return_mask=True, mask_activation="sigmoid")
        layer([self.x_i, self.x_a])
        randomize(layer, seed=1)
        enhanced, mask = layer([self.x_i, self.x_a], training=True)
        expected_enhanced, expected_mask, _ = asre_oracle(
            layer,
            self.x_i,
            self.x_a,
            training=True,
            mask_activation=lambda m: 1.0 / (1.0 + np.exp(-m)),
        )
        self.assertAllClose(enhanced, expected_enhanced, atol=1e-5, rtol=1e-5)
        self.assertAllClose(mask, expected_mask, atol=1e-5, rtol=1e-5)

    def test_channels_first_matches_channels_last(self):
        last = ASRE(return_mask=True)
        last([self.x_i, self.x_a])
        randomize(last)
        first = ASRE(return_mask=True, data_format="channels_first")
        first([self.x_i.transpose(0, 3, 1, 2), self.x_a.transpose(0, 3, 1, 2)])
        first.set_weights(last.get_weights())
        out_last, mask_last = last([self.x_i, self.x_a])
        out_first, mask_first = first(
            [self.x_i.transpose(0, 3, 1, 2), self.x_a.transpose(0, 3, 1, 2)]
        )
        self.assertAllClose(to_np(out_first).transpose(0, 2, 3, 1), out_last, atol=1e-5)
        self.assertAllClose(to_np(mask_first).transpose(0, 2, 3, 1), mask_last, atol=1e-5)

    def test_global_channels_first_default_does_not_reach_the_inner_convolutions(self):
        # ASRE transposes to channels-last itself; its 1x1 convolutions must not follow
        # `keras.config.image_data_format()`.
        last = ASRE(return_mask=True, data_format="channels_last")
        last([self.x_i, self.x_a])
        randomize(last)
        x_first = [self.x_i.transpose(0, 3, 1, 2), self.x_a.transpose(0, 3, 1, 2)]
        previous = keras.config.image_data_format()
        keras.config.set_image_data_format("channels_first")
        try:
            first = ASRE(return_mask=True)
            self.assertEqual(first.data_format, "channels_first")
            first(x_first)
            first.set_weights(last.get_weights())
            out_first, _ = first(x_first)
        finally:
            keras.config.set_image_data_format(previous)
        out_last, _ = last([self.x_i, self.x_a])
        self.assertAllClose(to_np(out_first).transpose(0, 2, 3, 1), out_last, atol=1e-5)

    def test_alpha_zero_is_identity_and_attention_mixes_positions(self):
        layer = ASRE(alpha=0.0)
        self.assertAllClose(layer([self.x_i, self.x_a]), self.x_i, atol=1e-6)
        # Cross attention: changing the attribute map at ONE position changes the mask at
        # other positions too.
        layer = ASRE(return_mask=True)
        _, mask = layer([self.x_i, self.x_a])
        x_a = self.x_a.copy()
        x_a[:, 0, 0, :] += 3.0
        _, mask2 = layer([self.x_i, x_a])
        changed = np.abs(to_np(mask2) - to_np(mask))[:, 1:, :, 0]
        self.assertGreater(changed.max(), 1e-4)

    def test_dynamic_spatial_size_in_functional_model(self):
        identity = keras.Input((None, None, 8))
        attribute = keras.Input((None, None, 6))
        layer = ASRE(return_mask=True)
        enhanced, mask = layer([identity, attribute])
        self.assertEqual(tuple(enhanced.shape), (None, None, None, 8))
        self.assertEqual(tuple(mask.shape), (None, None, None, 1))
        model = keras.Model([identity, attribute], [enhanced, mask])
        rng = np.random.RandomState(5)
        for h, w in ((4, 2), (3, 5)):
            x_i = rng.randn(2, h, w, 8).astype("float32")
            x_a = rng.randn(2, h, w, 6).astype("float32")
            expected_enhanced, expected_mask, _ = asre_oracle(layer, x_i, x_a)
            out, m = model.predict([x_i, x_a], verbose=0)
            self.assertAllClose(out, expected_enhanced, atol=1e-5, rtol=1e-5)
            self.assertAllClose(m, expected_mask, atol=1e-5, rtol=1e-5)

    def test_docstring_example_runs(self):
        docstring = inspect.getdoc(ASRE)
        blocks = re.findall(r"```python\n(.*?)```", docstring, flags=re.S)
        self.assertLen(blocks, 1)
        namespace = {}
        exec(compile(textwrap.dedent(blocks[0]), "<ASRE docstring>", "exec"), namespace)
        self.assertEqual(tuple(namespace["features"].shape), (2, 16))
        self.assertEqual(tuple(namespace["masks"].shape), (2, 16, 8, 1))
        self.assertTrue(np.all(np.isfinite(namespace["features"])))
        self.assertIsInstance(namespace["model"].get_layer("asre"), ASRE)

    def test_mixed_float16_matches_float32(self):
        reference = ASRE(return_mask=True)
        expected = reference([self.x_i, self.x_a])
        half = ASRE(return_mask=True, dtype="mixed_float16")
        half([self.x_i, self.x_a])
        half.set_weights(reference.get_weights())
        out = half([self.x_i, self.x_a])
        self.assertEqual(keras.backend.standardize_dtype(out[0].dtype), "float16")
        self.assertAllClose([ops.cast(o, "float32") for o in out], expected, atol=2e-2, rtol=2e-2)

    def test_bad_inputs(self):
        layer = ASRE()
        with self.assertRaisesRegex(ValueError, "same spatial size.*height 4.*and 3"):
            layer([self.x_i, self.x_a[:, :3]])
        with self.assertRaisesRegex(ValueError, "`attribute_map` of ASRE must have rank 4"):
            ASRE()([self.x_i, self.x_a[:, :, :, 0]])
        with self.assertRaisesRegex(ValueError, "`identity_map` of ASRE must have rank 4"):
            ASRE()([self.x_i[None], self.x_a])
        with self.assertRaisesRegex(ValueError, "list of two"):
            ASRE()(self.x_i)
        with self.assertRaisesRegex(ValueError, "list of two"):
            ASRE()([self.x_i, self.x_a, self.x_a])
        # Mismatch after the layer was built is caught too.
        layer([self.x_i, self.x_a])
        with self.assertRaisesRegex(ValueError, "width 2.*and 1"):
            layer([self.x_i, self.x_a[:, :, :1]])
        # And at graph-building time.
        with self.assertRaisesRegex(ValueError, "same spatial size"):
            ASRE()([keras.Input((4, 2, 8)), keras.Input((4, 3, 6))])

    def test_bad_arguments(self):
        with self.assertRaisesRegex(ValueError, "key_dim=0"):
            ASRE(key_dim=0)
        with self.assertRaisesRegex(ValueError, "value_dim=-1"):
            ASRE(value_dim=-1)
        with self.assertRaisesRegex(ValueError, "alpha='one'"):
            ASRE(alpha="one")
        with self.assertRaisesRegex(ValueError, "softmax_over='rows'"):
            ASRE(softmax_over="rows")
        with self.assertRaisesRegex(ValueError, "data_format"):
            ASRE(data_format="NHWC")
