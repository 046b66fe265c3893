"""The PyTorch reference is the Keras ASANet: same parameters, same outputs on the same
weights, the same losses; and its training step trains."""

import numpy as np
import pytest
import torch

from benchmarks import reference_torch as ref
from benchmarks._testing import OneTorchThread
from benchmarks.train import make_batch
from keras_asanet.tests.test_case import TestCase

# Runs under one backend only in the README's test command (torch + one Keras model).
pytestmark = pytest.mark.backend_independent


def keras_model(**kwargs):
    from keras_asanet.models import ASANet

    model = ASANet.from_preset("asanet_tiny", num_identities=4, attribute_schema="mars", **kwargs)
    return model.build_for_input((None, 2, 64, 32, 3))


def reference_with_keras_weights(model, **kwargs):
    import keras

    torch.manual_seed(0)
    reference = ref.ReferenceASANet.from_preset("asanet_tiny", 4, **kwargs)
    weights = {v.path: keras.ops.convert_to_numpy(v) for v in model.weights}
    written = ref.load_keras_weights(reference, weights, model.name)
    return reference, written


class ReferenceTorchTest(OneTorchThread, TestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.model = keras_model()
        cls.reference, cls.written = reference_with_keras_weights(cls.model)
        clips, cls.targets = make_batch((2, 3), 2, (64, 32))
        cls.clips = clips.astype(np.uint8)  # uint8 pixels: the model casts inside

    def test_parameter_counts_and_every_weight_are_the_keras_models(self):
        keras_params = int(sum(np.prod(v.shape) for v in self.model.trainable_weights))
        self.assertEqual(ref.trainable_parameter_count(self.reference), keras_params)
        # Every weight and statistic came from a Keras variable of the same shape, but the
        # BNNeck's frozen zero shift (Keras: center=False, no variable).
        state = {k for k in self.reference.state_dict() if not k.endswith("num_batches_tracked")}
        self.assertEqual(state - self.written, {"bn_neck.batch_norm.bias"})

    def test_fusion_b_without_pmi_has_the_keras_parameter_count(self):
        model = keras_model(fusion="b", pmi=False)
        reference, _ = reference_with_keras_weights(model, fusion="b", pmi=False)
        keras_params = int(sum(np.prod(v.shape) for v in model.trainable_weights))
        self.assertEqual(ref.trainable_parameter_count(reference), keras_params)
        self.assertIsNotNone(reference.feature_fusion)

    def test_same_outputs_and_losses_on_the_same_weights(self):
        import keras

        x = torch.from_numpy(self.clips).permute(0, 1, 4, 2, 3)
        self.reference.eval()
        with torch.no_grad():
            feature = self.reference(x).numpy()
        self.assertAllClose(
            keras.ops.convert_to_numpy(self.model(self.clips, training=False)),
            feature,
            atol=1e-4,
        )
        out = {
            k: keras.ops.convert_to_numpy(v)
            for k, v in self.model(self.clips, training=True).items()
        }
        self.reference.train()
        ref_out = self.reference(x)
        for key in ("f_final", "id_logits", "f_ir_attr", "re_attr_logits"):
            self.assertAllClose(out[key], ref_out[key].detach().numpy(), atol=2e-4, rtol=1e-4)
        # The losses of the same outputs: the library's compute_loss (its weights and
        # centres) against the reference's, term by term to 1e-5.
        total = float(
            keras.ops.convert_to_numpy(self.model.compute_loss(y=self.targets, y_pred=out))
        )
        terms = self.reference.losses(
            {k: torch.from_numpy(v) for k, v in out.items()},
            {k: torch.from_numpy(v) for k, v in self.targets.items()},
        )
        self.assertAllClose(terms["total"].item(), total, atol=1e-5, rtol=1e-5)
        for name in ("xent", "wrt", "center", "bce", "pmi"):
            tracked = float(keras.ops.convert_to_numpy(self.model._trackers[name].result()))
            self.assertAllClose(terms[name].item(), tracked, atol=1e-5, rtol=1e-5, msg=name)
        self.assertGreater(terms["pmi"].item(), 0.0)  # the PMI term is not trivially zero

    def test_training_steps_lower_the_loss_and_move_the_centres_by_sgd(self):
        torch.manual_seed(0)
        model = ref.ReferenceASANet.from_preset("asanet_tiny", 4)
        trainer = ref.ReferenceTrainer(model, learning_rate=1e-3)
        x = torch.from_numpy(self.clips).permute(0, 1, 4, 2, 3)
        y = {k: torch.from_numpy(v) for k, v in self.targets.items()}
        before = model.centers.detach().clone()
        first = trainer.step(x, y)
        # Centres: plain SGD at lr 0.5 on their gradient divided by lambda_cent.
        moved = before - 0.5 * model.centers.grad
        self.assertAllClose(model.centers.detach().numpy(), moved.numpy(), atol=1e-6)
        for _ in range(2):
            last = trainer.step(x, y)
        self.assertLess(last["total"].item(), first["total"].item())
        self.assertEqual(set(first), {"xent", "wrt", "center", "bce", "pmi", "total"})
