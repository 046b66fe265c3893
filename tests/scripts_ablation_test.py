"""`scripts/ablation.py` and `keras_asanet.training.ablation`: the table is generated from the
runs, the generated block replaces only itself, and a tiny ablation runs end to end."""

import contextlib
import dataclasses
import importlib.util
import io
import json
import os

import keras
import pytest

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

    def test_mask_ious_scored_by_position_are_marked(self):
        old = dataclasses.replace(_measure("+asre", 0, 0.4), mask_iou=0.2, centre_prior_iou=0.7)
        record = old.to_dict()
        del record["mask_ties"]  # as docs/results.json recorded runs before the tie rule
        del record["mask_cells"]  # and before the cell layout
        old = ablation.RunMeasure.from_dict(record)
        self.assertEqual(old.mask_ties, "position")
        new = dataclasses.replace(
            _measure("+pmi (ASANet-a)", 0, 0.5),
            mask_iou=0.4,
            centre_prior_iou=0.35,
            mask_ties="average",
            mask_cells="centred",
        )
        summary = ablation.summarise([old, new])
        self.assertEqual([s["mask_ties"] for s in summary], ["position", "average"])
        table = ablation.markdown_table(summary)
        self.assertIn("| 20.0 ± 0.0 (70.0 ± 0.0) † ‡ |", table)
        self.assertIn("| 40.0 ± 0.0 (35.0 ± 0.0) |", table)
        self.assertIn("† mask IoUs scored before ties were averaged", table)
        self.assertIn("| 20.0 † |", ablation.per_run_table([old, new]))
        # No footnote when every mask IoU averages its ties.
        self.assertNotIn("†", ablation.markdown_table(ablation.summarise([new])))

    def test_mask_ious_scored_on_tiles_are_marked(self):
        """Runs recorded before the cell layout existed were scored on equal tiles."""
        record = dataclasses.replace(
            _measure("+asre", 0, 0.4), mask_iou=0.2, centre_prior_iou=0.35, mask_ties="average"
        ).to_dict()
        del record["mask_cells"]
        tiled = ablation.RunMeasure.from_dict(record)
        self.assertEqual(tiled.mask_cells, "tiled")
        no_masks = ablation.RunMeasure.from_dict(
            {
                k: v
                for k, v in _measure("no_attributes", 0, 0.3).to_dict().items()
                if k != "mask_cells"
            }
        )
        self.assertIsNone(no_masks.mask_cells)
        centred = dataclasses.replace(tiled, row="+pmi (ASANet-a)", mask_cells="centred")
        summary = ablation.summarise([tiled, centred, no_masks])
        self.assertEqual([s["mask_cells"] for s in summary], [None, "tiled", "centred"])
        table = ablation.markdown_table(summary)
        self.assertIn("| +asre | 40.0 ± 0.0 |", table)
        self.assertIn("| 20.0 ± 0.0 (35.0 ± 0.0) ‡ |", table)
        self.assertIn("| 20.0 ± 0.0 (35.0 ± 0.0) | 50.0 ± 0.0 |", table)
        self.assertIn("‡ mask IoUs scored on equal tiles of the frame", table)
        self.assertNotIn("‡", ablation.markdown_table(ablation.summarise([centred, no_masks])))

    def test_mask_regions_are_tabled_per_run(self):
        """Each run's masks region by region, beside the centre prior and the best k cells;
        runs recorded before the regions were kept read back as None and are left out."""
        region = {"re_iou": 0.2, "ir_iou": 0.5, "centre_iou": 0.0, "best_iou": 0.5}
        regions = {
            "person": {"re_iou": 0.54, "ir_iou": 0.55, "centre_iou": 0.7, "best_iou": 0.771,
                       "num_frames": 225},
            "top": {**region, "num_frames": 174},
            "bottom": {**region, "num_frames": 73},
            "hat": {"re_iou": None, "ir_iou": None, "centre_iou": None, "best_iou": None,
                    "num_frames": 0},
        }  # fmt: skip
        record = _measure("+asre", 0, 0.4).to_dict()
        del record["mask_regions"]
        old = ablation.RunMeasure.from_dict(record)
        self.assertIsNone(old.mask_regions)
        self.assertEqual(ablation.mask_region_table([old]), "")
        new = dataclasses.replace(old, seed=1, mask_regions=regions)
        again = ablation.RunMeasure.from_dict(json.loads(json.dumps(new.to_dict())))
        self.assertEqual(again, new)
        table = ablation.mask_region_table([old, new]).splitlines()
        self.assertEqual(len(table), 3)  # header, rule, the one run that has regions
        self.assertIn("bottom: re / ir (centre prior; best)", table[0])
        self.assertEqual(
            table[2],
            "| +asre | 1 | 54.0 / 55.0 (70.0; 77.1) | 20.0 / 50.0 (0.0; 50.0) "
            "| 20.0 / 50.0 (0.0; 50.0) |",
        )
        self.assertIn("| - |", ablation.mask_region_table([new], regions=("hat",)))

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

    def test_recorded_measures_fill_runs_without_a_folder(self):
        tmp = self.get_temp_dir()
        recorded_runs = [_measure("no_attributes", 0, 0.2), _measure("no_attributes", 1, 0.3)]
        path = os.path.join(tmp, "results.json")
        with open(path, "w") as f:
            json.dump({"summary": [], "runs": [m.to_dict() for m in recorded_runs]}, f)
        recorded = ablation.recorded_measures(path)
        self.assertEqual(recorded[("no_attributes", 1)], recorded_runs[1])
        logs = []
        measures, summary, _ = ablation.run_ablation(
            ["no_attributes"], [0, 1], None, tmp, 1000, log=logs.append,
            reuse_only=True, recorded=recorded,
        )  # fmt: skip
        self.assertEqual(measures, recorded_runs)  # nothing trained, nothing skipped
        self.assertAllClose(summary[0]["mAP"], (0.25, 0.05))
        self.assertIn("its recorded measure", logs[0])
        with open(path, "w") as f:
            json.dump({"summary": []}, f)
        with self.assertRaisesRegex(ValueError, "no 'runs' list"):
            ablation.recorded_measures(path)
        with self.assertRaisesRegex(FileNotFoundError, "results JSON written by"):
            ablation.recorded_measures(os.path.join(tmp, "absent.json"))

    def test_rows_train_on_the_recipe_they_were_measured_with(self):
        from keras_asanet.training.runner import RunConfig

        base = RunConfig()  # today's main job: 600 identities, decay 1e-2, heads spared
        early = ablation.row_config("+pmi (ASANet-a)", 1, base, "out", 1000)
        self.assertEqual(
            (early.synthetic_identities, early.weight_decay, early.attribute_head_decay),
            (300, 5e-4, True),
        )
        self.assertEqual((early.seed, early.dataset_seed, early.color_jitter), (1, 1, 0.0))
        wider = ablation.row_config(
            "ASANet-a, colour jitter 0.4, 600 identities, weight decay 5e-3", 0, base, "out", 1000
        )
        self.assertEqual(
            (wider.synthetic_identities, wider.weight_decay, wider.attribute_head_decay),
            (600, 5e-3, True),
        )
        strong = ablation.row_config(
            "ASANet-a, colour jitter 0.4, 600 identities, weight decay 1e-2, heads undecayed, "
            "lambda_BCE 15", 0, base, "out", 1000,
        )  # fmt: skip
        self.assertEqual(
            (strong.synthetic_identities, strong.weight_decay, strong.attribute_head_decay),
            (600, 1e-2, False),
        )
        self.assertEqual(strong.model_overrides, {"bce_weight": 15.0})
        # Settings that became defaults later are pinned to what the rows trained with, even
        # under a base config that has them the other way.
        other = dataclasses.replace(base, asre_attention_decay=False, bce_weight=3.0)
        pinned = ablation.row_config("+pmi (ASANet-a)", 0, other, "out", 1000)
        self.assertEqual(
            (pinned.asre_attention_decay, pinned.bce_weight, pinned.asre_softmax_over),
            (True, None, "attribute_positions"),
        )
        # Rows measured before the flip test existed are scored without it; the flip-test
        # rows train the model of their plain twin and score it flipped.
        self.assertTrue(base.flip_test)
        self.assertFalse(pinned.flip_test)
        main = ("ASANet-a, colour jitter 0.4, 600 identities, weight decay 1e-2, heads "
                "undecayed, lambda_BCE 15, softmax over identity positions")  # fmt: skip
        plain = ablation.row_config(main, 0, base, "out", 1000)
        flipped = ablation.row_config(f"{main}, flip test", 0, base, "out", 1000)
        self.assertFalse(plain.flip_test)
        self.assertEqual(dataclasses.replace(flipped, flip_test=False), plain)
        # Every row before the 1,000-identity ones trained 40 epochs, whatever the default
        # is now; those set their own 24.
        self.assertEqual((early.epochs, plain.epochs), (40, 40))
        wide = ablation.row_config(
            "ASANet-a, the main job's recipe on 1000 identities, 24 epochs", 0, base, "out", 1000
        )
        self.assertEqual((wide.synthetic_identities, wide.epochs), (1000, 24))

    def test_typed_flags_win_over_the_recipe_not_over_the_row(self):
        from keras_asanet.cli import typed_fields
        from keras_asanet.training.runner import RunConfig

        argv = ["--rows", "+asre", "--seeds", "3", "--epochs", "2", "--identities", "12"]
        typed = typed_fields(argv, ablation=True)
        self.assertEqual(typed, {"epochs", "synthetic_identities"})
        base = RunConfig(epochs=2, synthetic_identities=12)
        tiny = ablation.row_config("+asre", 3, base, "out", 1000, typed)
        self.assertEqual((tiny.epochs, tiny.synthetic_identities), (2, 12))
        # Untyped, the recipe's values come back.
        untyped = ablation.row_config("+asre", 3, base, "out", 1000)
        self.assertEqual((untyped.epochs, untyped.synthetic_identities), (40, 300))
        # A row's own override is what the row measures: a typed flag does not move it.
        row = "ASANet-a, the main job's recipe on 1000 identities, 24 epochs"
        wide = ablation.row_config(row, 3, base, "out", 1000, typed)
        self.assertEqual((wide.epochs, wide.synthetic_identities), (24, 1000))

    def test_heldout_seed_must_not_be_trained_on(self):
        with self.assertRaisesRegex(ValueError, "held-out seed 1"):
            ablation.run_ablation(["no_attributes"], [0, 1], None, self.get_temp_dir(), 1)


# The script only orchestrates `keras_asanet.training.runner.train`, whose training and
# evaluation are tested on every backend (tests/scripts_fit_test.py): one run of it, under the
# backend of the run that keeps the backend-independent tests, is enough.
@pytest.mark.backend_independent
class AblationScriptTest(TestCase):
    @pytest.mark.heavy
    def test_tiny_ablation_end_to_end(self):
        tmp = self.get_temp_dir()
        results = os.path.join(tmp, "results.md")
        with open(results, "w") as f:
            f.write("# Results\n\nprose stays\n")
        args = [
            "--backend", keras.backend.backend(), "--rows", "+asre",
            "--seeds", "3", "--heldout-seed", "5", "--identities", "12",
            "--heldout-identities", "12",
            # 64x32: the smallest frames whose 4x2 mask grid has a cell the person fills.
            "--image-size", "64", "32", "--seq-len", "2", "--batch", "2", "2", "--epochs", "1",
            "--eval-mode", "sampled", "--quiet", "--output", os.path.join(tmp, "runs"),
            "--results", results,
        ]  # fmt: skip

        def call(*extra):
            out = io.StringIO()
            env_home = os.environ.get("HOME")
            os.environ["HOME"] = tmp  # the synthetic cache goes under the temporary home
            try:
                with contextlib.redirect_stdout(out):
                    code = ablation_script.main([*args, *extra])
            finally:
                os.environ["HOME"] = env_home
            self.assertEqual(code, 0, out.getvalue())
            with open(os.path.join(tmp, "results.json")) as f:
                (run,) = json.load(f)["runs"]
            return out.getvalue(), run

        # Trained and scored with the Euclidean distance first.
        _, run = call("--metric", "euclidean")
        with open(os.path.join(ROOT, "README.md")) as f:
            readme = f.read()
        self.assertNotIn(tmp, readme)  # a results file elsewhere leaves the README alone
        with open(results) as f:
            text = f.read()
        self.assertIn("prose stays", text)
        self.assertIn("| +asre |", text)
        self.assertIn("python scripts/ablation.py", text)
        self.assertEqual((run["row"], run["seed"]), ("+asre", 3))
        self.assertGreaterEqual(run["mAP"], 0.0)
        self.assertLessEqual(run["mAP"], 1.0)
        self.assertGreater(run["baseline_mAP"], 0.0)
        self.assertIsNotNone(run["majority_re"])
        self.assertIsNotNone(run["attr_re"])  # heads exist and were scored

        # The default distance (cosine) re-scores the finished run from its model.keras
        # instead of training again: the same numbers as evaluating that model afresh, the
        # distance-free measures (attributes, masks, training time) kept.
        folder = os.path.join(tmp, "runs", "asre", "seed3")
        log, rescored = call()
        self.assertIn("re-scoring the finished run with cosine", log)
        with open(os.path.join(folder, "results.json")) as f:
            saved = json.load(f)
        self.assertEqual(saved["unseen"]["metric"], "cosine")
        self.assertEqual(saved["final"]["metric"], "cosine")
        for key in ("train_seconds", "attr_re", "attr_ir", "mask_iou", "baseline_mAP"):
            self.assertEqual(rescored[key], run[key], key)
        self.assertAlmostEqual(rescored["mAP"], self._cosine_unseen_mAP(tmp, folder), places=6)

        # A third call reuses the run as it stands.
        log, again = call()
        self.assertIn("reusing the finished run", log)
        self.assertEqual(again, rescored)
        self.assertEqual(again["mask_cells"], "centred")
        # Its masks region by region, as the run's own held-out score has them, and tabled.
        with open(os.path.join(folder, "results.json")) as f:
            held_out = json.load(f)["unseen"]["mask_score"]
        self.assertEqual(again["mask_regions"]["person"]["re_iou"], held_out["re_iou"])
        self.assertEqual(again["mask_regions"]["person"]["centre_iou"], held_out["centre_iou"])
        self.assertEqual(again["mask_regions"]["top"], held_out["regions"]["top"])
        with open(results) as f:
            self.assertIn("Where each run's masks point", f.read())

        # A run whose masks were scored on equal tiles (before the cell layout existed) gets
        # them scored again on centred cells, from its model.keras, and nothing else changes.
        with open(os.path.join(folder, "results.json")) as f:
            saved = json.load(f)
        for key in ("mask_score", "report"):
            holder = saved if key == "mask_score" else saved["report"]
            holder["mask_score"]["cell_layout"] = "tiled"
        del saved["unseen"]["mask_score"]["cell_layout"]
        saved["unseen"]["mask_score"]["re_iou"] = saved["unseen"]["mask_score"]["ir_iou"] = -1.0
        with open(os.path.join(folder, "results.json"), "w") as f:
            json.dump(saved, f)
        log, masks_again = call()
        self.assertIn("scoring the finished run's masks on centred cells", log)
        self.assertEqual(masks_again, rescored)
        with open(os.path.join(folder, "results.json")) as f:
            saved = json.load(f)
        self.assertEqual(saved["unseen"]["mask_score"]["cell_layout"], "centred")
        self.assertEqual(saved["report"]["mask_score"]["cell_layout"], "centred")

        # Another held-out size scores the finished run on that set (masks included), with
        # no training again.
        log, bigger = call("--heldout-identities", "16")
        self.assertIn("scoring the finished run on 16 held-out identities", log)
        self.assertIn("(16 identities, half in its test split", log)
        with open(os.path.join(folder, "results.json")) as f:
            saved = json.load(f)
        self.assertEqual(saved["unseen"]["identities"], 16)
        self.assertIsNotNone(saved["unseen"]["mask_score"])
        self.assertEqual(bigger["train_seconds"], run["train_seconds"])
        self.assertAlmostEqual(
            bigger["mAP"], self._cosine_unseen_mAP(tmp, folder, identities=16), places=6
        )

    def _cosine_unseen_mAP(self, home, folder, identities=12):
        from keras_asanet.data import default_synthetic_root, get_dataset
        from keras_asanet.evaluation import evaluate_asanet
        from keras_asanet.models import load_model

        root = default_synthetic_root(
            identities, (64, 32), 5, base=f"{home}/.keras_asanet/synthetic"
        )
        report = evaluate_asanet(
            load_model(os.path.join(folder, "model.keras")),
            get_dataset("synthetic", root),
            metric="cosine",
            mode="sampled",
            seq_len=2,
            image_size=(64, 32),
            verbose=False,
        )
        return report.ranking.mAP
