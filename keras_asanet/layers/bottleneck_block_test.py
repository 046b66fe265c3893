import keras
import numpy as np
from absl.testing import parameterized

from keras_asanet.layers.bottleneck_block import BottleneckBlock
from keras_asanet.tests.test_case import TestCase


def np_conv2d(x, kernel, stride=1, pad=0):
    """PyTorch-semantics 2-D convolution on NHWC numpy arrays (symmetric zero padding)."""
    x = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    kh, kw = kernel.shape[:2]
    out_h = (x.shape[1] - kh) // stride + 1
    out_w = (x.shape[2] - kw) // stride + 1
    out = np.zeros((x.shape[0], out_h, out_w, kernel.shape[3]), dtype=np.float64)
    for i in range(kh):
        for j in range(kw):
            window = x[
                :,
                i : i + stride * (out_h - 1) + 1 : stride,
                j : j + stride * (out_w - 1) + 1 : stride,
            ]
            out += window @ kernel[i, j]
    return out


def np_batch_norm(x, gamma, beta, mean, var, eps=1e-5):
    return (x - mean) / np.sqrt(var + eps) * gamma + beta


def np_bn_layer(x, bn):
    return np_batch_norm(
        x,
        *[np.asarray(keras.ops.convert_to_numpy(w), np.float64) for w in
          (bn.gamma, bn.beta, bn.moving_mean, bn.moving_variance)],
        eps=bn.epsilon,
    )  # fmt: skip


def np_bottleneck(x, block):
    """Inference-mode numpy oracle of a built `BottleneckBlock` (channels-last)."""

    def kernel(conv):
        return np.asarray(keras.ops.convert_to_numpy(conv.kernel), np.float64)

    s = block.strides
    s1, s3 = (s, 1) if block.stride_in_1x1 else (1, s)
    y = np.maximum(np_bn_layer(np_conv2d(x, kernel(block.conv1), s1), block.bn1), 0)
    y = np.maximum(np_bn_layer(np_conv2d(y, kernel(block.conv2), s3, pad=1), block.bn2), 0)
    y = np_bn_layer(np_conv2d(y, kernel(block.conv3)), block.bn3)
    if block.has_projection:
        shortcut = np_bn_layer(np_conv2d(x, kernel(block.shortcut_conv), s), block.shortcut_bn)
    else:
        shortcut = x
    return np.maximum(y + shortcut, 0)


def randomize_weights(layer, rng):
    """Random kernels and realistic batch-norm parameters / statistics for every sub-layer."""
    for sub in layer._flatten_layers(include_self=True, recursive=True):
        if isinstance(sub, keras.layers.BatchNormalization):
            c = sub.gamma.shape[0]
            sub.gamma.assign(rng.uniform(0.5, 1.5, c).astype("float32"))
            sub.beta.assign(rng.normal(0, 0.2, c).astype("float32"))
            sub.moving_mean.assign(rng.normal(0, 0.3, c).astype("float32"))
            sub.moving_variance.assign(rng.uniform(0.5, 2.0, c).astype("float32"))
        elif isinstance(sub, keras.layers.Conv2D):
            shape = tuple(sub.kernel.shape)
            fan_in = shape[0] * shape[1] * shape[2]
            sub.kernel.assign(rng.normal(0, np.sqrt(2.0 / fan_in), shape).astype("float32"))
            if sub.use_bias:
                sub.bias.assign(rng.normal(0, 0.1, shape[-1]).astype("float32"))


class BottleneckBlockTest(TestCase):
    def test_layer_behaviour_with_projection(self):
        self.run_layer_test(
            BottleneckBlock,
            {"filters": 4, "strides": 2},
            np.random.RandomState(0).rand(2, 7, 5, 8).astype("float32"),
            expected_output_shape=(2, 4, 3, 16),
            expected_num_trainable_weights=12,  # 4 convs + 4 BN (gamma, beta)
            expected_num_non_trainable_weights=8,
        )

    def test_layer_behaviour_identity_shortcut(self):
        output = self.run_layer_test(
            BottleneckBlock,
            {"filters": 4, "stride_in_1x1": True},
            np.random.RandomState(1).rand(2, 4, 3, 16).astype("float32"),
            expected_output_shape=(2, 4, 3, 16),
            expected_num_trainable_weights=9,
            expected_num_non_trainable_weights=6,
            run_functional_check=False,  # covered by the projection case above
            run_precision_check=False,
        )
        self.assertEqual(tuple(output.shape), (2, 4, 3, 16))

    @parameterized.named_parameters(
        ("v15_stride2_projection", 2, False, 8, (2, 9, 6)),
        ("v1_stride2_projection", 2, True, 8, (2, 9, 6)),
        ("stride1_projection", 1, False, 8, (2, 5, 4)),
        ("stride1_identity", 1, False, 16, (2, 5, 4)),
        ("v15_stride2_even", 2, False, 16, (1, 8, 6)),
    )
    def test_matches_numpy_oracle(self, strides, stride_in_1x1, in_channels, spatial):
        rng = np.random.default_rng(7)
        x = rng.normal(size=spatial + (in_channels,)).astype("float32")
        block = BottleneckBlock(
            4, strides=strides, stride_in_1x1=stride_in_1x1, kernel_initializer="zeros"
        )
        block.build(x.shape)
        randomize_weights(block, rng)
        self.assertEqual(block.has_projection, in_channels != 16 or strides != 1)
        expected = np_bottleneck(x.astype(np.float64), block)
        self.assertEqual(tuple(block.compute_output_shape(x.shape)), expected.shape)
        self.assertAllClose(block(x, training=False), expected, atol=1e-4, rtol=1e-4)

    def test_training_mode_uses_batch_statistics(self):
        rng = np.random.default_rng(3)
        x = rng.normal(size=(4, 6, 5, 8)).astype("float32")
        block = BottleneckBlock(2, kernel_initializer="zeros")
        block.build(x.shape)
        randomize_weights(block, rng)
        out_train = self.to_numpy(block(x, training=True))
        out_infer = self.to_numpy(block(x, training=False))
        self.assertGreater(np.abs(out_train - out_infer).max(), 1e-3)

    def test_channels_first_matches_channels_last(self):
        rng = np.random.default_rng(11)
        x = rng.normal(size=(2, 9, 7, 8)).astype("float32")
        last = BottleneckBlock(
            4, strides=2, data_format="channels_last", kernel_initializer="zeros"
        )
        first = BottleneckBlock(
            4, strides=2, data_format="channels_first", kernel_initializer="zeros"
        )
        last.build(x.shape)
        first.build((2, 8, 9, 7))
        randomize_weights(last, rng)
        first.set_weights(last.get_weights())
        out_first = first(np.transpose(x, (0, 3, 1, 2)), training=False)
        self.assertEqual(tuple(first.compute_output_shape((2, 8, 9, 7))), (2, 16, 5, 4))
        self.assertAllClose(
            np.transpose(self.to_numpy(out_first), (0, 2, 3, 1)),
            last(x, training=False),
            atol=1e-5,
            rtol=1e-5,
        )

    def test_compute_output_shape_dynamic(self):
        block = BottleneckBlock(8, strides=2)
        self.assertEqual(block.compute_output_shape((None, None, 11, 3)), (None, None, 6, 32))

    def test_shared_initializer_gives_distinct_kernels(self):
        # One unseeded Keras initializer object returns the same values for the same shape
        # every call; each convolution must get its own copy.
        init = keras.initializers.RandomNormal()
        first, second = (BottleneckBlock(2, kernel_initializer=init) for _ in range(2))
        first.build((1, 3, 3, 8))
        second.build((1, 3, 3, 8))
        self.assertFalse(
            np.allclose(self.to_numpy(first.conv2.kernel), self.to_numpy(second.conv2.kernel))
        )

    def test_invalid_arguments(self):
        with self.assertRaisesRegex(ValueError, "filters=0"):
            BottleneckBlock(0)
        with self.assertRaisesRegex(ValueError, "strides=-1"):
            BottleneckBlock(4, strides=-1)
        with self.assertRaisesRegex(ValueError, "use_projection"):
            BottleneckBlock(4, use_projection="yes")
        with self.assertRaisesRegex(ValueError, "data_format"):
            BottleneckBlock(4, data_format="NHWC")
        with self.assertRaisesRegex(ValueError, "use_projection=False"):
            BottleneckBlock(4, use_projection=False).build((1, 8, 8, 8))
        with self.assertRaisesRegex(ValueError, "4-D input"):
            BottleneckBlock(4).build((8, 8, 8))
