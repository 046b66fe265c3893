import keras
import numpy as np
from keras import ops

from keras_asanet.layers.fused_batch_norm import FusedBatchNormalization
from keras_asanet.tests.test_case import TestCase, compute_gradients


def _pair(**kwargs):
    """A FusedBatchNormalization and a Keras BatchNormalization with the same weights."""
    fused = FusedBatchNormalization(**kwargs)
    plain = keras.layers.BatchNormalization(**kwargs)
    return fused, plain


def _randomise(layer, shape, seed):
    """Non-trivial gamma / beta / moving statistics, so a swapped or dropped term shows."""
    rng = np.random.RandomState(seed)
    channels = shape[layer.axis]
    for weight in layer.weights:
        if "variance" in weight.path:
            weight.assign(rng.uniform(0.5, 2.0, channels).astype("float32"))
        else:
            weight.assign(rng.randn(channels).astype("float32"))


class FusedBatchNormalizationTest(TestCase):
    def setUp(self):
        super().setUp()
        rng = np.random.RandomState(0)
        # Channels on axis 1 (the fused case on torch), an offset and a scale per channel.
        self.maps = (rng.randn(4, 6, 5, 3) * 3.0 + 2.0).astype("float32")
        self.features = (rng.randn(8, 6) * 2.0 - 1.0).astype("float32")

    def test_layer_behaviors(self):
        self.run_layer_test(
            FusedBatchNormalization,
            init_kwargs={"axis": 1, "momentum": 0.9, "epsilon": 1e-5},
            input_data=self.maps,
            expected_output_shape=(4, 6, 5, 3),
            expected_num_trainable_weights=2,
            expected_num_non_trainable_weights=2,
        )

    def _check_same_as_keras(self, x, training, **kwargs):
        fused, plain = _pair(**kwargs)
        for layer in (fused, plain):
            layer.build(x.shape)
            _randomise(layer, x.shape, seed=1)
        out_fused = fused(x, training=training)
        out_plain = plain(x, training=training)
        self.assertAllClose(out_fused, out_plain, atol=2e-5, rtol=2e-5)
        for a, b in zip(fused.non_trainable_weights, plain.non_trainable_weights):
            self.assertAllClose(a, b, atol=1e-6, rtol=1e-5, msg=a.path)

    def test_training_matches_keras_channels_first_maps(self):
        fused, plain = _pair(axis=1, momentum=0.8)
        for layer in (fused, plain):
            layer.build(self.maps.shape)
            _randomise(layer, self.maps.shape, seed=1)
        start = self.to_numpy(fused.moving_variance)
        self.assertAllClose(
            fused(self.maps, training=True), plain(self.maps, training=True), atol=2e-5
        )
        for a, b in zip(fused.non_trainable_weights, plain.non_trainable_weights):
            self.assertAllClose(a, b, atol=1e-6, rtol=1e-5, msg=a.path)
        # Keras' update: moving * momentum + batch * (1 - momentum), biased batch variance.
        self.assertAllClose(
            fused.moving_variance,
            0.8 * start + 0.2 * self.maps.var(axis=(0, 2, 3)),
            atol=1e-5,
            rtol=1e-4,
        )

    def test_stateless_call_returns_the_moving_statistics(self):
        """Through `stateless_call` the updated statistics come back in the returned state
        and the layer's own variables stay as they were (torch updates them in place
        otherwise; the in-place update must not reach a stateless call's inputs)."""
        for axis in (1, -1):
            fused, plain = _pair(axis=axis, momentum=0.7)
            for layer in (fused, plain):
                layer.build(self.maps.shape)
                _randomise(layer, self.maps.shape, seed=4)
            before = [self.to_numpy(v) for v in fused.non_trainable_variables]
            given = [ops.convert_to_tensor(np.copy(v)) for v in before]
            trainable = [v.value for v in fused.trainable_variables]
            _, state = fused.stateless_call(trainable, given, self.maps, training=True)
            plain(self.maps, training=True)
            for new, old, expected, held, passed in zip(
                state, before, plain.non_trainable_variables, fused.non_trainable_variables, given
            ):
                self.assertAllClose(new, expected, atol=1e-6, rtol=1e-5)
                self.assertAllEqual(held, old)
                self.assertAllEqual(passed, old)

    def test_inference_matches_keras(self):
        self._check_same_as_keras(self.maps, False, axis=1)
        self._check_same_as_keras(self.features, False, axis=-1, center=False)

    def test_features_and_channels_last_match_keras(self):
        self._check_same_as_keras(self.features, True, axis=-1)
        self._check_same_as_keras(self.features, True, axis=-1, center=False)
        # Channels last: Keras' own path on every backend.
        self._check_same_as_keras(self.maps, True, axis=-1)

    def test_frozen_layer_uses_moving_statistics(self):
        for axis in (1, -1):  # torch's and TensorFlow's fused paths
            fused, plain = _pair(axis=axis)
            for layer in (fused, plain):
                layer.build(self.maps.shape)
                _randomise(layer, self.maps.shape, seed=2)
                layer.trainable = False
            before = self.to_numpy(fused.moving_mean)
            self.assertAllClose(
                fused(self.maps, training=True), plain(self.maps, training=True), atol=2e-5
            )
            self.assertAllClose(fused.moving_mean, before)

    def _check_gradients_as_keras(self, axis, training, seed):
        """Gradients in the inputs, gamma and beta equal Keras' own layer's."""
        fused, plain = _pair(axis=axis)
        for layer in (fused, plain):
            layer.build(self.maps.shape)
            _randomise(layer, self.maps.shape, seed=seed)
        weights = ops.convert_to_tensor(
            np.random.RandomState(seed + 1).randn(*self.maps.shape).astype("float32")
        )
        grads = []
        for layer in (fused, plain):
            x = keras.Variable(self.maps, name="x")

            def loss_fn(layer=layer, x=x):
                return ops.sum(layer(x, training=training) * weights)

            grads.append(compute_gradients(loss_fn, [x, layer.gamma, layer.beta]))
        for a, b in zip(*grads):
            self.assertAllClose(a, b, atol=1e-4, rtol=1e-4)

    def test_gradients_match_keras(self):
        self._check_gradients_as_keras(axis=1, training=True, seed=3)

    def test_mixed_precision_statistics_in_float32(self):
        x = self.maps.astype("float16")
        fused = FusedBatchNormalization(axis=1, dtype="mixed_float16")
        plain = keras.layers.BatchNormalization(axis=1, dtype="mixed_float16")
        out_fused = fused(x, training=True)
        out_plain = plain(x, training=True)
        self.assertEqual(keras.backend.standardize_dtype(out_fused.dtype), "float16")
        self.assertEqual(keras.backend.standardize_dtype(fused.moving_mean.dtype), "float32")
        self.assertAllClose(out_fused, out_plain, atol=5e-3, rtol=5e-3)

    def test_fused_kernel_is_used_on_torch_only_for_channels_on_axis_1(self):
        fused = FusedBatchNormalization(axis=1)
        last = FusedBatchNormalization(axis=-1)
        on_torch = keras.backend.backend() == "torch"
        self.assertEqual(fused._fused_kernel_applies(self.maps, None), on_torch)
        self.assertFalse(last._fused_kernel_applies(self.maps, None))
        self.assertEqual(last._fused_kernel_applies(self.features, None), on_torch)
        self.assertFalse(fused._fused_kernel_applies(self.maps, np.ones((4, 5, 3), bool)))
        if on_torch:
            # The output comes from PyTorch's batch-norm kernel, not from elementwise ops.
            x = ops.convert_to_tensor(self.maps)
            x.requires_grad_(True)
            out = fused(x, training=True)
            self.assertIn("BatchNorm", type(out.grad_fn).__name__)

    def test_tensorflow_kernel_on_channels_last_maps_only(self):
        on_tf = keras.backend.backend() == "tensorflow"
        maps_last = FusedBatchNormalization(axis=-1)
        maps_first = FusedBatchNormalization(axis=1)
        self.assertEqual(maps_last._tf_kernel_applies(self.maps, None), on_tf)
        self.assertFalse(maps_first._tf_kernel_applies(self.maps, None))
        self.assertFalse(maps_last._tf_kernel_applies(self.features, None))
        self.assertFalse(maps_last._tf_kernel_applies(self.maps.astype("float64"), None))
        self.assertFalse(maps_last._tf_kernel_applies(self.maps, np.ones((4, 6, 5), bool)))
        if on_tf:
            import tensorflow as tf

            maps_last.build(self.maps.shape)
            for training in (False, True):
                graph = tf.function(lambda x, training=training: maps_last(x, training=training))
                concrete = graph.get_concrete_function(self.maps)
                op_types = {op.type for op in concrete.graph.get_operations()}
                self.assertIn("FusedBatchNormV3", op_types)
                self.assertNotIn("Rsqrt", op_types)  # none of Keras' elementwise ops

    def test_channels_last_training_matches_keras(self):
        # TensorFlow's fused op returns the variance with Bessel's correction; the moving
        # variance must still fold in the biased one, as Keras does.
        fused, plain = _pair(axis=-1, momentum=0.8)
        for layer in (fused, plain):
            layer.build(self.maps.shape)
            _randomise(layer, self.maps.shape, seed=8)
        start = self.to_numpy(fused.moving_variance)
        self.assertAllClose(
            fused(self.maps, training=True), plain(self.maps, training=True), atol=2e-5
        )
        self.assertAllClose(
            fused.moving_variance,
            0.8 * start + 0.2 * self.maps.var(axis=(0, 1, 2)),
            atol=1e-5,
            rtol=1e-4,
        )
        for a, b in zip(fused.non_trainable_weights, plain.non_trainable_weights):
            self.assertAllClose(a, b, atol=1e-6, rtol=1e-5, msg=a.path)

    def test_channels_last_outputs_and_gradients_match_keras(self):
        # The TensorFlow fused op's path (channels last), against Keras' own, in training and
        # at inference (saliency maps differentiate a model at inference).
        for training in (False, True):
            self._check_same_as_keras(self.maps, training, axis=-1, center=False, scale=False)
            self._check_gradients_as_keras(axis=-1, training=training, seed=5)

    def test_mixed_precision_channels_last(self):
        x = self.maps.astype("float16")
        for training in (False, True):
            fused = FusedBatchNormalization(axis=-1, dtype="mixed_float16")
            plain = keras.layers.BatchNormalization(axis=-1, dtype="mixed_float16")
            for layer in (fused, plain):
                layer.build(x.shape)
                _randomise(layer, x.shape, seed=7)
            out_fused = fused(x, training=training)
            self.assertEqual(keras.backend.standardize_dtype(out_fused.dtype), "float16")
            self.assertEqual(keras.backend.standardize_dtype(fused.moving_mean.dtype), "float32")
            self.assertAllClose(out_fused, plain(x, training=training), atol=5e-3, rtol=5e-3)

    def test_serialization(self):
        layer = FusedBatchNormalization(axis=1, momentum=0.7, epsilon=1e-4)
        restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
        self.assertIsInstance(restored, FusedBatchNormalization)
        self.assertEqual(restored.get_config(), layer.get_config())
