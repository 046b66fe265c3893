"""`scripts/ablation.py` and `keras_asanet.training.ablation`: the table is generated from the
runs, the generated block replaces only itself, and a tiny ablation runs end to end."""

import contextlib
import importlib.util
import io
import json
import os

import keras

from keras_asanet.tests.test_case import TestCase
from keras_asanet.training import ablation

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_spec = importlib.util.spec_from_file_location(
    "ablation_script", os.path.join(ROOT, "scripts", "ablation.py")
)
ablation_script = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(ablation_script)


def _measure(row, seed, m):
    return ablation.RunMeasure(
        row=row,
        seed=seed,
        mAP=m,
        rank1=m / 2,
        baseline_mAP=0.1,
        baseline_rank1=0.05,
        attr_re=None,
        attr_ir=None,
        majority_re=0.6,
        majority_ir=0.3,
        mask_iou=None,
        centre_prior_iou=None,
        seen_mAP=m + 0.1,
        train_seconds=10.0,
    )


class AblationTableTest(TestCase):
    def test_summary_is_mean_and_std_over_seeds_in_row_order(self):
        measures = [
            _measure("+asre", 0, 0.4),
            _measure("no_attributes", 0, 0.2),
            _measure("no_attributes", 1, 0.3),
            _measure("+asre", 1, 0.6),
        ]
        summary = ablation.summarise(measures)
        self.assertEqual([s["row"] for s in summary], ["no_attributes", "+asre"])
        self.assertAllClose(summary[0]["mAP"], (0.25, 0.05))
        self.assertAllClose(summary[1]["mAP"], (0.5, 0.1))
        self.assertIsNone(summary[0]["attr_re"])
        table = ablation.markdown_table(summary)
        self.assertIn("| no_attributes | 25.0 ± 5.0 | 12.5 ± 2.5 | 10.0 ± 0.0 | - |", table)

    def test_generated_block_replaces_only_itself(self):
        text = "intro\n" + ablation.GENERATED_START + "\nold\n" + ablation.GENERATED_END + "\nend\n"
        new = ablation.replace_generated_block(text, "| new |")
        self.assertEqual(
            new,
            "intro\n"
            + ablation.GENERATED_START
            + "\n| new |\n"
            + ablation.GENERATED_END
            + "\nend\n",
        )
        appended = ablation.replace_generated_block("# Results\n", "x")
        self.assertTrue(appended.endswith(ablation.GENERATED_END + "\n"))

    def test_heldout_seed_must_not_be_trained_on(self):
        with self.assertRaisesRegex(ValueError, "held-out seed 1"):
            ablation.run_ablation(["no_attributes"], [0, 1], None, self.get_temp_dir(), 1)


class AblationScriptTest(TestCase):
    def test_tiny_ablation_end_to_end(self):
        tmp = self.get_temp_dir()
        results = os.path.join(tmp, "results.md")
        with open(results, "w") as f:
            f.write("# Results\n\nprose stays\n")
        args = [
            "--backend", keras.backend.backend(), "--rows", "+asre",
            "--seeds", "3", "--heldout-seed", "5", "--identities", "12",
            "--image-size", "32", "16", "--seq-len", "2", "--batch", "2", "2", "--epochs", "1",
            "--eval-mode", "sampled", "--quiet", "--output", os.path.join(tmp, "runs"),
            "--results", results,
        ]  # fmt: skip
        out = io.StringIO()
        env_home = os.environ.get("HOME")
        os.environ["HOME"] = tmp  # the synthetic cache goes under the temporary home
        try:
            with contextlib.redirect_stdout(out):
                code = ablation_script.main(args)
        finally:
            os.environ["HOME"] = env_home
        self.assertEqual(code, 0, out.getvalue())
        with open(os.path.join(ROOT, "README.md")) as f:
            readme = f.read()
        self.assertNotIn(tmp, readme)  # a results file elsewhere leaves the README alone
        with open(results) as f:
            text = f.read()
        self.assertIn("prose stays", text)
        self.assertIn("| +asre |", text)
        self.assertIn("python scripts/ablation.py", text)
        with open(os.path.join(tmp, "results.json")) as f:
            runs = json.load(f)["runs"]
        self.assertEqual([(r["row"], r["seed"]) for r in runs], [("+asre", 3)])
        (run,) = runs
        self.assertGreaterEqual(run["mAP"], 0.0)
        self.assertLessEqual(run["mAP"], 1.0)
        self.assertGreater(run["baseline_mAP"], 0.0)
        self.assertIsNotNone(run["majority_re"])
        self.assertIsNotNone(run["attr_re"])  # heads exist and were scored
        # A second call reuses the finished run instead of training again.
        out = io.StringIO()
        os.environ["HOME"] = tmp
        try:
            with contextlib.redirect_stdout(out):
                self.assertEqual(ablation_script.main(args), 0)
        finally:
            os.environ["HOME"] = env_home
        self.assertIn("reusing the finished run", out.getvalue())
