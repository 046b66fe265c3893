"""`jit_compile_setting`: what `--jit-compile` hands to `model.compile` on each backend."""

import keras

from keras_asanet.tests.test_case import TestCase
from keras_asanet.training.runner import UsageError, jit_compile_setting


class JitCompileSettingTest(TestCase):
    def test_values_reach_compile(self):
        self.assertIs(jit_compile_setting("true"), True)
        self.assertIs(jit_compile_setting("false"), False)
        self.assertEqual(jit_compile_setting("auto"), "auto")  # Keras' choice
        with self.assertRaisesRegex(UsageError, "--jit-compile must be"):
            jit_compile_setting("yes")
        model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
        model.compile(loss="mse", jit_compile=jit_compile_setting("false"))
        self.assertFalse(model.jit_compile)
