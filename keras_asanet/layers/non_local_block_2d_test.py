import keras
import numpy as np
from absl.testing import parameterized

from keras_asanet.layers.bottleneck_block_test import np_bn_layer, randomize_weights
from keras_asanet.layers.non_local_block_2d import NonLocalBlock2D
from keras_asanet.tests.test_case import TestCase


def np_non_local(x, block):
    """Inference-mode numpy oracle of AGW's `Non_local.forward`, written in NCHW like AGW."""

    def conv1x1(t_nchw, conv):
        kernel = np.asarray(keras.ops.convert_to_numpy(conv.kernel), np.float64)[0, 0]
        bias = np.asarray(keras.ops.convert_to_numpy(conv.bias), np.float64)
        return np.einsum("bchw,co->bohw", t_nchw, kernel) + bias[None, :, None, None]

    x_nchw = np.transpose(x, (0, 3, 1, 2)).astype(np.float64)
    b, _, h, w = x_nchw.shape
    ci = block.inter_dim
    g_x = conv1x1(x_nchw, block.g).reshape(b, ci, -1).transpose(0, 2, 1)
    theta_x = conv1x1(x_nchw, block.theta).reshape(b, ci, -1).transpose(0, 2, 1)
    phi_x = conv1x1(x_nchw, block.phi).reshape(b, ci, -1)
    f = theta_x @ phi_x
    y = (f / f.shape[-1]) @ g_x
    y = y.transpose(0, 2, 1).reshape(b, ci, h, w)
    w_y = conv1x1(y, block.w_conv)
    w_y = np.transpose(np_bn_layer(np.transpose(w_y, (0, 2, 3, 1)), block.w_bn), (0, 3, 1, 2))
    return np.transpose(w_y + x_nchw, (0, 2, 3, 1))


class NonLocalBlock2DTest(TestCase):
    def test_layer_behaviour(self):
        self.run_layer_test(
            NonLocalBlock2D,
            {"zero_init": False},  # gamma = 1 so that a gradient reaches every convolution
            np.random.RandomState(0).rand(2, 4, 3, 8).astype("float32"),
            expected_output_shape=(2, 4, 3, 8),
            expected_num_trainable_weights=10,  # 4 convs (kernel, bias) + BN (gamma, beta)
            expected_num_non_trainable_weights=2,
        )

    def test_identity_at_initialisation(self):
        x = np.random.default_rng(0).normal(0, 5, (2, 5, 3, 8)).astype("float32")
        block = NonLocalBlock2D()
        for training in (False, True):
            self.assertAllEqual(block(x, training=training), x)
        self.assertAllEqual(block.w_bn.gamma, np.zeros(8))
        self.assertAllEqual(block.w_bn.beta, np.zeros(8))

    @parameterized.named_parameters(
        ("reduction2", {}, 4),
        ("reduction4", {"reduction": 4}, 2),
        ("agw_literal", {"inter_channels": 1}, 1),
    )
    def test_matches_numpy_oracle(self, kwargs, inter):
        rng = np.random.default_rng(5)
        x = rng.normal(size=(2, 5, 3, 8)).astype("float32")
        block = NonLocalBlock2D(kernel_initializer="zeros", **kwargs)
        block.build(x.shape)
        self.assertEqual(block.inter_dim, inter)
        self.assertEqual(tuple(block.g.kernel.shape), (1, 1, 8, inter))
        randomize_weights(block, rng)
        out = block(x, training=False)
        expected = np_non_local(x, block)
        self.assertGreater(np.abs(expected - x).max(), 0.1)  # the block is not the identity
        self.assertAllClose(out, expected, atol=1e-4, rtol=1e-4)

    def test_channels_first_matches_oracle(self):
        rng = np.random.default_rng(9)
        x = rng.normal(size=(2, 4, 6, 8)).astype("float32")
        block = NonLocalBlock2D(data_format="channels_first", kernel_initializer="zeros")
        block.build((2, 8, 4, 6))
        randomize_weights(block, rng)
        out = self.to_numpy(block(np.transpose(x, (0, 3, 1, 2)), training=False))
        self.assertAllClose(
            np.transpose(out, (0, 2, 3, 1)), np_non_local(x, block), atol=1e-4, rtol=1e-4
        )

    def test_dynamic_spatial_size_in_functional_model(self):
        inputs = keras.Input((None, None, 8))
        block = NonLocalBlock2D(zero_init=False, kernel_initializer="zeros")
        model = keras.Model(inputs, block(inputs))
        rng = np.random.default_rng(2)
        randomize_weights(block, rng)
        for shape in ((2, 3, 4, 8), (1, 6, 2, 8)):
            x = rng.normal(size=shape).astype("float32")
            self.assertAllClose(
                model.predict(x, verbose=0), np_non_local(x, block), atol=1e-4, rtol=1e-4
            )

    def test_invalid_arguments(self):
        with self.assertRaisesRegex(ValueError, "reduction=0"):
            NonLocalBlock2D(reduction=0)
        with self.assertRaisesRegex(ValueError, "inter_channels=0"):
            NonLocalBlock2D(inter_channels=0)
        with self.assertRaisesRegex(ValueError, "reduction"):
            NonLocalBlock2D(reduction=16).build((1, 4, 4, 8))
        with self.assertRaisesRegex(ValueError, "4-D input"):
            NonLocalBlock2D().build((4, 4, 8))
