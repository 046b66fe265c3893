"""`jit_compile_setting`: what `--jit-compile auto` compiles on each backend. Unlike the rest
of runner_test.py it depends on the backend, so it runs in every backend's run."""

from keras_asanet.tests.test_case import TestCase


class JitCompileSettingTest(TestCase):
    def test_auto_is_a_graph_on_tensorflow_cpu_and_keras_choice_elsewhere(self):
        import keras

        from keras_asanet.training.runner import UsageError, jit_compile_setting

        self.assertIs(jit_compile_setting("true"), True)
        self.assertIs(jit_compile_setting("false"), False)
        expected = "auto"
        if keras.backend.backend() == "tensorflow":
            import tensorflow as tf

            if not tf.config.list_physical_devices("GPU"):
                expected = False  # measured faster than XLA on CPU (docs/performance.md)
        self.assertEqual(jit_compile_setting("auto"), expected)
        with self.assertRaisesRegex(UsageError, "--jit-compile must be"):
            jit_compile_setting("yes")
        # What a model compiled with the setting does on this backend.
        model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
        model.compile(loss="mse", jit_compile=jit_compile_setting("auto"))
        if expected is False:
            self.assertFalse(model.jit_compile)
