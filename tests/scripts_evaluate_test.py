"""Command-line checks of scripts/evaluate.py that need neither the dataset readers nor a
trained model: bad arguments exit with code 2 and a clear message."""

import os
import subprocess
import sys

import keras
import pytest

from keras_asanet.tests.test_case import TestCase

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(REPO, "scripts", "evaluate.py")


@pytest.mark.subprocess
class EvaluateScriptTest(TestCase):
    def run_script(self, *args):
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
        return subprocess.run(
            [sys.executable, SCRIPT, "--backend", keras.backend.backend(), *args],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )

    def setUp(self):
        super().setUp()
        self.root = self.get_temp_dir()
        self.weights = os.path.join(self.root, "model.keras")
        with open(self.weights, "wb") as f:
            f.write(b"placeholder")

    def test_unknown_dataset(self):
        proc = self.run_script(
            "--dataset", "market1501", "--root", self.root, "--weights", self.weights
        )
        self.assertEqual(proc.returncode, 2, proc.stderr)
        self.assertIn("Unknown dataset 'market1501'", proc.stderr)
        self.assertIn("mars", proc.stderr)

    def test_missing_root(self):
        missing = os.path.join(self.root, "no_such_folder")
        proc = self.run_script("--dataset", "mars", "--root", missing, "--weights", self.weights)
        self.assertEqual(proc.returncode, 2, proc.stderr)
        self.assertIn(f"dataset root {missing!r} does not exist", proc.stderr)

    def test_missing_checkpoint(self):
        missing = os.path.join(self.root, "nothing.keras")
        proc = self.run_script("--dataset", "duke", "--root", self.root, "--weights", missing)
        self.assertEqual(proc.returncode, 2, proc.stderr)
        self.assertIn(f"checkpoint {missing!r} does not exist", proc.stderr)

    def test_bad_setup_is_an_argparse_error(self):
        proc = self.run_script(
            "--dataset", "mars", "--root", self.root, "--weights", self.weights, "--setup", "mixed"
        )
        self.assertEqual(proc.returncode, 2, proc.stderr)
        self.assertIn("invalid choice: 'mixed'", proc.stderr)
