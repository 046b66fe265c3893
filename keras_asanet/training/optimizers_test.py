import inspect
import os
import re

import keras
import numpy as np
import pytest

from keras_asanet.tests.test_case import TestCase
from keras_asanet.training.optimizers import (
    ASRE_ATTENTION,
    ATTRIBUTE_HEADS,
    MIN_KERAS_VERSION,
    CoupledWeightDecayAdam,
    decay_exclusions,
    make_optimizer,
    step_decay_schedule,
)


class _Centers(keras.layers.Layer):
    def build(self, input_shape):
        self.centers = self.add_weight(shape=(3, 2), initializer="ones", name="centers")

    def call(self, x):
        return x + 0.0 * self.centers[0]


class _ToyModel(keras.Model):
    """y = Dense(x); loss = sum(y^2) + sum((y[:, :2] - c_0)^2): both parts have gradients."""

    def __init__(self):
        super().__init__(name="toy_model")
        self.dense = keras.layers.Dense(2, kernel_initializer="ones", bias_initializer="zeros")
        self.centers = _Centers(name="center_table")

    def call(self, x):
        return self.centers(self.dense(x))

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        c0 = self.centers.centers[0]
        return keras.ops.sum(y_pred**2) + keras.ops.sum((y_pred - c0) ** 2)


def _numpy_torch_adam(w, g, lr, wd, steps, b1=0.9, b2=0.999, eps=1e-8):
    m = np.zeros_like(w)
    v = np.zeros_like(w)
    for t in range(1, steps + 1):
        grad = g(w) + wd * w
        m = b1 * m + (1 - b1) * grad
        v = b2 * v + (1 - b2) * grad**2
        w = w - lr / (1 - b1**t) * m / (np.sqrt(v) / np.sqrt(1 - b2**t) + eps)
    return w


class OptimizersTest(TestCase):
    def test_coupled_decay_matches_torch_adam(self):
        w0 = np.array([1.0, -2.0, 0.5], "float32")
        var = keras.Variable(w0)
        opt = CoupledWeightDecayAdam(learning_rate=0.1, weight_decay=0.05)
        for _ in range(5):
            grad = 2 * np.asarray(keras.ops.convert_to_numpy(var.value))  # d/dw sum(w^2)
            opt.apply([keras.ops.convert_to_tensor(grad)], [var])
        expected = _numpy_torch_adam(w0.astype("float64"), lambda w: 2 * w, 0.1, 0.05, 5)
        self.assertAllClose(var.value, expected, atol=1e-5)

    def test_many_variables_some_undecayed_match_torch_adam_each(self):
        # Several variables in one apply, the attribute head's excluded from the decay by its
        # path: on torch the update runs over all of them at once (torch_adam_step),
        # elsewhere per variable; each must follow torch.optim.Adam with its own decay.
        head = keras.layers.Dense(2, name="re_attr_head")
        body = keras.layers.Dense(3, name="backbone_conv")
        x = np.ones((1, 2), "float32")
        head(x), body(x)
        variables = [body.kernel, body.bias, head.kernel]
        rng = np.random.default_rng(0)
        w0 = [rng.normal(size=v.shape).astype("float32") for v in variables]
        for v, w in zip(variables, w0):
            v.assign(w)
        opt = CoupledWeightDecayAdam(
            learning_rate=0.05, weight_decay=0.1, weight_decay_exclude=ATTRIBUTE_HEADS
        )
        # A small constant gradient: the decay term (0.1 w) then sets the direction of a
        # decayed weight's steps, so a decay applied to the wrong variables is visible.
        for _ in range(4):
            opt.apply([keras.ops.full(v.shape, 0.01) for v in variables], variables)
        for i, w in enumerate(w0):
            decay = 0.0 if variables[i] is head.kernel else 0.1
            expected = _numpy_torch_adam(w.astype("float64"), lambda x: 0.01, 0.05, decay, 4)
            self.assertAllClose(variables[i].value, expected, atol=1e-5, msg=variables[i].path)

    @pytest.mark.only_backends("torch")
    def test_torch_update_is_keras_torch_adam_step_to_the_bit(self):
        """The all-at-once torch update is Keras' own torch Adam step (its `foreach`
        `_parallel_update_step`) on the gradients plus the L2 term, operation for operation:
        equal to the bit over steps in which its cached tensor lists are reused."""
        import torch
        from keras.src.backend.torch.optimizers.torch_adam import Adam as KerasTorchAdam

        from keras_asanet.training import torch_adam_step

        rng = np.random.default_rng(1)
        shapes = [(3, 4), (4,), (2, 2)]
        w0 = [rng.normal(size=s).astype("float32") for s in shapes]
        runs = []
        for ours in (True, False):
            variables = [keras.Variable(w, name=f"w{i}") for i, w in enumerate(w0)]
            opt = CoupledWeightDecayAdam(learning_rate=0.01, weight_decay=0.05)
            opt.build(variables)
            grads_rng = np.random.default_rng(2)
            for _ in range(6):
                grads = [
                    torch.from_numpy(grads_rng.normal(size=s).astype("float32")) for s in shapes
                ]
                lr = opt._get_current_learning_rate()
                if ours:
                    torch_adam_step.coupled_adam_update(opt, grads, variables, lr)
                else:
                    with torch.no_grad():
                        decayed = torch._foreach_add(
                            grads, [v.value for v in variables], alpha=0.05
                        )
                        KerasTorchAdam._parallel_update_step(opt, decayed, variables, lr)
                opt.iterations.assign_add(1)
            runs.append([keras.ops.convert_to_numpy(v) for v in variables])
        for a, b in zip(*runs):
            self.assertAllEqual(a, b)

    def test_update_follows_changed_variables(self):
        """Applying to another set of variables (one swapped) updates exactly those: nothing
        of an earlier call's variables is reused for them."""
        a = keras.Variable(np.array([1.0, -1.0], "float32"), name="a")
        b = keras.Variable(np.array([2.0], "float32"), name="b")
        c = keras.Variable(np.array([3.0, 0.5], "float32"), name="c")
        opt = CoupledWeightDecayAdam(learning_rate=0.1, weight_decay=0.0, epsilon=1e-7)
        opt.build([a, b, c])
        opt.apply([keras.ops.ones((2,)), keras.ops.ones((1,))], [a, b])
        opt.apply([keras.ops.ones((2,)), keras.ops.ones((2,))], [a, c])

        def adam(w, grads, first_step):
            """Keras' Adam from `first_step` (the optimiser's step counter is shared)."""
            m = v = 0.0
            for t, g in enumerate(grads, start=first_step):
                m, v = 0.9 * m + 0.1 * g, 0.999 * v + 0.001 * g * g
                w = w - 0.1 * np.sqrt(1 - 0.999**t) / (1 - 0.9**t) * m / (np.sqrt(v) + 1e-7)
            return w

        self.assertAllClose(a.value, adam(np.array([1.0, -1.0]), [1.0, 1.0], 1), atol=1e-5)
        self.assertAllClose(b.value, adam(np.array([2.0]), [1.0], 1), atol=1e-5)
        self.assertAllClose(c.value, adam(np.array([3.0, 0.5]), [1.0], 2), atol=1e-5)

    def test_decoupled_decay_is_keras_adamw_like(self):
        var = keras.Variable(np.ones(3, "float32"))
        opt = CoupledWeightDecayAdam(
            learning_rate=0.1, weight_decay=0.1, decoupled_weight_decay=True
        )
        opt.apply([keras.ops.zeros(3)], [var])
        # Zero gradient: only the decoupled decay w -= lr * wd * w acts.
        self.assertAllClose(var.value, np.full(3, 1 - 0.01), atol=1e-6)

    def test_excluded_paths_get_no_decay_coupled_or_decoupled(self):
        heads = keras.layers.Dense(2, name="re_attr_head")
        body = keras.layers.Dense(2, name="backbone_conv")
        x = np.ones((1, 2), "float32")
        heads(x), body(x)
        for decoupled in (False, True):
            opt = CoupledWeightDecayAdam(
                learning_rate=0.1,
                weight_decay=0.1,
                decoupled_weight_decay=decoupled,
                weight_decay_exclude=ATTRIBUTE_HEADS,
            )
            variables = [heads.kernel, body.kernel]
            before = [self.to_numpy(v.value) for v in variables]
            # A zero gradient: only the decay moves a weight.
            opt.apply([keras.ops.zeros_like(v.value) for v in variables], variables)
            self.assertAllClose(
                self.to_numpy(heads.kernel.value), before[0], atol=0, msg="excluded"
            )
            self.assertFalse(np.allclose(self.to_numpy(body.kernel.value), before[1]))
            self.assertEqual(opt.get_config()["weight_decay_exclude"], ATTRIBUTE_HEADS)
        # The pattern matches the heads of an ASANet by path, and nothing else of it.
        self.assertRegex("asanet_tiny/ir_attr_head/dense/kernel", ATTRIBUTE_HEADS)
        self.assertNotRegex("asanet_tiny/re_attr_branch/conv/kernel", ATTRIBUTE_HEADS)
        with self.assertRaisesRegex(ValueError, "regular expression"):
            CoupledWeightDecayAdam(weight_decay_exclude="(unclosed")

    def test_asre_attention_pattern_and_exclusion_union_match_an_asanet_by_path(self):
        from keras_asanet.models import ASANet

        model = ASANet.from_preset("asanet_tiny", num_identities=4)
        model.build_for_input((None, 2, 32, 16, 3))
        paths = [v.path for v in model.trainable_weights]

        def matched(pattern):
            return {p for p in paths if re.search(pattern, p)}

        expected = {
            f"asanet_tiny/{branch}_asre/{conv}_conv/{weight}"
            for branch in ("re", "ir")
            for conv in ("query", "key")
            for weight in ("kernel", "bias")
        }
        # Only the query / key convolutions: the value / mask convolutions and alpha still decay.
        self.assertEqual(matched(ASRE_ATTENTION), expected)
        heads = matched(ATTRIBUTE_HEADS)
        self.assertTrue(heads)
        both = decay_exclusions(ATTRIBUTE_HEADS, None, ASRE_ATTENTION)
        self.assertEqual(matched(both), heads | expected)
        # One pattern is passed on as it is; none gives None (nothing excluded).
        self.assertEqual(decay_exclusions(None, ATTRIBUTE_HEADS), ATTRIBUTE_HEADS)
        self.assertIsNone(decay_exclusions(None, None))

    def test_centers_get_sgd_scaled_by_lambda_and_network_gets_adam(self):
        model = _ToyModel()
        x = np.array([[1.0, 2.0]], "float32")
        model(x)
        model.compile(
            optimizer=make_optimizer(
                learning_rate=0.01,
                weight_decay=0.0,
                center_learning_rate=0.5,
                center_loss_weight=2.0,
            )
        )
        c_before = np.asarray(keras.ops.convert_to_numpy(model.centers.centers.value))
        k_before = np.asarray(keras.ops.convert_to_numpy(model.dense.kernel.value))
        model.fit(x, np.zeros((1, 2)), epochs=1, batch_size=1, verbose=0)
        c_after = np.asarray(keras.ops.convert_to_numpy(model.centers.centers.value))
        k_after = np.asarray(keras.ops.convert_to_numpy(model.dense.kernel.value))
        y = x @ k_before  # [[3, 3]]
        grad_c0 = -2 * (y[0] - c_before[0])  # d/dc0 of sum((y - c0)^2)
        expected = c_before.copy()
        expected[0] -= 0.5 / 2.0 * grad_c0
        self.assertAllClose(c_after, expected, atol=1e-5)
        # Adam's first step moves every weight with a non-zero gradient by ~lr.
        self.assertAllClose(np.abs(k_after - k_before), np.full((2, 2), 0.01), atol=1e-4)

    def test_step_decay_schedule(self):
        schedule = step_decay_schedule(3e-4, [2, 5], steps_per_epoch=10)
        values = [float(keras.ops.convert_to_numpy(schedule(s))) for s in (0, 19, 20, 49, 50)]
        self.assertAllClose(values, [3e-4, 3e-4, 3e-5, 3e-5, 3e-6], atol=1e-12)

    def test_serialization(self):
        opt = CoupledWeightDecayAdam(learning_rate=1e-3, weight_decay=1e-4)
        revived = keras.optimizers.deserialize(keras.optimizers.serialize(opt))
        self.assertIsInstance(revived, CoupledWeightDecayAdam)
        self.assertFalse(revived.decoupled_weight_decay)
        self.assertIsNone(revived.weight_decay_exclude)
        opt = CoupledWeightDecayAdam(weight_decay_exclude=ATTRIBUTE_HEADS)
        revived = keras.optimizers.deserialize(keras.optimizers.serialize(opt))
        self.assertEqual(revived.weight_decay_exclude, ATTRIBUTE_HEADS)

    def test_bad_arguments(self):
        with self.assertRaisesRegex(ValueError, "learning_rate"):
            step_decay_schedule(0.0, [1], 1)
        with self.assertRaisesRegex(ValueError, "lambda_cent"):
            make_optimizer(center_loss_weight=0)


class KerasVersionTest(TestCase):
    def test_old_keras_without_multi_optimizer_gets_a_clear_import_error(self):
        saved = keras.optimizers.MultiOptimizer
        del keras.optimizers.MultiOptimizer  # as in Keras < 3.15
        try:
            with self.assertRaisesRegex(ImportError, r"MultiOptimizer.*Keras 3\.15.*keras>=3\.15"):
                make_optimizer()
        finally:
            keras.optimizers.MultiOptimizer = saved
        self.assertIsInstance(make_optimizer(), keras.optimizers.MultiOptimizer)

    def test_default_center_loss_weight_is_the_models(self):
        # make_optimizer() must fit ASANet() as it comes: with the printed 1.5 here and
        # 0.0005 in the model, the centres' SGD ran 3,000x slower than in a training run.
        from keras_asanet.models import ASANet

        default = inspect.signature(make_optimizer).parameters["center_loss_weight"].default
        self.assertEqual(default, ASANet(num_identities=2).center_loss_weight)
        sgd = make_optimizer().optimizers[0]
        self.assertAllClose(float(sgd.learning_rate), 0.5 / default)

    def test_pyproject_keras_floor_is_the_multi_optimizer_release(self):
        root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        with open(os.path.join(root, "pyproject.toml")) as f:
            floors = re.findall(r'"keras>=([0-9.]+)', f.read())
        self.assertEqual(floors, [MIN_KERAS_VERSION])
        installed = tuple(int(p) for p in re.findall(r"\d+", keras.__version__)[:2])
        self.assertGreaterEqual(installed, tuple(int(p) for p in MIN_KERAS_VERSION.split(".")))
