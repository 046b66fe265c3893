import numpy as np

from keras_asanet.layers.bottleneck_block import BottleneckBlock
from keras_asanet.layers.instance_batch_norm import InstanceBatchNormalization
from keras_asanet.tests.test_case import TestCase


def ibn_oracle(x, k, gamma, beta, eps, channel_axis, training, bn_mean=None, bn_var=None):
    """IBN-a in numpy: instance norm (biased variance over H, W) on the first k channels,
    batch norm with batch (or given moving) statistics on the rest; unit affine for BN."""
    x = np.moveaxis(x.astype(np.float64), channel_axis, -1)
    first, second = x[..., :k], x[..., k:]
    mean = first.mean(axis=(1, 2), keepdims=True)
    var = first.var(axis=(1, 2), keepdims=True)
    first = (first - mean) / np.sqrt(var + eps) * gamma + beta
    if training:
        bn_mean, bn_var = second.mean(axis=(0, 1, 2)), second.var(axis=(0, 1, 2))
    second = (second - bn_mean) / np.sqrt(bn_var + eps)
    return np.moveaxis(np.concatenate([first, second], axis=-1), -1, channel_axis)


class InstanceBatchNormalizationTest(TestCase):
    def test_layer_behaviors(self):
        x = np.random.RandomState(0).rand(2, 4, 3, 6).astype("float32")
        self.run_layer_test(
            InstanceBatchNormalization,
            init_kwargs={"ratio": 0.5},
            input_data=x,
            expected_output_shape=(2, 4, 3, 6),
            # IN gamma/beta (3 channels) and BN gamma/beta; BN's moving mean/variance.
            expected_num_trainable_weights=4,
            expected_num_non_trainable_weights=2,
        )

    def test_numpy_oracle_both_formats_training_and_inference(self):
        rng = np.random.RandomState(1)
        x = (rng.randn(3, 5, 4, 8) * 3 + 2).astype("float32")
        gamma, beta = rng.rand(4) + 0.5, rng.randn(4)
        for data_format, axis in (("channels_last", -1), ("channels_first", 1)):
            inputs = x if axis == -1 else x.transpose(0, 3, 1, 2)
            layer = InstanceBatchNormalization(ratio=0.5, data_format=data_format)
            layer.build(inputs.shape)
            layer.gamma.assign(gamma.astype("float32"))
            layer.beta.assign(beta.astype("float32"))
            expected = ibn_oracle(inputs, 4, gamma, beta, 1e-5, axis, training=True)
            got = layer(inputs, training=True)
            self.assertAllClose(got, expected, atol=1e-4, rtol=1e-4)
            # Inference: the IN half still uses the image's own statistics; the BN half its
            # moving statistics (moved once, by the training call, from 0 / 1).
            bn = layer.batch_norm
            stats = self.to_numpy(bn.moving_mean), self.to_numpy(bn.moving_variance)
            self.assertGreater(np.abs(stats[0]).max(), 0.01)
            expected = ibn_oracle(inputs, 4, gamma, beta, 1e-5, axis, False, *stats)
            self.assertAllClose(layer(inputs, training=False), expected, atol=1e-4, rtol=1e-4)

    def test_removes_a_per_image_light_change_from_the_instance_half(self):
        # Scaling and shifting one image (a change of light / white balance) leaves the
        # instance-normalised channels unchanged, and changes the batch-normalised ones.
        x = np.random.RandomState(2).rand(2, 6, 4, 4).astype("float32")
        lit = x.copy()
        lit[0] = 1.7 * lit[0] + 0.3
        layer = InstanceBatchNormalization(ratio=0.5)
        a = self.to_numpy(layer(x, training=False))
        b = self.to_numpy(layer(lit, training=False))
        self.assertAllClose(a[0, ..., :2], b[0, ..., :2], atol=1e-3)
        self.assertGreater(np.abs(a[0, ..., 2:] - b[0, ..., 2:]).max(), 0.1)

    def test_ratio_and_shape_checks(self):
        layer = InstanceBatchNormalization(ratio=0.25)
        layer.build((None, 4, 4, 8))
        self.assertEqual(layer.instance_channels, 2)
        with self.assertRaisesRegex(ValueError, "ratio"):
            InstanceBatchNormalization(ratio=1.0)
        with self.assertRaisesRegex(ValueError, "4-D"):
            InstanceBatchNormalization().build((None, 8))
        with self.assertRaisesRegex(ValueError, "at least 2"):
            InstanceBatchNormalization().build((None, 4, 4, 1))

    def test_bottleneck_block_with_ibn(self):
        block = BottleneckBlock(filters=4, ibn=True)
        x = np.random.RandomState(3).rand(2, 8, 4, 16).astype("float32")
        self.assertEqual(tuple(block(x).shape), (2, 8, 4, 16))
        self.assertIsInstance(block.bn1, InstanceBatchNormalization)
        self.assertTrue(BottleneckBlock.from_config(block.get_config()).ibn)
        self.assertFalse(BottleneckBlock(filters=4).ibn)
