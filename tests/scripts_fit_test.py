"""`scripts/fit.py`: bad input exits with code 2 and a clear message; an interrupted run resumes
to the same weights as an uninterrupted one."""

import contextlib
import importlib.util
import io
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

import h5py
import keras
import numpy as np
import pytest

from keras_asanet.data import make_synthetic_mars
from keras_asanet.tests.test_case import TestCase

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIT = os.path.join(ROOT, "scripts", "fit.py")

_spec = importlib.util.spec_from_file_location("fit_script", FIT)
fit_script = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fit_script)

# A run small enough for CI: 12 identities (6 for training) at 32x16, T = 2, 2x2 batches.
TINY_RUN = [
    "--identities", "12", "--image-size", "32", "16", "--seq-len", "2", "--batch", "2", "2",
    "--no-untrained-eval", "--eval-mode", "sampled", "--quiet", "--seed", "3",
]  # fmt: skip


class FitCliTest(TestCase):
    @classmethod
    def setUpClass(cls):
        cls._tmp = tempfile.TemporaryDirectory()
        cls.data = os.path.join(cls._tmp.name, "synthetic")
        make_synthetic_mars(cls.data, num_identities=12, image_size=(32, 16), seed=3)

    @classmethod
    def tearDownClass(cls):
        cls._tmp.cleanup()

    def run_main(self, *args):
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            code = fit_script.main(["--backend", keras.backend.backend(), *args])
        return code, err.getvalue()

    def test_unknown_backend(self):
        code, err = self.run_main("--backend", "mxnet")
        self.assertEqual(code, 2)
        self.assertIn("unknown --backend 'mxnet'", err)

    def test_unknown_preset(self):
        code, err = self.run_main("--preset", "asanet_z", "--root", self.data, *TINY_RUN)
        self.assertEqual(code, 2)
        self.assertIn("Unknown --preset 'asanet_z'", err)

    def test_missing_dataset_root(self):
        code, err = self.run_main("--dataset", "mars", "--root", "/no/such/MARS")
        self.assertEqual(code, 2)
        self.assertIn("/no/such/MARS", err)
        code, err = self.run_main("--dataset", "duke")
        self.assertEqual(code, 2)
        self.assertIn("needs --root", err)

    def test_batch_larger_than_identities(self):
        out = os.path.join(self.get_temp_dir(), "run")
        args = [a for a in TINY_RUN]
        args[args.index("--batch") + 1] = "9"
        code, err = self.run_main("--root", self.data, "--output", out, *args)
        self.assertEqual(code, 2)
        self.assertIn("only 6 identities", err)

    def test_learning_rate_must_be_positive(self):
        code, err = self.run_main("--root", self.data, "--lr", "0", *TINY_RUN)
        self.assertEqual(code, 2)
        self.assertIn("--lr must be > 0", err)

    def test_zero_epochs_or_frames_are_refused_not_replaced_by_defaults(self):
        for flag, message in (("--epochs", "--epochs must be >= 1"), ("--seq-len", "--seq-len")):
            args = list(TINY_RUN)
            if flag in args:
                args[args.index(flag) + 1] = "0"
            else:
                args += [flag, "0"]
            code, err = self.run_main("--root", self.data, *args)
            self.assertEqual(code, 2, flag)
            self.assertIn(message, err)

    def test_unseen_evaluation_seed_must_differ_from_the_dataset_seed(self):
        code, err = self.run_main(
            "--root", self.data, "--dataset-seed", "7", "--heldout-seed", "7", *TINY_RUN
        )
        self.assertEqual(code, 2)
        self.assertIn("--heldout-seed 7 equals --dataset-seed", err)

    def test_defaults_come_from_one_place(self):
        from keras_asanet.training.runner import RunConfig, dataset_defaults

        args = fit_script.parse_args([])
        config = fit_script.config_from_args(args)
        synthetic = dataset_defaults("synthetic")
        for key, value in synthetic.items():
            self.assertEqual(getattr(config, key), value, key)
        self.assertEqual(RunConfig().epochs, synthetic["epochs"])
        paper = fit_script.config_from_args(
            fit_script.parse_args(["--dataset", "mars", "--root", "/data/MARS"])
        )
        self.assertEqual(
            (paper.preset, paper.epochs, paper.seq_len, paper.image_size, paper.learning_rate),
            ("asanet_b", 700, 6, (256, 128), 3e-4),
        )
        self.assertEqual(paper.scaled_decay_epochs(), (100, 250, 350))
        self.assertEqual(paper.random_erasing, 0.5)
        self.assertEqual(config.scaled_decay_epochs(), (27, 33))

    def test_resume_without_checkpoint(self):
        out = self.get_temp_dir()
        code, err = self.run_main("--root", self.data, "--output", out, "--resume", *TINY_RUN)
        self.assertEqual(code, 2)
        self.assertIn("nothing to resume", err)

    def test_trains_and_writes_its_outputs(self):
        out = os.path.join(self.get_temp_dir(), "run")
        code, err = self.run_main("--root", self.data, "--output", out, "--epochs", "2", *TINY_RUN)
        self.assertEqual(code, 0, err)
        for name in ("results.json", "model.keras", "curves.png", "cmc.png"):
            self.assertTrue(os.path.isfile(os.path.join(out, name)), name)
        with open(os.path.join(out, "results.json")) as f:
            results = json.load(f)
        self.assertEqual(results["backend"], keras.backend.backend())
        self.assertGreater(results["final"]["num_valid_queries"], 0)
        self.assertIn("attribute_accuracy", results["final"])
        # The raw-pixels baseline and, on synthetic data, the ASRE mask score.
        self.assertEqual(results["final"]["baseline_mAP"], results["report"]["baseline"]["mAP"])
        self.assertGreater(results["report"]["baseline"]["num_valid_queries"], 0)
        # At 32x16 the ASRE mask grid is 2x1; where no frame's person covers half a cell
        # the score is skipped with a note instead of failing the run.
        if "mask_score" in results:
            self.assertGreater(results["mask_score"]["num_frames"], 0)
            self.assertEqual(results["mask_score"], results["report"]["mask_score"])
        else:
            self.assertIn("mask score not computed", " ".join(results["report"]["notes"]))
        restored = keras.saving.load_model(os.path.join(out, "model.keras"))
        self.assertEqual(restored.num_identities, 6)


def _weights(path):
    arrays = {}
    with h5py.File(os.path.join(path, "model.weights.h5"), "r") as f:
        f.visititems(
            lambda name, obj: (
                arrays.__setitem__(name, obj[()]) if isinstance(obj, h5py.Dataset) else None
            )
        )
    return arrays


@pytest.mark.subprocess
class FitResumeTest(TestCase):
    def test_killed_run_resumes_to_the_same_weights(self):
        tmp = self.get_temp_dir()
        data = os.path.join(tmp, "synthetic")
        args = ["--root", data, "--epochs", "3", *TINY_RUN]
        env = dict(os.environ, PYTHONPATH=ROOT, KERAS_BACKEND=keras.backend.backend())
        cmd = [sys.executable, FIT, "--backend", keras.backend.backend(), *args]

        reference = os.path.join(tmp, "reference")
        subprocess.run([*cmd, "--output", reference], env=env, check=True, timeout=600)

        interrupted = os.path.join(tmp, "interrupted")
        proc = subprocess.Popen([*cmd, "--output", interrupted], env=env)
        first = os.path.join(interrupted, "checkpoints", "ckpt-000001")
        deadline = time.time() + 600
        while not os.path.isdir(first) and proc.poll() is None and time.time() < deadline:
            time.sleep(0.02)
        self.assertTrue(os.path.isdir(first), "the run never wrote its first checkpoint")
        proc.send_signal(signal.SIGKILL)  # during epoch 2
        proc.wait()
        self.assertFalse(
            os.path.isdir(os.path.join(interrupted, "checkpoints", "ckpt-000003")),
            "the run finished before it was killed",
        )
        subprocess.run(
            [*cmd, "--output", interrupted, "--resume"], env=env, check=True, timeout=600
        )
        expected = _weights(os.path.join(reference, "checkpoints", "ckpt-000003"))
        resumed = _weights(os.path.join(interrupted, "checkpoints", "ckpt-000003"))
        self.assertEqual(sorted(expected), sorted(resumed))
        for name in expected:
            np.testing.assert_allclose(resumed[name], expected[name], atol=1e-5, err_msg=name)
