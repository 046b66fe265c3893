import keras
import numpy as np

from keras_asanet.tests.test_case import TestCase
from keras_asanet.training.callbacks import LearningRateLogger, NaNGuard, PMIWeightSwitch
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
        switch.on_epoch_end(0, {"bce_ir": 0.2})
        self.assertAllClose(model.pmi_weight_variable.value, 0.005)
        switch.on_epoch_end(1, {"bce_ir": 0.14})
        self.assertAllClose(model.pmi_weight_variable.value, 0.01)

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
