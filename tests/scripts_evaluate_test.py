"""scripts/evaluate.py: bad arguments exit with code 2 and a clear message; on a tiny synthetic
dataset it prints the report (with the raw-pixels baseline and the mask score) and writes JSON,
refuses a checkpoint of another class count, and builds the synthetic dataset of another seed
at the model's training size."""

import os
import shutil
import subprocess
import sys
import tempfile

import keras
import pytest

from keras_asanet.tests.test_case import TestCase

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(REPO, "scripts", "evaluate.py")


def _load_script():
    import importlib.util

    spec = importlib.util.spec_from_file_location("evaluate_script", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class EvaluateScriptTest(TestCase):
    """Bad arguments exit with code 2 and a message on stderr. The checks are the script's
    `main()` called in this process (a subprocess per case cost 10-20 s of imports each);
    test_unknown_dataset runs the script as a program, so the exit code and stderr of the
    real process are checked too."""

    @classmethod
    def setUpClass(cls):
        cls.script = _load_script()

    def run_script(self, *args):
        """`main(args)` in this process: the exit code and what it wrote to stderr."""
        import contextlib
        import io
        import types

        err = io.StringIO()
        code = 0
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
            try:
                code = self.script.main(["--backend", keras.backend.backend(), *args])
            except SystemExit as exit_:  # argparse's parser.error
                code = exit_.code
        return types.SimpleNamespace(returncode=code or 0, stderr=err.getvalue())

    def run_program(self, *args):
        """The script as a program, in a new Python process."""
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

    # The flag is refused before any model is built: one backend's run is enough.
    @pytest.mark.heavy
    @pytest.mark.subprocess
    @pytest.mark.backend_independent
    def test_unknown_dataset(self):
        args = ["--dataset", "market1501", "--root", self.root, "--weights", self.weights]
        for proc in (self.run_program(*args), self.run_script(*args)):
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

    def test_root_needed_except_for_a_synthetic_seed(self):
        proc = self.run_script("--dataset", "mars", "--weights", self.weights)
        self.assertEqual(proc.returncode, 2, proc.stderr)
        self.assertIn("--dataset mars needs --root PATH", proc.stderr)
        proc = self.run_script(
            "--dataset", "synthetic", "--root", self.root, "--synthetic-seed", "3",
            "--weights", self.weights,
        )  # fmt: skip
        self.assertEqual(proc.returncode, 2, proc.stderr)
        self.assertIn("--synthetic-seed builds a synthetic dataset", proc.stderr)

    def test_output_folder_must_exist(self):
        # Checked at startup, not after the whole evaluation, when the results would be lost.
        folder = os.path.join(self.root, "no_such_folder")
        args = ["--dataset", "mars", "--root", self.root, "--weights", self.weights, "--output"]
        proc = self.run_script(*args, os.path.join(folder, "results.json"))
        self.assertEqual(proc.returncode, 2, proc.stderr)
        self.assertIn(f"the folder {folder!r} does not exist", proc.stderr)
        proc = self.run_script(*args, self.root)
        self.assertEqual(proc.returncode, 2, proc.stderr)
        self.assertIn("is a folder; give a file name", proc.stderr)

    def test_bad_setup_is_an_argparse_error(self):
        proc = self.run_script(
            "--dataset", "mars", "--root", self.root, "--weights", self.weights, "--setup", "mixed"
        )
        self.assertEqual(proc.returncode, 2, proc.stderr)
        self.assertIn("invalid choice: 'mixed'", proc.stderr)


class EvaluateScriptRunTest(TestCase):
    """The happy path and the class-count check, run in-process on a tiny synthetic dataset.

    The dataset (only read) and the saved models are made once for the class; each test
    gets its own copy of a model file in its own folder."""

    @classmethod
    def setUpClass(cls):
        from keras_asanet.data import Mars, make_synthetic_mars

        cls.script = _load_script()
        cls._class_tmp = tempfile.TemporaryDirectory()
        cls.data = os.path.join(cls._class_tmp.name, "synthetic")
        make_synthetic_mars(cls.data, num_identities=12, image_size=(32, 16), seed=2)
        cls.num_train = Mars(cls.data).num_train_pids
        cls._saved = {}  # class count -> the model file made for the class

    @classmethod
    def tearDownClass(cls):
        cls._class_tmp.cleanup()

    def setUp(self):
        super().setUp()
        self.tmp = self.get_temp_dir()

    def save_model(self, num_identities):
        """A tiny ASANet with `num_identities` classes saved as `model_<n>.keras` in this
        test's folder (a copy of the one built for the class)."""
        from keras_asanet.models import ASANet

        if num_identities not in self._saved:
            model = ASANet(
                num_identities=num_identities,
                backbone={"block_counts": (1, 1, 1, 1), "width": 4, "non_local": (0, 1, 1, 0)},
                attribute_branch_blocks=1,
                branch_dim=8,
            )
            model.build_for_input((None, 2, 32, 16, 3))
            saved = os.path.join(self._class_tmp.name, f"model_{num_identities}.keras")
            model.save(saved)
            self._saved[num_identities] = saved
        path = os.path.join(self.tmp, f"model_{num_identities}.keras")
        shutil.copyfile(self._saved[num_identities], path)
        return path

    def run_args(self, *args):
        import contextlib
        import io

        out, err = io.StringIO(), io.StringIO()
        code = 0
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = self.script.main(["--backend", keras.backend.backend(), *args])
            except SystemExit as exit_:
                code = exit_.code
        return code or 0, out.getvalue(), err.getvalue()

    def run_main(self, weights, *extra):
        return self.run_args(
            "--dataset", "synthetic", "--root", self.data, "--weights", weights,
            "--image-size", "32", "16", "--seq-len", "2", "--quiet", *extra,
        )  # fmt: skip

    def test_rerank_flag_re_ranks_the_model_and_the_baseline(self):
        import json

        output = os.path.join(self.tmp, "results.json")
        code, out, err = self.run_main(
            self.save_model(self.num_train), "--rerank", "--output", output
        )
        self.assertEqual(code, 0, err)
        self.assertIn("k-reciprocal re-ranking (k1 20, k2 6, lambda 0.3)", out)
        with open(output) as f:
            results = json.load(f)
        self.assertEqual(results["settings"]["rerank"], {"k1": 20, "k2": 6, "lambda_value": 0.3})
        self.assertEqual(results["ranking"]["metric"], "cosine, k-reciprocal re-ranked")
        self.assertEqual(results["baseline"]["metric"], "cosine, k-reciprocal re-ranked")
        # Other settings (the small-gallery ones of docs/results.md), and bad ones.
        code, out, err = self.run_main(
            self.save_model(self.num_train), "--rerank", "--rerank-k1", "3", "--rerank-k2", "3"
        )
        self.assertEqual(code, 0, err)
        self.assertIn("k-reciprocal re-ranking (k1 3, k2 3, lambda 0.3)", out)
        for flags, message in (
            (["--rerank-k1", "3"], "need --rerank"),
            (["--rerank", "--rerank-k2", "0"], "--rerank-k2 must be >= 1"),
            (["--rerank", "--rerank-lambda", "2"], "--rerank-lambda must be in [0, 1]"),
        ):
            code, _, err = self.run_main(self.save_model(self.num_train), *flags)
            self.assertEqual(code, 2, flags)
            self.assertIn(message, err)

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
        self.assertIsNone(results["feature_parts"])  # only with --feature-parts
        self.assertFalse(results["settings"]["flip"])  # no run config beside the checkpoint
        # The raw-pixels baseline on the same protocol, and the mask score (synthetic data).
        self.assertIn("raw-pixels baseline: mAP", out)
        self.assertEqual(results["baseline"]["name"], "mars/mixing")
        self.assertEqual(results["baseline"]["num_queries"], results["ranking"]["num_queries"])
        # At 32x16 the mask grid is 2x1 and its one column is centred on the frame's left
        # edge (where ASA-Net's feature lies), so the centred person never covers half a
        # cell: the report says the score was not computed instead of scoring nothing. (The
        # score at 64x32: test_synthetic_seed_at_the_training_size below.)
        self.assertIsNone(results["mask_score"])
        self.assertIn("mask score not computed: In none of the", out)
        self.assertIn("of the 2x1 mask grid; use larger frames", out)

    def test_no_baseline(self):
        import json

        output = os.path.join(self.tmp, "results.json")
        code, out, err = self.run_main(
            self.save_model(self.num_train), "--no-baseline", "--mask-tracklets", "0",
            "--no-breakdown", "--feature-parts", "--output", output,
        )  # fmt: skip
        self.assertEqual(code, 0, err)
        self.assertNotIn("raw-pixels baseline", out)
        with open(output) as f:
            results = json.load(f)
        self.assertIsNone(results["baseline"])
        self.assertIsNone(results["mask_score"])
        # --feature-parts: the three identity features and the attribute feature alone.
        self.assertIn("feature parts, each ranked alone: f_re_id [0:8] mAP", out)
        parts = results["feature_parts"]
        self.assertEqual(list(parts), ["f_re_id", "f_id", "f_ir_id", "f_re_attr"])
        self.assertEqual(parts["f_re_attr"]["columns"], [24, 56])
        self.assertEqual(parts["f_id"]["ranking"]["num_queries"], results["ranking"]["num_queries"])

    def test_synthetic_seed_at_the_training_size(self):
        """Builds the dataset of another seed; size and T come from the run's results.json
        (64x32, where the mask grid is 4x2)."""
        import json

        from keras_asanet.data import default_synthetic_root

        weights = self.save_model(self.num_train)
        run = {"config": {"dataset": "synthetic", "dataset_seed": 2, "image_size": [64, 32],
                          "seq_len": 2, "synthetic_identities": 8, "flip_test": True}}  # fmt: skip
        with open(os.path.join(self.tmp, "results.json"), "w") as f:
            json.dump(run, f)
        cache = os.path.join(self.tmp, "cache")
        output = os.path.join(self.tmp, "seed5.json")
        code, out, err = self.run_args(
            "--dataset", "synthetic", "--synthetic-seed", "5", "--cache-dir", cache,
            "--weights", weights, "--quiet", "--no-breakdown", "--output", output,
        )  # fmt: skip
        self.assertEqual(code, 0, err)
        root = default_synthetic_root(8, (64, 32), 5, base=cache)
        self.assertTrue(os.path.isfile(os.path.join(root, "synthetic_info.json")))
        self.assertIn("Synthetic dataset of seed 5 (8 identities, 64x32)", out)
        self.assertIn("64x32 (the training run's results.json); T = 2", out)
        self.assertIn("raw-pixels baseline", out)
        with open(output) as f:
            results = json.load(f)
        self.assertEqual(results["settings"]["image_size"], [64, 32])
        self.assertEqual(results["settings"]["seq_len"], 2)
        self.assertTrue(results["settings"]["flip"])  # as the run was scored
        self.assertIn("note: flip test: each clip's outputs averaged", out)
        self.assertIn("Flip test on (the training run's results.json", out)
        self.assertEqual(results["dataset_root"], root)
        self.assertEqual(results["mask_score"]["grid"], [4, 2])
        self.assertGreater(results["mask_score"]["num_frames"], 0)
        self.assertEqual(results["mask_score"]["ties"], "average")
        self.assertEqual(results["mask_score"]["cell_layout"], "centred")
        self.assertIn("(64x32 input, centred cells)", out)
        # The older tie rule and cell layout on request.
        code, out, err = self.run_args(
            "--dataset", "synthetic", "--synthetic-seed", "5", "--cache-dir", cache,
            "--weights", weights, "--quiet", "--no-breakdown", "--no-baseline",
            "--mask-ties", "position", "--mask-cells", "tiled", "--output", output,
        )  # fmt: skip
        self.assertEqual(code, 0, err)
        self.assertIn("ties: position", out)
        self.assertIn("(64x32 input, tiled cells)", out)
        with open(output) as f:
            older = json.load(f)["mask_score"]
        self.assertEqual((older["ties"], older["cell_layout"]), ("position", "tiled"))
        # The same seed as training is flagged.
        code, out, err = self.run_args(
            "--dataset", "synthetic", "--synthetic-seed", "2", "--cache-dir", cache,
            "--weights", weights, "--quiet", "--no-breakdown", "--no-baseline",
            "--mask-tracklets", "0", "--identities", "8",
        )  # fmt: skip
        self.assertEqual(code, 0, err)
        self.assertIn("trained on synthetic seed 2", out)

    def test_image_size_from_the_model(self):
        """Without --image-size or results.json: the size the model was built for."""
        import json

        output = os.path.join(self.tmp, "built.json")
        code, out, err = self.run_args(
            "--dataset", "synthetic", "--root", self.data, "--weights",
            self.save_model(self.num_train), "--seq-len", "2", "--quiet", "--no-breakdown",
            "--no-baseline", "--mask-tracklets", "0", "--output", output,
        )  # fmt: skip
        self.assertEqual(code, 0, err)
        self.assertIn("32x16 (the size the model was built for)", out)
        with open(output) as f:
            self.assertEqual(json.load(f)["settings"]["image_size"], [32, 16])

    def test_truncated_checkpoint_is_named(self):
        weights = self.save_model(self.num_train)
        with open(weights, "rb") as f:
            data = f.read()
        with open(weights, "wb") as f:
            f.write(data[: len(data) // 2])
        code, _, err = self.run_main(weights)
        self.assertEqual(code, 2)
        self.assertIn(f"{weights!r} is truncated or not a .keras file", err)

    def test_checkpoint_with_another_class_count(self):
        code, _, err = self.run_main(self.save_model(self.num_train + 3))
        self.assertEqual(code, 2)
        self.assertIn(f"{self.num_train + 3} identity classes", err)
