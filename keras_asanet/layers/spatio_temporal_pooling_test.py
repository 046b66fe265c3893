import keras
import numpy as np
from absl.testing import parameterized
from keras import ops

from keras_asanet.layers.spatio_temporal_pooling import SpatioTemporalPooling
from keras_asanet.tests.test_case import TestCase


def oracle(clip, spatial, p=3.0, eps=1e-6):
    """numpy F_TP(F_SP(clip)) for a channels-last (B, T, H, W, C) clip."""
    clip = clip.astype(np.float64)
    if spatial == "gem":
        frames = np.mean(np.maximum(clip, eps) ** p, axis=(2, 3)) ** (1.0 / p)
    elif spatial == "avg":
        frames = clip.mean(axis=(2, 3))
    else:
        frames = clip.max(axis=(2, 3))
    return frames.mean(axis=1)


class SpatioTemporalPoolingTest(TestCase):
    def setUp(self):
        super().setUp()
        # (B, T, H, W, C) = (2, 3, 4, 2, 8)
        self.clip = np.random.RandomState(0).rand(2, 3, 4, 2, 8).astype("float32")

    def test_layer_behaviors_unfolded_gem(self):
        self.run_layer_test(
            SpatioTemporalPooling,
            init_kwargs={"spatial": "gem"},
            input_data=self.clip,
            expected_output_shape=(2, 8),
            expected_num_trainable_weights=1,
        )

    def test_layer_behaviors_folded_channels_first_avg(self):
        folded = self.clip.reshape(6, 4, 2, 8).transpose(0, 3, 1, 2)
        self.run_layer_test(
            SpatioTemporalPooling,
            init_kwargs={"spatial": "avg", "seq_len": 3, "data_format": "channels_first"},
            input_data=folded,
            expected_output_shape=(2, 8),
            expected_num_trainable_weights=0,
            expected_num_non_trainable_weights=0,
            run_training_check=False,  # average pooling has no weights
        )

    @parameterized.named_parameters(("gem", "gem"), ("avg", "avg"), ("max", "max"))
    def test_numpy_oracle_all_layouts(self, spatial):
        clip = self.clip - 0.3  # some negatives: GeM clamps them, avg/max see them
        expected = oracle(clip, spatial)
        unfolded = SpatioTemporalPooling(spatial=spatial)(clip)
        self.assertAllClose(unfolded, expected, atol=1e-5, rtol=1e-5)
        folded = SpatioTemporalPooling(spatial=spatial, seq_len=3)(clip.reshape(6, 4, 2, 8))
        self.assertAllClose(folded, expected, atol=1e-5, rtol=1e-5)
        clip_cf = clip.transpose(0, 1, 4, 2, 3)  # (B, T, C, H, W)
        cf = SpatioTemporalPooling(spatial=spatial, data_format="channels_first")(clip_cf)
        self.assertAllClose(cf, expected, atol=1e-5, rtol=1e-5)

    def test_hand_computed_avg(self):
        # One clip of two 1x2 frames, one channel: frame means 1.5 and 3.5 -> 2.5.
        clip = np.array([[[[[1.0], [2.0]]], [[[3.0], [4.0]]]]], dtype="float32")
        self.assertEqual(clip.shape, (1, 2, 1, 2, 1))
        out = SpatioTemporalPooling(spatial="avg")(clip)
        self.assertAllClose(out, np.array([[2.5]]))
        out = SpatioTemporalPooling(spatial="max")(clip)
        self.assertAllClose(out, np.array([[3.0]]))

    def test_frames_are_not_mixed_between_clips(self):
        # Clip 0 all zeros, clip 1 all ones: folding must keep them apart.
        clip = np.concatenate([np.zeros((1, 3, 2, 2, 4)), np.ones((1, 3, 2, 2, 4))]).astype(
            "float32"
        )
        out = SpatioTemporalPooling(spatial="avg", seq_len=3)(clip.reshape(6, 2, 2, 4))
        self.assertAllClose(out, np.stack([np.zeros(4), np.ones(4)]))

    def test_mean_std_oracle_folded_and_unfolded(self):
        clip = self.clip - 0.3
        frames = clip.astype(np.float64).mean(axis=(2, 3))  # (B, T, C)
        expected = np.concatenate([frames.mean(1), np.sqrt(frames.var(1) + 1e-6)], axis=-1)
        out = SpatioTemporalPooling(spatial="avg", temporal="mean_std")(clip)
        self.assertEqual(tuple(out.shape), (2, 16))
        self.assertAllClose(out, expected, atol=1e-5, rtol=1e-5)
        folded = SpatioTemporalPooling(spatial="avg", temporal="mean_std", seq_len=3)
        self.assertAllClose(folded(clip.reshape(6, 4, 2, 8)), expected, atol=1e-5, rtol=1e-5)
        self.assertEqual(folded.compute_output_shape((6, 4, 2, 8)), (2, 16))

    def test_mean_std_sees_change_a_mean_misses(self):
        # Two clips with the same temporal mean: one constant, one alternating.
        still = np.full((1, 4, 2, 2, 1), 0.5, "float32")
        moving = np.array([0.0, 1.0, 0.0, 1.0], "float32").reshape(1, 4, 1, 1, 1) * np.ones(
            (1, 4, 2, 2, 1), "float32"
        )
        layer = SpatioTemporalPooling(spatial="avg", temporal="mean_std")
        out = keras.ops.convert_to_numpy(layer(np.concatenate([still, moving])))
        self.assertAllClose(out[:, 0], [0.5, 0.5])
        self.assertAllClose(out[:, 1], [1e-3, np.sqrt(0.25 + 1e-6)], atol=1e-6)

    def test_mean_std_gradient_is_finite_on_identical_frames(self):
        # The std of identical frames is sqrt(0 + eps): finite gradient to the GeM exponent.
        clip = np.tile(self.clip[:, :1], (1, 3, 1, 1, 1))
        self.run_gradient_test(SpatioTemporalPooling(temporal="mean_std"), clip)

    def test_layer_behaviors_mean_std(self):
        self.run_layer_test(
            SpatioTemporalPooling,
            init_kwargs={"spatial": "gem", "temporal": "mean_std"},
            input_data=self.clip,
            expected_output_shape=(2, 16),
            expected_num_trainable_weights=1,
        )

    def test_dynamic_shapes_in_functional_model(self):
        inputs = keras.Input((None, None, None, 8))
        outputs = SpatioTemporalPooling()(inputs)
        model = keras.Model(inputs, outputs)
        for t, h, w in ((3, 4, 2), (5, 2, 3)):
            clip = np.random.RandomState(t).rand(2, t, h, w, 8).astype("float32")
            self.assertAllClose(model(clip), oracle(clip, "gem"), atol=1e-5, rtol=1e-5)

    def test_bad_arguments(self):
        with self.assertRaisesRegex(ValueError, "spatial='median'"):
            SpatioTemporalPooling(spatial="median")
        with self.assertRaisesRegex(ValueError, "seq_len=0"):
            SpatioTemporalPooling(seq_len=0)
        with self.assertRaisesRegex(ValueError, "p=0"):
            SpatioTemporalPooling(p=0)
        with self.assertRaisesRegex(ValueError, "data_format"):
            SpatioTemporalPooling(data_format="nhwc")
        with self.assertRaisesRegex(ValueError, "temporal='max'"):
            SpatioTemporalPooling(temporal="max")

    def test_bad_inputs(self):
        with self.assertRaisesRegex(ValueError, "seq_len=None"):
            SpatioTemporalPooling()(np.ones((6, 4, 2, 8), "float32"))
        with self.assertRaisesRegex(ValueError, "not a multiple of seq_len=4"):
            SpatioTemporalPooling(seq_len=4)(np.ones((6, 4, 2, 8), "float32"))
        with self.assertRaisesRegex(ValueError, "rank 5"):
            SpatioTemporalPooling()(np.ones((6, 8), "float32"))

    def test_mixed_precision_output_dtype_and_values(self):
        layer = SpatioTemporalPooling(dtype="mixed_bfloat16")
        out = layer(self.clip)
        self.assertEqual(keras.backend.standardize_dtype(out.dtype), "bfloat16")
        self.assertAllClose(ops.cast(out, "float32"), oracle(self.clip, "gem"), atol=2e-2)
