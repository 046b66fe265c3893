import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
from keras import ops

from keras_asanet.losses.center_loss_test import _np_center
from keras_asanet.losses.label_smoothing_cross_entropy_test import _np_lsce
from keras_asanet.losses.multi_binary_attribute_loss import multi_binary_attribute_loss
from keras_asanet.losses.pmi_triplet_loss_test import _np_pmi
from keras_asanet.losses.weighted_regularization_triplet import weighted_regularization_triplet
from keras_asanet.losses.weighted_regularization_triplet_test import _np_wrt
from keras_asanet.models import ASANet
from keras_asanet.tests.cross_backend import partner_backends
from keras_asanet.tests.test_case import TestCase, compute_gradients
from keras_asanet.training import make_optimizer

TINY = dict(
    backbone={"block_counts": (1, 1, 1, 1), "width": 4, "non_local": (0, 1, 1, 0)},
    attribute_branch_blocks=1,
    branch_dim=8,
)


def _clips(b=4, t=2, h=32, w=16, seed=0):
    return np.random.default_rng(seed).uniform(0, 255, (b, t, h, w, 3)).astype("float32")


def _targets(b=4, ids=2, seed=0):
    rng = np.random.default_rng(seed)
    return {
        "pid": np.repeat(np.arange(ids), b // ids).astype("int32"),
        "camid": np.zeros(b, "int32"),
        "re_attr": (rng.random((b, 32)) > 0.5).astype("float32"),
        "ir_attr": (rng.random((b, 11)) > 0.5).astype("float32"),
        "attr_mask": np.array([1, 1, 0, 1][:b] + [1] * max(0, b - 4), "float32"),
    }


def tiny_model(**kwargs):
    config = dict(TINY, num_identities=3)
    config.update(kwargs)
    return ASANet(**config)


def _copy_by_path(source, target):
    """Copies the weights `target` shares with `source`, matched by variable path."""

    def key(v):  # the path below the model's own (auto-numbered) name
        return v.path.split("/", 1)[1]

    weights = {key(v): v for v in source.weights}
    for v in target.weights:
        v.assign(weights[key(v)])


def _open_non_local_blocks(model):
    # Non-local blocks start as the identity (zero output BN), which also blocks the
    # gradient of their inner convolutions; open them so every weight can be checked.
    for v in model.variables:
        if "non_local" in v.path and "w_bn" in v.path and v.name == "gamma":
            v.assign(np.ones(v.shape, "float32"))


class ASANetTest(TestCase):
    @classmethod
    def setUpClass(cls):
        # One called model for the read-only tests: a first eager call compiles every op
        # once on JAX, which is slow.
        cls.shared = tiny_model()
        cls.shared(_clips())

    def test_training_and_inference_outputs(self):
        model = self.shared
        x = _clips()
        out = model(x, training=True)
        self.assertEqual(
            set(out),
            {
                "id_logits",
                "f_final",
                "f_re_attr",
                "f_ir_attr",
                "re_attr_logits",
                "ir_attr_logits",
                "feature",
            },
        )
        c = 16 * 4  # backbone channels
        final = 3 * 8 + c // 2  # three identity features + f_re_attr (fusion a)
        self.assertEqual(tuple(out["f_final"].shape), (4, final))
        self.assertEqual(tuple(out["id_logits"].shape), (4, 3))
        self.assertEqual(tuple(out["re_attr_logits"].shape), (4, 32))
        self.assertEqual(tuple(out["ir_attr_logits"].shape), (4, 11))
        self.assertEqual(tuple(out["f_ir_attr"].shape), (4, c // 2))
        feature = model(x)
        self.assertEqual(tuple(feature.shape), (4, final))
        feature, masks = model(x, return_masks=True)
        self.assertEqual(tuple(masks["re_mask"].shape), (4, 2, 2, 1))
        self.assertEqual(tuple(masks["ir_mask"].shape), (4, 2, 2, 1))

    def test_t_and_image_size_free_at_inference(self):
        # Through predict, the way features are extracted: one compiled program per shape
        # (an eager call compiles every op again at each new shape on JAX).
        model = self.shared
        for b, t, h, w in ((2, 5, 64, 32), (1, 1, 48, 16)):
            features = model.predict(_clips(b=b, t=t, h=h, w=w), verbose=0)
            self.assertEqual(features.shape, (b, model.final_dim))
            self.assertTrue(np.isfinite(features).all())

    def test_eval_feature_is_bnneck_output_or_raw(self):
        x = _clips()
        model = tiny_model()
        model(x)
        for v in model.bn_neck.weights:
            if "moving_variance" in v.path:
                v.assign(np.full(v.shape, 4.0, "float32"))
        f_final = self.to_numpy(model(x, training=False, return_dict=True)["f_final"])
        # Inference BN with mean 0, variance 4 and no shift halves the feature.
        self.assertAllClose(model(x), f_final / np.sqrt(4.0 + 1e-5), atol=1e-4)
        raw = tiny_model(eval_feature="raw")
        raw(x)
        raw.set_weights(model.get_weights())
        self.assertAllClose(raw(x), f_final, atol=1e-5)

    def test_fusion_and_branch_switches_change_the_width(self):
        c = 64
        b = tiny_model(fusion="b")
        self.assertEqual(tuple(b(_clips()).shape), (4, 3 * 8 + c // 2))
        two = tiny_model(identity_branches=("re", "id"), fuse_attribute_features=False)
        self.assertEqual(tuple(two(_clips()).shape), (4, 2 * 8))

    def test_asre_switch_is_structural(self):
        x = _clips()
        on = tiny_model()
        off = tiny_model(use_asre=False)
        on(x)
        off(x)
        self.assertIsNone(off.re_asre)
        self.assertIsNone(off.ir_asre)
        asre_params = on.re_asre.count_params() + on.ir_asre.count_params()
        self.assertEqual(off.count_params(), on.count_params() - asre_params)
        _copy_by_path(on, off)
        # ASRE's alpha * M * X_I term makes the two differ; with alpha = 0 they agree.
        self.assertFalse(np.allclose(self.to_numpy(on(x)), self.to_numpy(off(x)), atol=1e-6))
        for asre in (on.re_asre, on.ir_asre):
            asre.alpha.assign(np.zeros(asre.alpha.shape, "float32"))
        self.assertAllClose(on(x), off(x), atol=1e-5)
        with self.assertRaisesRegex(ValueError, "use_asre=False"):
            off(x, return_masks=True)

    def test_every_variant_builds_only_what_it_uses(self):
        full = self.shared
        x = _clips()

        def size(*names):
            return sum(getattr(full, n).count_params() for n in names)

        c, d, m = 64, 8, 3  # backbone channels, branch_dim, identities

        def neck(final_dim):  # BN (gamma, moving mean / variance), classifier, centres
            return 3 * final_dim + 2 * final_dim * m

        full_neck = neck(3 * d + c // 2)
        variants = {
            "no heads": (
                dict(attribute_supervision=False, pmi=False),
                full.count_params() - size("re_attr_head", "ir_attr_head"),
            ),
            "id branch only": (
                dict(
                    identity_branches=("id",),
                    fuse_attribute_features=False,
                    attribute_supervision=False,
                    pmi=False,
                ),
                full.count_params()
                - size(
                    "re_attr_branch",
                    "ir_attr_branch",
                    "re_attr_head",
                    "ir_attr_head",
                    "f_re",
                    "f_ir",
                    "re_asre",
                    "ir_asre",
                    "w_re",
                    "w_ir",
                    "pool_re_attr",
                    "pool_ir_attr",
                )
                - full_neck
                + neck(d),
            ),
        }
        for label, (kwargs, expected) in variants.items():
            model = tiny_model(**kwargs)
            model(x)
            self.assertEqual(model.count_params(), expected, label)
        minimal = tiny_model(**variants["id branch only"][0])
        self.assertIsNone(minimal.re_attr_branch)
        self.assertIsNone(minimal.ir_attr_branch)
        self.assertIsNone(minimal.re_attr_head)
        out = minimal(x, training=True)
        self.assertNotIn("re_attr_logits", out)
        self.assertEqual(tuple(out["f_final"].shape), (4, d))
        with self.assertRaisesRegex(ValueError, "attribute_supervision"):
            tiny_model(attribute_supervision=False, pmi=True)

    def test_build_traces_symbolically_and_makes_the_weights_of_an_eager_call(self):
        # build_for_input traces a symbolic clip: no array reaches the layers (an eager
        # dummy clip made JAX compile every op one by one), and the weights are exactly
        # those the layers make when an eager clip builds them.
        seen = []

        def spying(backbone_map):
            def spy(x, **kwargs):
                try:
                    ops.convert_to_numpy(x)
                    seen.append("concrete")
                except Exception:  # a tracer / graph tensor / meta tensor: nothing computed
                    seen.append("symbolic")
                return backbone_map(x, **kwargs)

            return spy

        keras.utils.set_random_seed(3)
        traced = tiny_model()
        traced.backbone.backbone_map = spying(traced.backbone.backbone_map)
        traced.build_for_input((None, 2, 32, 16, 3))
        self.assertTrue(seen)
        self.assertEqual(set(seen), {"symbolic"})
        self.assertTrue(traced.built)
        self.assertEqual(traced.get_build_config(), {"input_shape": (1, 1, 32, 16, 3)})

        keras.utils.set_random_seed(3)
        eager = tiny_model()
        x = _clips()
        eager.call(ops.convert_to_tensor(x), training=False, return_dict=True)  # builds eagerly
        self.assertEqual(len(traced.weights), len(eager.weights))
        for a, b in zip(traced.weights, eager.weights):
            self.assertEqual((a.name, a.shape), (b.name, b.shape))
            np.testing.assert_array_equal(ops.convert_to_numpy(a), ops.convert_to_numpy(b))
        np.testing.assert_array_equal(
            ops.convert_to_numpy(traced(x, training=False)),
            ops.convert_to_numpy(eager(x, training=False)),
        )

    def test_every_layer_is_built_after_the_first_call(self):
        # Keras' JAX predict_on_batch runs the whole model eagerly before every compiled
        # batch while any layer reports unbuilt (the backbone did: ASANet reaches it through
        # backbone_map / id_map, never its __call__).
        x = _clips()
        for kwargs in ({}, {"use_asre": False}, {"fusion": "b"}, {"identity_branches": ("id",),
                       "fuse_attribute_features": False, "attribute_supervision": False,
                       "pmi": False}):  # fmt: skip
            model = tiny_model(**kwargs)
            model(x)
            unbuilt = [layer.name for layer in model._flatten_layers() if not layer.built]
            self.assertEqual(unbuilt, [], kwargs)
        path = os.path.join(self.get_temp_dir(), "built.keras")
        model.save(path)
        restored = keras.saving.load_model(path)
        self.assertEqual([la.name for la in restored._flatten_layers() if not la.built], [])

    def test_every_trainable_weight_of_every_variant_gets_a_gradient(self):
        x, y = _clips(), _targets()
        for kwargs in (
            dict(use_asre=False, fusion="b"),
            dict(attribute_supervision=False, pmi=False, identity_branches=("re", "id")),
            dict(identity_pooling="gem", fuse_attribute_features=False),
        ):
            model = tiny_model(**kwargs)
            model(x)
            _open_non_local_blocks(model)

            def loss_fn(model=model):
                return model.compute_loss(x, y, model(x, training=True), training=True)

            grads = compute_gradients(loss_fn, model.trainable_variables)
            for v, g in zip(model.trainable_variables, grads):
                self.assertIsNotNone(g, f"{kwargs}: {v.path}")
                self.assertGreater(
                    float(np.abs(self.to_numpy(g)).max()), 0.0, f"{kwargs}: {v.path}"
                )

    def test_total_loss_is_eq_19_and_reaches_every_weight(self):
        # Three clips per identity, so that the PMI triplets are not trivial (with two, the
        # nearest and farthest partner are the same clip and the term is 0).
        model = tiny_model()
        x, y = _clips(b=6), _targets(b=6, ids=2)
        model(x)
        model.pmi_weight_variable.assign(0.01)
        _open_non_local_blocks(model)

        def loss_fn():
            return model.compute_loss(x, y, model(x, training=True), training=True)

        total = float(self.to_numpy(loss_fn()))
        out = {k: self.to_numpy(v) for k, v in model(x, training=True).items()}
        pids = y["pid"]
        # Every term from the float64 numpy oracles of the loss tests, on the model's outputs
        # (none read from the model's own trackers).
        xent = _np_lsce(pids, out["id_logits"], model.label_smoothing).mean()
        wrt = _np_wrt(pids, out["f_final"]).mean()
        centers = self.to_numpy(model.class_centers.centers)
        center = _np_center(pids, out["f_final"], centers)
        pmi = _np_pmi(pids, out["f_final"], out["f_ir_attr"])
        self.assertGreater(pmi, 0.0)
        # L_BCE: one mean over the annotated tracklets and over all 43 slots of both heads.
        logits = np.concatenate([out["re_attr_logits"], out["ir_attr_logits"]], axis=-1)
        targets = np.concatenate([y["re_attr"], y["ir_attr"]], axis=-1)
        bce = np.maximum(logits, 0) - logits * targets + np.log1p(np.exp(-np.abs(logits)))
        bce = bce[y["attr_mask"] > 0].mean()
        self.assertEqual((model.center_loss_weight, model.bce_weight), (0.0005, 1.5))
        expected = xent + wrt + 0.0005 * center + 1.5 * bce + 0.01 * pmi
        # Tight enough to see the smallest term: 0.01 * L_PMI is 4e-5 to 1e-3 of a total of 4
        # to 11 here (the initial weights differ per backend); float32 rounding is < 1e-6.
        self.assertGreater(0.01 * pmi, 2e-5)
        self.assertAlmostEqual(total, expected, delta=1e-6 * max(1.0, abs(expected)))
        # Each term as tracked, too (what the progress bar and the lambda_PMI switch read).
        for key, value in (("xent", xent), ("wrt", wrt), ("bce", bce), ("pmi", pmi)):
            self.assertAllClose(model._trackers[key].result(), value, atol=1e-5, msg=key)
        grads = compute_gradients(loss_fn, model.trainable_variables)
        for v, g in zip(model.trainable_variables, grads):
            self.assertIsNotNone(g, v.path)
            self.assertGreater(float(np.abs(self.to_numpy(g)).max()), 0.0, v.path)

    def test_part_triplet_term_adds_the_triplet_of_each_identity_feature(self):
        # The same outputs scored with and without the part term: the totals differ by
        # exactly part_triplet_weight times the mean WRT (numpy oracle) of each identity
        # feature's columns of f_final.
        x, y = _clips(b=6), _targets(b=6, ids=2)
        model = tiny_model(part_triplet_weight=0.5)
        self.assertIn("part_wrt", [m.name for m in model.metrics])
        self.assertNotIn("part_wrt", [m.name for m in tiny_model().metrics])
        y_pred = model(x, training=True)
        total = float(self.to_numpy(model.compute_loss(x, y, y_pred)))
        tracked = self.to_numpy(model._trackers["part_wrt"].result())
        model.part_triplet_weight = 0.0
        base = float(self.to_numpy(model.compute_loss(x, y, y_pred)))
        model.part_triplet_weight = 0.5
        f_final, d = self.to_numpy(y_pred["f_final"]), model.branch_dim
        parts = [_np_wrt(y["pid"], f_final[:, i * d : (i + 1) * d]).mean() for i in range(3)]
        self.assertGreater(min(parts), 0.0)
        self.assertAlmostEqual(total - base, 0.5 * np.mean(parts), delta=1e-5 * abs(total))
        self.assertAllClose(tracked, np.mean(parts), atol=1e-5)
        self.assertEqual(model.get_config()["part_triplet_weight"], 0.5)
        self.assertEqual(ASANet.from_config(model.get_config()).part_triplet_weight, 0.5)
        for bad in (-1.0, float("nan"), True):
            with self.assertRaisesRegex(ValueError, "part_triplet_weight"):
                tiny_model(part_triplet_weight=bad)

    def test_loss_weight_readings(self):
        printed = ASANet.from_preset(
            "asanet_tiny", num_identities=3, loss_weights="printed", name="x"
        )
        self.assertEqual((printed.center_loss_weight, printed.bce_weight), (1.5, 0.0005))
        self.assertEqual(printed.name, "x")
        swapped = ASANet.from_preset("asanet_tiny", num_identities=3)
        self.assertEqual((swapped.center_loss_weight, swapped.bce_weight), (0.0005, 1.5))
        with self.assertRaisesRegex(ValueError, "loss_weights"):
            ASANet.from_preset("asanet_tiny", num_identities=3, loss_weights="doubled")
        with self.assertRaisesRegex(ValueError, "identity_pooling"):
            tiny_model(identity_pooling="max")

    def test_dtype_policy_reaches_every_sublayer(self):
        model = tiny_model(dtype="mixed_bfloat16")
        # Traced symbolically: the same layer calls, without compiling every op in bfloat16.
        out = model(keras.KerasTensor((4, 2, 32, 16, 3)), training=True, return_dict=True)
        self.assertEqual(keras.backend.standardize_dtype(out["f_final"].dtype), "bfloat16")
        self.assertEqual(keras.config.dtype_policy().name, "float32")  # global left alone
        for layer in model._flatten_layers(include_self=False):
            if layer is model.class_centers:
                continue
            self.assertEqual(layer.dtype_policy.name, "mixed_bfloat16", layer.name)
        self.assertTrue(all(v.dtype == "float32" for v in model.trainable_variables))

    def test_fit_evaluate_predict(self):
        model = tiny_model()
        x, y = _clips(b=8), _targets(b=8, ids=4)
        y["pid"] = y["pid"] % 3
        model.compile(optimizer=make_optimizer())
        history = model.fit(x, y, batch_size=8, epochs=2, verbose=0)
        for key in (
            "loss",
            "xent",
            "wrt",
            "center",
            "bce",
            "bce_re",
            "bce_ir",
            "pmi",
            "id_acc",
            "attr_acc",
            "pmi_weight",
        ):
            self.assertIn(key, history.history)
            self.assertTrue(np.isfinite(history.history[key]).all(), key)
        self.assertLess(history.history["center"][1], history.history["center"][0])
        logs = model.evaluate(x, y, batch_size=8, verbose=0, return_dict=True)
        self.assertTrue(np.isfinite(logs["loss"]))
        self.assertEqual(model.predict(x, verbose=0).shape, (8, model.final_dim))

    def test_inside_a_functional_model(self):
        model = self.shared
        inputs = keras.Input((2, 32, 16, 3))
        outputs = keras.layers.UnitNormalization()(model(inputs))
        wrapper = keras.Model(inputs, outputs)
        x = _clips()
        self.assertAllClose(
            wrapper.predict(x, verbose=0), keras.ops.normalize(model(x), order=2), atol=1e-5
        )

    def test_config_and_keras_file_round_trip(self):
        model = tiny_model(fusion="b", pmi=False)
        x = _clips()
        expected = model(x)
        revived = ASANet.from_config(model.get_config())
        self.assertEqual(revived.get_config(), model.get_config())
        path = os.path.join(self.get_temp_dir(), "asanet.keras")
        model.save(path)
        restored = keras.saving.load_model(path)
        self.assertIsInstance(restored, ASANet)
        self.assertAllClose(restored(x), expected, atol=1e-5)

    def test_presets(self):
        self.assertIn("asanet_b_pmi", ASANet.presets())
        model = ASANet.from_preset("asanet_tiny", num_identities=4, attribute_schema="duke")
        out = model(_clips(), training=True)
        self.assertEqual(tuple(out["re_attr_logits"].shape), (4, 25))
        with self.assertRaisesRegex(ValueError, "Unknown preset"):
            ASANet.from_preset("asanet_c", num_identities=4)

    def test_asre_mask_activation_reaches_both_masks_and_the_config(self):
        model = tiny_model(asre_mask_activation="sigmoid")
        _, masks = model(_clips(), return_masks=True)
        for name in ("re_mask", "ir_mask"):
            values = self.to_numpy(masks[name])
            self.assertTrue(((values > 0) & (values < 1)).all(), name)
        revived = ASANet.from_config(model.get_config())
        self.assertEqual(revived.get_config()["asre_mask_activation"], "sigmoid")
        self.assertIs(revived.ir_asre.mask_activation, keras.activations.sigmoid)
        self.assertIsNone(tiny_model().get_config()["asre_mask_activation"])  # the paper's

    def test_asre_softmax_over_reaches_both_asres_and_the_config(self):
        model = tiny_model(asre_softmax_over="identity_positions")
        _, masks = model(_clips(), return_masks=True)
        self.assertEqual(tuple(masks["re_mask"].shape)[:2], (4, 2))
        self.assertEqual(model.re_asre.softmax_over, "identity_positions")
        self.assertEqual(model.ir_asre.softmax_over, "identity_positions")
        revived = ASANet.from_config(model.get_config())
        self.assertEqual(revived.ir_asre.softmax_over, "identity_positions")
        self.assertEqual(tiny_model().re_asre.softmax_over, "attribute_positions")
        with self.assertRaisesRegex(ValueError, "asre_softmax_over must be one of"):
            tiny_model(asre_softmax_over="rows")

    def test_attribute_branch_gradients_keeps_identity_losses_out_of_the_branches(self):
        # The identity losses (here f_final's WRT triplet, which reads the fused f_re_attr
        # and both ASREs) reach the attribute branches under "all_losses" and not under
        # "attribute_loss"; the attribute BCE trains them either way, and the forward pass
        # is the same.
        x, y = _clips(), _targets()
        shared = tiny_model()
        shared(x)
        _open_non_local_blocks(shared)
        isolated = tiny_model(attribute_branch_gradients="attribute_loss")
        isolated(x)
        _copy_by_path(shared, isolated)
        self.assertAllClose(shared(x), isolated(x), atol=1e-6)

        def branch_grads(model, loss):
            def loss_fn():
                return loss(model(x, training=True))

            variables = [v for v in model.trainable_variables if "_attr_branch" in v.path]
            self.assertNotEmpty(variables)
            grads = compute_gradients(loss_fn, variables)
            return [0.0 if g is None else float(np.abs(self.to_numpy(g)).max()) for g in grads]

        def identity_loss(out):
            return ops.mean(weighted_regularization_triplet(y["pid"], out["f_final"]))

        def attribute_loss(out):
            return multi_binary_attribute_loss(
                ops.concatenate([y["re_attr"], y["ir_attr"]], axis=-1),
                ops.concatenate([out["re_attr_logits"], out["ir_attr_logits"]], axis=-1),
                y["attr_mask"],
            )

        self.assertGreater(max(branch_grads(shared, identity_loss)), 0.0)
        self.assertEqual(max(branch_grads(isolated, identity_loss)), 0.0)
        self.assertGreater(min(branch_grads(isolated, attribute_loss)), 0.0)
        self.assertEqual(
            ASANet.from_config(isolated.get_config()).attribute_branch_gradients,
            "attribute_loss",
        )
        with self.assertRaisesRegex(ValueError, "attribute_branch_gradients must be one of"):
            tiny_model(attribute_branch_gradients="none")

    def test_attribute_head_dropout_reaches_both_heads_and_round_trips(self):
        model = tiny_model(attribute_head_dropout=0.25)
        model(_clips(), training=False)
        for head in (model.re_attr_head, model.ir_attr_head):
            self.assertEqual(head.dropout, 0.25)
            self.assertIsNotNone(head.input_dropout)
        self.assertIsNone(tiny_model().re_attr_head.input_dropout)
        revived = ASANet.from_config(model.get_config())
        self.assertEqual(revived.attribute_head_dropout, 0.25)
        with self.assertRaisesRegex(ValueError, "attribute_head_dropout"):
            tiny_model(attribute_head_dropout=1.0)

    def test_attribute_positive_ratios_weight_the_joint_bce_only(self):
        rng = np.random.default_rng(3)
        ratios = rng.uniform(0.05, 0.95, 43).round(3).tolist()
        x, y = _clips(b=6), _targets(b=6, ids=2)
        model = tiny_model(attribute_positive_ratios=ratios)
        y_pred = model(x, training=True)
        total = float(self.to_numpy(model.compute_loss(x, y, y_pred)))
        weighted = self.to_numpy(model._trackers["bce"].result())
        plain_re = self.to_numpy(model._trackers["bce_re"].result())
        out = {k: self.to_numpy(v) for k, v in y_pred.items()}
        logits = np.concatenate([out["re_attr_logits"], out["ir_attr_logits"]], axis=-1)
        targets = np.concatenate([y["re_attr"], y["ir_attr"]], axis=-1)
        r = np.asarray(ratios)[None]
        w = targets * np.exp(1.0 - r) + (1.0 - targets) * np.exp(r)
        bce = np.maximum(logits, 0) - logits * targets + np.log1p(np.exp(-np.abs(logits)))
        annotated = y["attr_mask"] > 0
        self.assertAllClose(weighted, (w * bce)[annotated].mean(), atol=1e-5)
        # The tracked per-head means (the lambda_PMI switch reads bce_ir) stay unweighted.
        self.assertAllClose(plain_re, bce[annotated][:, :32].mean(), atol=1e-5)
        # The total moves by lambda_BCE times the difference of the two joint means.
        model.attribute_positive_ratios = None
        plain_total = float(self.to_numpy(model.compute_loss(x, y, y_pred)))
        self.assertAlmostEqual(
            total - plain_total,
            model.bce_weight * ((w * bce)[annotated].mean() - bce[annotated].mean()),
            delta=1e-5 * abs(total),
        )
        model.attribute_positive_ratios = tuple(ratios)
        revived = ASANet.from_config(model.get_config())
        self.assertEqual(revived.attribute_positive_ratios, tuple(ratios))
        self.assertIsNone(tiny_model().get_config()["attribute_positive_ratios"])
        with self.assertRaisesRegex(ValueError, "one ratio per attribute slot \\(43\\)"):
            tiny_model(attribute_positive_ratios=ratios[:32])
        with self.assertRaisesRegex(ValueError, "attribute_positive_ratios"):
            tiny_model(attribute_positive_ratios=[2.0] * 43)

    def test_ir_attr_temporal_mean_std_doubles_f_ir_attr_and_trains(self):
        model = tiny_model(ir_attr_temporal="mean_std", fusion="b")
        x = _clips()
        out = model(x, training=True)
        width = model.backbone_channels // 2
        self.assertEqual(tuple(out["f_ir_attr"].shape), (x.shape[0], 2 * width))
        self.assertEqual(tuple(out["f_re_attr"].shape), (x.shape[0], width))
        self.assertEqual(out["ir_attr_logits"].shape[-1], model.num_ir_attributes)
        # The std half is the temporal spread of the pooled frames: identical frames give
        # sqrt(eps), whatever the weights.
        still = np.repeat(x[:, :1], x.shape[1], axis=1)
        f_ir = self.to_numpy(model(still, training=True)["f_ir_attr"])
        self.assertAllClose(f_ir[:, width:], np.full_like(f_ir[:, width:], 1e-3), atol=1e-4)
        revived = ASANet.from_config(model.get_config())
        self.assertEqual(revived.get_config()["ir_attr_temporal"], "mean_std")
        self.assertEqual(tiny_model().get_config()["ir_attr_temporal"], "mean")  # the paper's
        with self.assertRaisesRegex(ValueError, "ir_attr_temporal must be one of"):
            tiny_model(ir_attr_temporal="max")

    def test_attribute_channels_set_both_attribute_maps_and_the_fused_width(self):
        c = 64  # 16 * width 4
        self.assertEqual(self.shared.get_config()["attribute_channels"], None)  # the paper's C/2
        model = tiny_model(attribute_channels=2 * c, fusion="b")
        x = _clips()
        out = model(x, training=True)
        self.assertEqual(tuple(out["f_re_attr"].shape), (x.shape[0], 2 * c))
        self.assertEqual(tuple(out["f_ir_attr"].shape), (x.shape[0], 2 * c))
        self.assertEqual(tuple(out["f_final"].shape), (x.shape[0], 3 * 8 + 2 * c))
        self.assertEqual(tuple(model.class_centers.centers.shape), (3, 3 * 8 + 2 * c))
        # The branches themselves are wider: their last block's expansion conv has 2C outputs
        # and C/2 inner channels (C/4 and C/8 at the paper's width).
        for branch in (model.re_attr_branch, model.ir_attr_branch):
            kernels = [v for v in branch.weights if v.name == "kernel"]
            self.assertEqual(kernels[-1].shape[-1], 2 * c)
            self.assertIn(c // 2, [k.shape[-1] for k in kernels])
        paper = tiny_model(fusion="b")
        paper(x)
        self.assertGreater(model.count_params(), paper.count_params())
        revived = ASANet.from_config(model.get_config())
        self.assertEqual(revived.attribute_channels, 2 * c)
        self.assertEqual(tuple(revived(x, training=True)["f_re_attr"].shape), (x.shape[0], 2 * c))
        for value in (6, 0, 2.0, True, "128"):
            with self.assertRaisesRegex(ValueError, f"attribute_channels .* got {value!r}"):
                tiny_model(attribute_channels=value)

    def test_channels_first_global_setting_changes_nothing(self):
        # Clips are (B, T, H, W, 3): every layer inside computes channels-last even when the
        # user's global image_data_format is channels_first.
        x = _clips()
        expected = self.to_numpy(self.shared(x))
        saved = keras.config.image_data_format()
        keras.config.set_image_data_format("channels_first")
        try:
            model = tiny_model()
            model(x)
            model.set_weights(self.shared.get_weights())
            self.assertAllClose(model(x), expected, atol=1e-5)
        finally:
            keras.config.set_image_data_format(saved)
        with self.assertRaisesRegex(ValueError, "ASANet computes channels-last"):
            tiny_model(backbone=dict(TINY["backbone"], data_format="channels_first"))

    def test_bad_inputs(self):
        model = self.shared
        with self.assertRaisesRegex(ValueError, "rank-4"):
            model(np.zeros((2, 32, 16, 3), "float32"))
        for channels in (1, 4):
            with self.assertRaisesRegex(ValueError, f"got {channels} channels"):
                model(np.zeros((2, 2, 32, 16, channels), "float32"))
        with self.assertRaisesRegex(ValueError, "T >= 1"):
            model(np.zeros((2, 0, 32, 16, 3), "float32"))
        with self.assertRaisesRegex(ValueError, "eval_feature"):
            tiny_model(eval_feature="pooled")

    def test_bad_arguments_name_the_argument_and_the_value(self):
        # Each of these used to become another model through int() / float().
        for value in (2.7, True, -1, "3"):
            with self.assertRaisesRegex(ValueError, f"num_identities .* got {value!r}"):
                tiny_model(num_identities=value)
        for value in (1.0, -0.1, 1.5):
            with self.assertRaisesRegex(ValueError, f"label_smoothing .* got {value!r}"):
                tiny_model(label_smoothing=value)
        for name in ("bce_weight", "center_loss_weight", "pmi_weight"):
            with self.assertRaisesRegex(ValueError, f"{name} must be .* >= 0, got -0.5"):
                tiny_model(**{name: -0.5})
        self.assertEqual(tiny_model(num_identities=np.int64(3)).num_identities, 3)
        self.assertEqual(tiny_model(num_identities=None).num_identities, 0)

    def test_checkpoint_with_other_attribute_sizes_is_refused(self):
        mars = tiny_model()
        mars(_clips())
        path = os.path.join(self.get_temp_dir(), "mars.weights.h5")
        mars.save_weights(path)
        duke = tiny_model(num_re_attributes=25)
        duke(_clips())
        with self.assertRaises(ValueError):
            duke.load_weights(path)


@pytest.mark.heavy
@pytest.mark.subprocess
class ASANetCrossBackendTest(TestCase):
    def test_same_features_on_every_backend(self):
        """A saved model gives the same features on the partner backend (see
        `keras_asanet.tests.cross_backend`: over the three runs every pair is compared)."""
        model = tiny_model()
        x = _clips(b=2)
        expected = self.to_numpy(model(x))
        tmp = self.get_temp_dir()
        path = os.path.join(tmp, "model.keras")
        model.save(path)
        np.save(os.path.join(tmp, "x.npy"), x)
        script = textwrap.dedent(
            f"""
            import numpy as np, keras
            import keras_asanet.models
            model = keras.saving.load_model({path!r})
            x = np.load({os.path.join(tmp, "x.npy")!r})
            np.save({os.path.join(tmp, "out.npy")!r}, keras.ops.convert_to_numpy(model(x)))
            """
        )
        root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        for backend in partner_backends():
            env = dict(os.environ, KERAS_BACKEND=backend, PYTHONPATH=root)
            subprocess.run([sys.executable, "-c", script], env=env, check=True, timeout=300)
            out = np.load(os.path.join(tmp, "out.npy"))
            np.testing.assert_allclose(out, expected, atol=1e-4, err_msg=backend)


@pytest.mark.large
class ASANetFullSizeTest(TestCase):
    def test_asanet_b_at_256x128(self):
        # The output shapes from a symbolic call (no compute), then one real training step,
        # which runs the whole network forward and backward once: each compile of the full
        # network costs about a minute on CPU, so there is one. On TensorFlow the step runs
        # eagerly: tracing and optimising the ResNet-50 graph took 185 s against 39 s for an
        # eager step (the compiled paths are checked on the tiny model).
        model = ASANet.from_preset("asanet_b", num_identities=625)
        out = model(keras.KerasTensor((1, 6, 256, 128, 3)), return_dict=True)
        self.assertEqual(tuple(out["feature"].shape), (1, 3 * 256 + 512))
        self.assertEqual(tuple(out["id_logits"].shape), (1, 625))
        self.assertEqual(tuple(out["re_attr_logits"].shape), (1, 32))
        self.assertEqual(tuple(out["ir_attr_logits"].shape), (1, 11))
        self.assertEqual(tuple(out["f_final"].shape), (1, 3 * 256 + 1024 // 2))
        self.assertGreater(model.count_params(), 30_000_000)
        # One training step at full resolution (2 identities x 2 clips, T = 2).
        eager = keras.backend.backend() == "tensorflow"
        model.compile(optimizer=make_optimizer(), run_eagerly=eager)
        x = _clips(b=4, t=2, h=256, w=128)
        y = _targets(b=4, ids=2)
        before = [keras.ops.convert_to_numpy(v) for v in model.trainable_variables[:3]]
        logs = model.train_on_batch(x, y, return_dict=True)
        self.assertTrue(np.isfinite(logs["loss"]))
        after = [keras.ops.convert_to_numpy(v) for v in model.trainable_variables[:3]]
        self.assertTrue(any(not np.array_equal(a, b) for a, b in zip(after, before)))


@pytest.mark.heavy
class ASANetPrecisionTest(TestCase):
    # One policy keeps CI short: mixed_float16 is the one that wraps the MultiOptimizer in a
    # LossScaleOptimizer; every layer is also checked under mixed_bfloat16 by run_layer_test.
    def test_trains_under_mixed_precision(self, policy="mixed_float16", jit_compile="auto"):
        keras.config.set_dtype_policy(policy)
        model = tiny_model()
        x, y = _clips(b=4), _targets(b=4)
        # The training outputs' dtype, traced symbolically (no eager run of every op).
        out = model(keras.KerasTensor(x.shape), training=True, return_dict=True)
        compute = "float16" if policy == "mixed_float16" else "bfloat16"
        self.assertEqual(keras.backend.standardize_dtype(out["f_final"].dtype), compute)
        model.compile(optimizer=make_optimizer(), jit_compile=jit_compile)
        history = model.fit(x, y, batch_size=4, epochs=1, verbose=0)
        self.assertTrue(np.isfinite(history.history["loss"]).all())
        self.assertTrue(all(v.dtype == "float32" for v in model.trainable_variables))
        # Inference under the policy, traced symbolically: a real `predict` would trace and
        # compile a third function (about 20 s on TensorFlow) for what the symbolic call and
        # test_fit_evaluate_predict already show.
        feature = model(keras.KerasTensor(x.shape))
        self.assertEqual(tuple(feature.shape), (4, model.final_dim))
        self.assertEqual(keras.backend.standardize_dtype(feature.dtype), compute)
