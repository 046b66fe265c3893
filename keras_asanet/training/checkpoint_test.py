import os
import warnings

import keras
import numpy as np

from keras_asanet.tests.test_case import TestCase
from keras_asanet.training.checkpoint import (
    CheckpointError,
    list_checkpoints,
    restore_latest,
    save_checkpoint,
)


def _model(seed=0):
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="mse")
    model.optimizer.build(model.trainable_variables)
    return model


def _train(model, steps=3):
    x = np.arange(12, dtype="float32").reshape(4, 3) / 10
    model.fit(x, np.ones((4, 1)), epochs=steps, verbose=0, batch_size=4, shuffle=False)


def _values(variables):
    return [np.asarray(keras.ops.convert_to_numpy(v.value)) for v in variables]


class CheckpointTest(TestCase):
    def test_round_trip_restores_weights_and_optimizer(self):
        directory = self.get_temp_dir()
        model = _model()
        _train(model)
        save_checkpoint(directory, model, {"epoch": 3, "data_state": {"seed": 1, "epoch": 3}})
        other = _model(seed=5)
        state, path = restore_latest(directory, other)
        self.assertEqual(state["epoch"], 3)
        self.assertTrue(path.endswith("ckpt-000003"))
        self.assertAllClose(_values(other.weights), _values(model.weights))
        self.assertAllClose(_values(other.optimizer.variables), _values(model.optimizer.variables))
        # Training on from the restored state matches training on from the original.
        _train(model, 2)
        _train(other, 2)
        self.assertAllClose(_values(other.weights), _values(model.weights), atol=1e-6)

    def test_optimizer_state_follows_the_weights_not_the_build_order(self):
        # The same network, its optimiser built in the reverse order (and with other
        # auto-numbered layer and optimiser names): restoring by position would give each
        # weight the moments of another (here, of another shape: an error).
        directory = self.get_temp_dir()
        model = _model()
        _train(model)
        save_checkpoint(directory, model, {"epoch": 3})
        keras.utils.set_random_seed(5)
        other = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2), keras.layers.Dense(1)])
        other.compile(optimizer=keras.optimizers.Adam(1e-2), loss="mse")
        other.optimizer.build(list(reversed(other.trainable_variables)))
        self.assertNotEqual(
            [v.shape for v in other.optimizer.variables],
            [v.shape for v in model.optimizer.variables],
        )
        restore_latest(directory, other)

        def moments(m):  # each weight's Adam moments, in the order of the weights
            opt = m.optimizer
            return [
                self.to_numpy(slots[opt._get_variable_index(v)])
                for v in m.trainable_variables
                for slots in (opt._momentums, opt._velocities)
            ]

        for a, b in zip(moments(other), moments(model)):
            self.assertAllClose(a, b)
        self.assertEqual(int(other.optimizer.iterations), int(model.optimizer.iterations))

    def test_optimizer_of_another_network_is_refused_by_name(self):
        directory = self.get_temp_dir()
        save_checkpoint(directory, _model(), {"epoch": 1})
        # As many optimiser variables of the same shapes, but Adamax keeps a "norm" where
        # Adam keeps a "velocity": restored by position, it would run on Adam's state.
        other = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2), keras.layers.Dense(1)])
        other.compile(optimizer=keras.optimizers.Adamax(1e-2), loss="mse")
        other.optimizer.build(other.trainable_variables)
        with self.assertRaisesRegex(CheckpointError, r"do not match this model.*#0_norm"):
            restore_latest(directory, other, log=lambda m: None)

    def test_keeps_the_newest_and_no_partial_folders(self):
        directory = self.get_temp_dir()
        model = _model()
        for epoch in (1, 2, 3):
            save_checkpoint(directory, model, {"epoch": epoch}, keep=2)
        self.assertEqual(
            [os.path.basename(p) for p in list_checkpoints(directory)],
            ["ckpt-000002", "ckpt-000003"],
        )
        self.assertEqual(sorted(os.listdir(directory)), ["ckpt-000002", "ckpt-000003"])

    def test_truncated_newest_falls_back_to_previous(self):
        directory = self.get_temp_dir()
        model = _model()
        save_checkpoint(directory, model, {"epoch": 1})
        expected = _values(model.weights)
        _train(model)
        save_checkpoint(directory, model, {"epoch": 2})
        with open(os.path.join(directory, "ckpt-000002", "model.weights.h5"), "r+b") as f:
            f.truncate(64)
        messages = []
        other = _model(seed=9)
        state, path = restore_latest(directory, other, log=messages.append)
        self.assertEqual(state["epoch"], 1)
        self.assertIn("ckpt-000002", messages[0])
        self.assertAllClose(_values(other.weights), expected)

    def test_no_usable_checkpoint(self):
        directory = self.get_temp_dir()
        with self.assertRaisesRegex(CheckpointError, "No checkpoint to resume from"):
            restore_latest(directory, _model())
        save_checkpoint(directory, _model(), {"epoch": 1})
        os.remove(os.path.join(directory, "ckpt-000001", "state.json"))
        with self.assertRaisesRegex(CheckpointError, "lacks state.json"):
            restore_latest(directory, _model(), log=lambda m: None)

    def test_checkpoint_of_another_model_is_refused(self):
        directory = self.get_temp_dir()
        save_checkpoint(directory, _model(), {"epoch": 1})
        keras.utils.set_random_seed(0)
        wider = keras.Sequential([keras.Input((3,)), keras.layers.Dense(5), keras.layers.Dense(1)])
        wider.compile(optimizer="adam", loss="mse")
        with self.assertRaisesRegex(CheckpointError, "cannot be loaded"):
            # Keras first warns that the (unbuilt) optimizer's variables do not match, then
            # fails on the layers; the refusal, not Keras' warning on the way, is the subject.
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", "Skipping variable loading", UserWarning)
                restore_latest(directory, wider, log=lambda m: None)
