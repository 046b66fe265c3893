import dataclasses
import json
import os

import pytest

from keras_asanet.tests.test_case import TestCase
from keras_asanet.training.runner import (
    LEGACY_SETTINGS,
    RunConfig,
    UsageError,
    check_resume_settings,
    jit_compile_setting,
    train,
    with_saved_settings,
)

# Pure numpy / file code: the README's test command runs it under one backend only.
pytestmark = pytest.mark.backend_independent

# The settings of an earlier run (non-defaults everywhere a flag would usually be typed).
SAVED = dict(preset="asanet_tiny", epochs=6, seq_len=2, image_size=(32, 16), batch=(2, 2),
             learning_rate=2e-3, synthetic_identities=12, color_jitter=0.0, seed=3)  # fmt: skip


class ResumeSettingsTest(TestCase):
    """`--resume` compares the settings that change the run with the checkpoint's."""

    def setUp(self):
        super().setUp()
        self.output = self.get_temp_dir()
        self.ckpt_dir = os.path.join(self.output, "checkpoints")
        self.saved = RunConfig(output=self.output, **SAVED)
        # The state.json EpochCheckpoint writes (the settings are all that is read here).
        path = os.path.join(self.ckpt_dir, "ckpt-000002")
        os.makedirs(path)
        with open(os.path.join(path, "state.json"), "w") as f:
            json.dump({"epoch": 2, "run_config": self.saved.to_dict()}, f)

    def resumed(self, **changes):
        return dataclasses.replace(self.saved, resume=True, **changes)

    def test_same_settings_resume_and_epochs_may_be_extended(self):
        self.assertEqual(check_resume_settings(self.resumed(), self.ckpt_dir), [])
        # More epochs with the saved decay epochs (1 0 0 at 6 epochs: (4, 5)).
        longer = self.resumed(epochs=12, decay_epochs=(4, 5), workers=3, verbose=0)
        self.assertEqual(check_resume_settings(longer, self.ckpt_dir), [])

    def test_each_differing_key_is_named_with_both_values(self):
        new = self.resumed(preset="asanet_b", learning_rate=0.1, eval_every=2)
        with self.assertRaises(UsageError) as ctx:
            check_resume_settings(new, self.ckpt_dir)
        message = str(ctx.exception)
        self.assertIn("preset: saved 'asanet_tiny', new 'asanet_b'", message)
        self.assertIn("learning_rate: saved 0.002, new 0.1", message)
        self.assertNotIn("eval_every", message)  # not a setting of the training
        self.assertIn("--resume-override", message)
        # Extending the run without giving the decays would move them (scaled from epochs).
        with self.assertRaisesRegex(UsageError, r"decay_epochs: saved \[4, 5\], new \[8, 10\]"):
            check_resume_settings(self.resumed(epochs=12), self.ckpt_dir)
        with self.assertRaisesRegex(UsageError, "pass --decay-epochs 4 5 to keep"):
            check_resume_settings(self.resumed(epochs=12), self.ckpt_dir)

    def test_override_logs_the_differences(self):
        logs = []
        new = self.resumed(seed=4, resume_override=True)
        self.assertEqual(
            check_resume_settings(new, self.ckpt_dir, log=logs.append), [("seed", 3, 4)]
        )
        self.assertIn("seed: saved 3, new 4", logs[0])

    def test_untyped_settings_come_from_the_checkpoint(self):
        # A command line with today's defaults and only --epochs typed continues the saved
        # run, with its decays kept.
        typed = RunConfig(output=self.output, resume=True, epochs=12, workers=2)
        resumed = with_saved_settings(typed, explicit={"epochs", "workers"})
        for key, value in SAVED.items():
            if key != "epochs":
                self.assertEqual(getattr(resumed, key), value, key)
        self.assertEqual((resumed.epochs, resumed.workers, resumed.resume), (12, 2, True))
        self.assertEqual(resumed.scaled_decay_epochs(), (4, 5))
        self.assertEqual(check_resume_settings(resumed, self.ckpt_dir), [])
        # A typed setting stays the new one, and is then refused.
        other = with_saved_settings(dataclasses.replace(typed, preset="asanet_b"), {"preset"})
        self.assertEqual(other.preset, "asanet_b")
        with self.assertRaisesRegex(UsageError, "preset: saved 'asanet_tiny'"):
            check_resume_settings(other, self.ckpt_dir)

    def test_a_run_saved_before_a_setting_existed_resumes_with_what_it_trained_with(self):
        # Checkpoints written before `bce_weight` / `asre_softmax_over` were run settings
        # trained with the loss-weight reading's lambda_BCE and the attribute-positions
        # softmax: a plain --resume keeps those, not today's synthetic defaults.
        legacy = self.saved.to_dict()
        for key in LEGACY_SETTINGS:
            del legacy[key]
        with open(os.path.join(self.ckpt_dir, "ckpt-000002", "state.json"), "w") as f:
            json.dump({"epoch": 2, "run_config": legacy}, f)
        typed = RunConfig(output=self.output, resume=True)
        self.assertEqual((typed.bce_weight, typed.asre_softmax_over), (15.0, "identity_positions"))
        resumed = with_saved_settings(typed, explicit=set())
        self.assertEqual(
            (resumed.bce_weight, resumed.asre_softmax_over), (None, "attribute_positions")
        )
        self.assertEqual(check_resume_settings(resumed, self.ckpt_dir), [])
        # Attribute maps of the paper's C/2, as every run before the setting existed.
        self.assertEqual((typed.attribute_channels, resumed.attribute_channels), (128, None))
        # Scored without the flip test, as it was before the setting existed.
        self.assertTrue(typed.flip_test)
        self.assertFalse(resumed.flip_test)
        with self.assertRaisesRegex(UsageError, "bce_weight: saved None, new 15.0"):
            check_resume_settings(typed, self.ckpt_dir)

    def test_train_refuses_before_building_anything(self):
        # Not a dump of mismatching layers from the weights file: the settings, named.
        with self.assertRaisesRegex(UsageError, "preset: saved 'asanet_tiny', new 'asanet_a'"):
            train(self.resumed(preset="asanet_a"), log=lambda *_: None)
        self.assertFalse(os.path.exists(os.path.join(self.output, ".run.lock")))


class JitCompileSettingTest(TestCase):
    def test_values_reach_compile(self):
        import keras

        from keras_asanet.layers.data_format import channels_last_computes_channels_first

        if channels_last_computes_channels_first():  # torch on a CPU: refused, with the why
            with self.assertRaisesRegex(UsageError, "torch.compile .* does not compile"):
                jit_compile_setting("true")
        else:
            self.assertIs(jit_compile_setting("true"), True)
        self.assertIs(jit_compile_setting("false"), False)
        self.assertEqual(jit_compile_setting("auto"), "auto")  # Keras' choice
        with self.assertRaisesRegex(UsageError, "--jit-compile must be"):
            jit_compile_setting("yes")
        model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
        model.compile(loss="mse", jit_compile=jit_compile_setting("false"))
        self.assertFalse(model.jit_compile)


class SyntheticSizesTest(TestCase):
    def test_too_few_identities_are_refused_naming_the_flag(self):
        for field, flag in (
            ("synthetic_identities", "--identities"),
            ("heldout_identities", "--heldout-identities"),
        ):
            with self.assertRaisesRegex(UsageError, f"{flag} must be >= 8.*got 6"):
                RunConfig(**{field: 6}).validate()
        RunConfig(synthetic_identities=8, heldout_identities=8).validate()
        with self.assertRaisesRegex(UsageError, "--bce-weight must be a finite number >= 0"):
            RunConfig(bce_weight=-1.0).validate()
        with self.assertRaisesRegex(UsageError, "flip_test must be True or False, got 'yes'"):
            RunConfig(flip_test="yes").validate()
        with self.assertRaisesRegex(UsageError, "Unknown --asre-softmax-over 'rows'"):
            RunConfig(asre_softmax_over="rows").validate()
        # Only the synthetic dataset has these sizes.
        RunConfig(dataset="mars", root=self.get_temp_dir(), heldout_identities=6).validate()
