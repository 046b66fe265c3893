import os

import keras
import numpy as np
from keras import ops

from keras_asanet.layers.feature_fusion import INPUT_KEYS, FeatureFusion
from keras_asanet.tests.test_case import TestCase


def make_features(batch=2, id_dim=4, attr_dim=6, seed=0):
    rng = np.random.RandomState(seed)
    widths = {"f_re_id": id_dim, "f_id": id_dim, "f_ir_id": id_dim}
    widths.update({"f_re_attr": attr_dim, "f_ir_attr": attr_dim + 1})
    return {k: rng.randn(batch, widths[k]).astype("float32") for k in INPUT_KEYS}


def to_np(x):
    return np.asarray(ops.convert_to_numpy(x))


class FeatureFusionTest(TestCase):
    def setUp(self):
        super().setUp()
        self.features = make_features()
        self.as_list = [self.features[k] for k in INPUT_KEYS]

    def test_layer_behaviors_list_input(self):
        # Strategy a with a projection of f_re_attr: 3 * 4 identity + 5 attribute.
        self.run_layer_test(
            FeatureFusion,
            init_kwargs={"strategy": "a", "attribute_dim": 5},
            input_data=self.as_list,
            expected_output_shape=(2, 17),
            expected_num_trainable_weights=2,
        )
        # The paper's strategy a is a plain concatenation: no weights.
        layer = FeatureFusion(strategy="a")
        self.assertEqual(tuple(layer(self.as_list).shape), (2, 18))
        self.assertEmpty(layer.weights)

    def test_dict_input_functional_saving_gradients_precision(self):
        init_kwargs = {"strategy": "b"}
        layer = FeatureFusion(**init_kwargs)
        out = layer(self.features)
        self.assertEqual(tuple(out.shape), (2, 18))  # 12 + width of f_re_attr (6)
        shapes = {k: v.shape for k, v in self.features.items()}
        self.assertEqual(layer.compute_output_shape(shapes), (2, 18))
        self.run_serialization_test(layer)
        inputs = {k: keras.Input((v.shape[1],), name=k) for k, v in self.features.items()}
        model = keras.Model(inputs, FeatureFusion(**init_kwargs)(inputs))
        expected = model.predict(self.features, verbose=0)
        self.assertAllClose(model(self.features), expected, atol=1e-6)
        path = os.path.join(self.get_temp_dir(), "fusion.keras")
        model.save(path)
        restored = keras.saving.load_model(path)
        self.assertAllClose(restored(self.features), expected, atol=1e-6)
        self.run_gradient_test(FeatureFusion(**init_kwargs), self.features)
        self.run_precision_test(FeatureFusion, init_kwargs, self.features)

    def test_strategy_a_oracle(self):
        f = self.features
        out = FeatureFusion(strategy="a")(f)
        expected = np.concatenate([f["f_re_id"], f["f_id"], f["f_ir_id"], f["f_re_attr"]], -1)
        self.assertAllEqual(out, expected)
        # f_ir_attr is not needed by strategy a.
        without_ir = {k: v for k, v in f.items() if k != "f_ir_attr"}
        self.assertAllEqual(FeatureFusion(strategy="a")(without_ir), expected)

    def test_strategy_a_with_projection_oracle(self):
        f = self.features
        layer = FeatureFusion(strategy="a", attribute_dim=3)
        out = layer(f)
        w = to_np(layer.attribute_dense.kernel)
        b = to_np(layer.attribute_dense.bias)
        self.assertEqual(w.shape, (6, 3))
        projected = f["f_re_attr"] @ w + b
        expected = np.concatenate([f["f_re_id"], f["f_id"], f["f_ir_id"], projected], -1)
        self.assertAllClose(out, expected, atol=1e-5)

    def test_strategy_b_oracle(self):
        f = self.features
        layer = FeatureFusion(strategy="b", attribute_dim=5)
        layer(f)
        rng = np.random.RandomState(3)
        layer.attribute_dense.bias.assign(rng.randn(5).astype("float32"))
        out = layer(f)
        w = to_np(layer.attribute_dense.kernel)
        self.assertEqual(w.shape, (6 + 7, 5))
        attributes = np.concatenate([f["f_re_attr"], f["f_ir_attr"]], -1)
        fused = attributes @ w + to_np(layer.attribute_dense.bias)
        expected = np.concatenate([f["f_re_id"], f["f_id"], f["f_ir_id"], fused], -1)
        self.assertAllClose(out, expected, atol=1e-5)

    def test_branch_ablations(self):
        f = self.features
        # Table IV: identity features only, any subset, always in re, id, ir order.
        layer = FeatureFusion(branches=("ir", "re"), use_attribute_features=False)
        self.assertEqual(layer.branches, ("re", "ir"))
        out = layer({"f_re_id": f["f_re_id"], "f_ir_id": f["f_ir_id"]})
        self.assertAllEqual(out, np.concatenate([f["f_re_id"], f["f_ir_id"]], -1))
        self.assertEmpty(layer.weights)
        single = FeatureFusion(branches="id", use_attribute_features=False)({"f_id": f["f_id"]})
        self.assertAllEqual(single, f["f_id"])
        # A list input may hold None for unused entries.
        layer = FeatureFusion(strategy="b", branches=("id",), attribute_dim=2)
        out = layer([None, f["f_id"], None, f["f_re_attr"], f["f_ir_attr"]])
        self.assertEqual(tuple(out.shape), (2, 4 + 2))
        self.assertAllEqual(to_np(out)[:, :4], f["f_id"])

    def test_bad_arguments(self):
        with self.assertRaisesRegex(ValueError, "strategy='c'"):
            FeatureFusion(strategy="c")
        with self.assertRaisesRegex(ValueError, "branches=\\('re', 'pose'\\)"):
            FeatureFusion(branches=("re", "pose"))
        with self.assertRaisesRegex(ValueError, "distinct"):
            FeatureFusion(branches=("re", "re"))
        with self.assertRaisesRegex(ValueError, "at least one"):
            FeatureFusion(branches=())
        with self.assertRaisesRegex(ValueError, "attribute_dim=0"):
            FeatureFusion(attribute_dim=0)

    def test_missing_and_unknown_inputs(self):
        f = dict(self.features)
        del f["f_ir_attr"]
        with self.assertRaisesRegex(ValueError, "missing \\['f_ir_attr'\\]"):
            FeatureFusion(strategy="b")(f)
        del f["f_id"]
        with self.assertRaisesRegex(ValueError, "missing \\['f_id'\\]"):
            FeatureFusion(strategy="a")(f)
        with self.assertRaisesRegex(ValueError, "unknown keys \\['f_pose'\\]"):
            FeatureFusion()(dict(self.features, f_pose=self.features["f_id"]))
        with self.assertRaisesRegex(ValueError, "list of 5"):
            FeatureFusion()(self.as_list[:4])
        with self.assertRaisesRegex(ValueError, "f_id.*rank 2"):
            FeatureFusion()(dict(self.features, f_id=np.ones((2, 3, 4), "float32")))
