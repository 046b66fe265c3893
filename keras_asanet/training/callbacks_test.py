import contextlib
import io
import os

import keras
import numpy as np
import pytest

from keras_asanet.tests.test_case import TestCase
from keras_asanet.training.callbacks import (
    EpochCheckpoint,
    LearningRateLogger,
    NaNGuard,
    PMIWeightSwitch,
)
from keras_asanet.training.checkpoint import restore_latest
from keras_asanet.training.optimizers import make_optimizer, step_decay_schedule


class _WithPMIWeight(keras.Model):
    def __init__(self):
        super().__init__()
        self.dense = keras.layers.Dense(1)
        self.pmi_weight_variable = self.add_weight(
            shape=(),
            initializer=keras.initializers.Constant(0.005),
            trainable=False,
            name="pmi_weight",
        )

    def call(self, x):
        return self.dense(x)


class CallbacksTest(TestCase):
    def test_pmi_weight_switches_once_below_threshold(self):
        model = _WithPMIWeight()
        model(np.zeros((1, 2), "float32"))
        switch = PMIWeightSwitch()
        switch.set_model(model)
        assigned = []
        assign = model.pmi_weight_variable.assign
        model.pmi_weight_variable.assign = lambda value: (assigned.append(value), assign(value))
        logs = []
        # Above the threshold, then below it for five epochs (and above again once).
        for epoch, bce_ir in enumerate([0.2, 0.16, 0.14, 0.1, 0.2, 0.05, 0.01]):
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                switch.on_epoch_end(epoch, {"bce_ir": bce_ir})
            logs.append(out.getvalue())
            expected = 0.005 if epoch < 2 else 0.01
            self.assertAllClose(model.pmi_weight_variable.value, expected, atol=1e-9)
        self.assertEqual(assigned, [0.01])  # one assignment, at the first epoch below 0.15
        self.assertEqual([bool(text) for text in logs], [False] * 2 + [True] + [False] * 4)
        self.assertIn("Epoch 3: bce_ir = 0.1400 < 0.15: lambda_PMI 0.005 -> 0.01", logs[2])

    def test_pmi_weight_switch_fires_once_although_float32_never_equals_0_01(self):
        model = _WithPMIWeight()
        model(np.zeros((1, 2), "float32"))
        switch = PMIWeightSwitch()
        switch.set_model(model)
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            for epoch in range(4):
                switch.on_epoch_end(epoch, {"bce_ir": 0.1})
        self.assertEqual(out.getvalue().count("lambda_PMI"), 1, out.getvalue())
        self.assertNotEqual(float(keras.ops.convert_to_numpy(model.pmi_weight_variable)), 0.01)

    @pytest.mark.heavy
    def test_pmi_weight_switch_once_across_a_checkpointed_resume(self):
        # A real ASANet run through model.fit with the callbacks wired the way
        # keras_asanet.training.runner.train wires them (switch, then checkpoint): the switch
        # fires at the end of epoch 1 (threshold 1e9), before that epoch's checkpoint; the run
        # stops after epoch 2 and resumes from its checkpoint for epoch 3.
        from keras_asanet.data import get_dataset, make_synthetic_mars
        from keras_asanet.data.pipelines import TrainClipDataset
        from keras_asanet.models import ASANet

        tmp = self.get_temp_dir()
        root = os.path.join(tmp, "synthetic")
        make_synthetic_mars(root, num_identities=8, image_size=(32, 16), frames_per_tracklet=(2, 3))
        dataset = get_dataset("synthetic", root, attributes="auto")
        ckpt_dir = os.path.join(tmp, "checkpoints")
        data = TrainClipDataset(
            dataset.train,
            dataset.attribute_schema,
            num_identities=2,
            num_instances=2,
            seq_len=2,
            image_size=(32, 16),
        )
        model = ASANet.from_preset(
            "asanet_tiny",
            num_identities=dataset.num_train_pids,
            attribute_schema=dataset.attribute_schema,
        )
        model.build_for_input((None, 2, 32, 16, 3))
        model.compile(optimizer=make_optimizer(center_loss_weight=model.center_loss_weight))
        model.optimizer.build(model.trainable_variables)
        self.assertAllClose(model.pmi_weight_variable.value, 0.005)

        def fit(epochs, initial_epoch):
            callbacks = [PMIWeightSwitch(threshold=1e9), EpochCheckpoint(ckpt_dir, data)]
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                model.fit(
                    data,
                    epochs=epochs,
                    initial_epoch=initial_epoch,
                    steps_per_epoch=1,
                    callbacks=callbacks,
                    verbose=0,
                    shuffle=False,
                )
            return out.getvalue()

        first_log = fit(epochs=2, initial_epoch=0)
        self.assertAllClose(model.pmi_weight_variable.value, 0.01)
        # The resumed run, as in a new process: lambda_PMI back at its initial value, then
        # everything restored from the checkpoint. (The same model object is reused only
        # because a second ASANet would compile its train step again, ~40 s on JAX.)
        model.pmi_weight_variable.assign(0.005)
        state, path = restore_latest(ckpt_dir, model, log=lambda m: None)
        self.assertTrue(path.endswith("ckpt-000002"))
        data.set_state(state["data_state"])
        self.assertAllClose(model.pmi_weight_variable.value, 0.01)
        resumed_log = fit(epochs=3, initial_epoch=state["epoch"])
        log = first_log + resumed_log
        self.assertEqual(log.count("lambda_PMI"), 1, log)
        self.assertIn("Epoch 1: bce_ir", first_log)
        self.assertAllClose(model.pmi_weight_variable.value, 0.01)
        self.assertTrue(os.path.isdir(os.path.join(ckpt_dir, "ckpt-000003")))

    def test_nan_guard_stops_training(self):
        model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
        model.compile(optimizer="sgd", loss="mse")
        guard = NaNGuard()
        x = np.array([[1.0, np.nan]] * 8, "float32")
        history = model.fit(
            x, np.ones((8, 1)), batch_size=2, epochs=3, verbose=0, callbacks=[guard]
        )
        self.assertTrue(guard.stopped)
        self.assertIn("last good checkpoint", guard.message)
        self.assertLen(history.history["loss"], 1)  # stopped during the first epoch

    def test_learning_rate_logger_reads_the_network_optimizer(self):
        model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
        schedule = step_decay_schedule(0.1, [1], steps_per_epoch=2)
        model.compile(optimizer=make_optimizer(learning_rate=schedule), loss="mse")
        history = model.fit(
            np.ones((4, 2)),
            np.ones((4, 1)),
            batch_size=2,
            epochs=2,
            verbose=0,
            callbacks=[LearningRateLogger()],
        )
        self.assertAllClose(history.history["learning_rate"], [0.1, 0.01], atol=1e-8)
