"""scripts/evaluate.py: bad arguments exit with code 2 and a clear message; on a tiny synthetic
dataset it prints the report and writes JSON, and refuses a checkpoint of another class count."""

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


class EvaluateScriptRunTest(TestCase):
    """The happy path and the class-count check, run in-process on a tiny synthetic dataset."""

    def setUp(self):
        super().setUp()
        import importlib.util

        from keras_asanet.data import Mars, make_synthetic_mars

        spec = importlib.util.spec_from_file_location("evaluate_script", SCRIPT)
        self.script = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(self.script)
        tmp = self.get_temp_dir()
        self.data = os.path.join(tmp, "synthetic")
        make_synthetic_mars(self.data, num_identities=12, image_size=(32, 16), seed=2)
        self.num_train = Mars(self.data).num_train_pids
        self.tmp = tmp

    def save_model(self, num_identities):
        from keras_asanet.models import ASANet

        model = ASANet(
            num_identities=num_identities,
            backbone={"block_counts": (1, 1, 1, 1), "width": 4, "non_local": (0, 1, 1, 0)},
            attribute_branch_blocks=1,
            branch_dim=8,
        )
        model.build_for_input((None, 2, 32, 16, 3))
        path = os.path.join(self.tmp, f"model_{num_identities}.keras")
        model.save(path)
        return path

    def run_main(self, weights, *extra):
        import contextlib
        import io

        out, err = io.StringIO(), io.StringIO()
        code = 0
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = self.script.main(
                    [
                        "--backend",
                        keras.backend.backend(),
                        "--dataset",
                        "synthetic",
                        "--root",
                        self.data,
                        "--weights",
                        weights,
                        "--image-size",
                        "32",
                        "16",
                        "--seq-len",
                        "2",
                        "--quiet",
                        *extra,
                    ]  # fmt: skip
                )
            except SystemExit as exit_:
                code = exit_.code
        return code or 0, out.getvalue(), err.getvalue()

    def test_prints_the_table_and_writes_json(self):
        import json

        output = os.path.join(self.tmp, "results.json")
        code, out, err = self.run_main(
            self.save_model(self.num_train), "--setup", "mixing", "--output", output
        )
        self.assertEqual(code, 0, err)
        self.assertIn("mixing", out)
        self.assertIn("Rank-1", out)
        with open(output) as f:
            results = json.load(f)
        self.assertGreater(results["ranking"]["num_valid_queries"], 0)
        self.assertIsNotNone(results["attributes"])

    def test_checkpoint_with_another_class_count(self):
        code, _, err = self.run_main(self.save_model(self.num_train + 3))
        self.assertEqual(code, 2)
        self.assertIn(f"{self.num_train + 3} identity classes", err)
