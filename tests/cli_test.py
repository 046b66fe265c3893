"""`keras_asanet/cli.py`: the flags the three scripts share agree, the backend is chosen before
Keras is imported (the module loads without importing it), and bad values are refused."""

import argparse
import contextlib
import dataclasses
import importlib.util
import inspect
import io
import os
import subprocess
import sys
import textwrap
from unittest import mock

import keras

from keras_asanet import cli
from keras_asanet.tests.test_case import TestCase

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _script(name):
    spec = importlib.util.spec_from_file_location(
        f"{name}_script", os.path.join(ROOT, "scripts", f"{name}.py")
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class CliTest(TestCase):
    @classmethod
    def setUpClass(cls):
        cls.fit, cls.ablation, cls.evaluate = (_script(n) for n in ("fit", "ablation", "evaluate"))

    def evaluate_args(self, *extra):
        parser = self.evaluate._parser()
        return parser.parse_args(["--dataset", "mars", "--weights", "m.keras", *extra])

    def test_the_three_scripts_share_backend_and_data_flags(self):
        fit = self.fit.parse_args([])
        ablation = self.ablation.parse_args([])
        evaluate = self.evaluate_args()
        for key in ("backend", "seq_len", "image_size", "workers"):
            values = {getattr(fit, key), getattr(ablation, key), getattr(evaluate, key)}
            self.assertLen(values, 1, key)
        with mock.patch.dict(os.environ, {"KERAS_BACKEND": "torch"}):
            self.assertEqual(self.evaluate_args().backend, "torch")
            self.assertEqual(self.fit.parse_args([]).backend, "torch")
        with mock.patch.dict(os.environ):
            os.environ.pop("KERAS_BACKEND", None)
            # evaluate.py used to default to torch while fit.py defaulted to jax.
            self.assertEqual(self.evaluate_args().backend, cli.DEFAULT_BACKEND)
            self.assertEqual(self.fit.parse_args([]).backend, cli.DEFAULT_BACKEND)

    def test_unset_data_flags_take_the_library_defaults(self):
        from keras_asanet.evaluation.feature_extraction import extract_features
        from keras_asanet.training.runner import RunConfig

        config = cli.config_from_args(self.fit.parse_args([]))
        self.assertEqual(config.workers, RunConfig().workers)
        self.assertEqual(config.workers, 1)
        evaluation = inspect.signature(extract_features).parameters["num_workers"].default
        self.assertEqual(evaluation, 4)
        parser = argparse.ArgumentParser()
        cli.add_data_arguments(parser, "x", "y")
        (workers,) = [a for a in parser._actions if a.dest == "workers"]
        self.assertIn(f"{RunConfig().workers} for the training batches", workers.help)
        self.assertIn(f"{evaluation} for the evaluation", workers.help)
        self.assertEqual(cli.config_from_args(self.fit.parse_args(["--workers", "3"])).workers, 3)

    def test_unset_run_flags_take_the_run_config_defaults(self):
        from keras_asanet.training.runner import RunConfig

        config = cli.config_from_args(self.fit.parse_args([]))
        for field in ("synthetic_identities", "heldout_identities", "prefetch"):
            self.assertEqual(getattr(config, field), getattr(RunConfig, field), field)
        flags = ["--identities", "40", "--heldout-identities", "24", "--prefetch", "1"]
        config = cli.config_from_args(self.fit.parse_args(flags))
        self.assertEqual(
            (config.synthetic_identities, config.heldout_identities, config.prefetch), (40, 24, 1)
        )

    def test_weight_decay_defaults_are_the_datasets(self):
        from keras_asanet.training.runner import dataset_defaults

        for dataset, extra in (("synthetic", []), ("mars", ["--root", "/data/MARS"])):
            config = cli.config_from_args(self.fit.parse_args(["--dataset", dataset, *extra]))
            defaults = dataset_defaults(dataset)
            self.assertEqual(config.weight_decay, defaults["weight_decay"], dataset)
            self.assertEqual(config.attribute_head_decay, defaults["attribute_head_decay"])
        # The paper's Adam decays every weight.
        self.assertEqual(dataset_defaults("mars")["weight_decay"], 5e-4)
        self.assertTrue(dataset_defaults("mars")["attribute_head_decay"])
        flags = ["--weight-decay", "0.02", "--no-attribute-head-decay"]
        config = cli.config_from_args(self.fit.parse_args(flags))
        self.assertEqual((config.weight_decay, config.attribute_head_decay), (0.02, False))
        # ASRE's query / key decay: the dataset's default unless typed, either way.
        for dataset, extra in (("synthetic", []), ("mars", ["--root", "/data/MARS"])):
            config = cli.config_from_args(self.fit.parse_args(["--dataset", dataset, *extra]))
            self.assertEqual(
                config.asre_attention_decay, dataset_defaults(dataset)["asre_attention_decay"]
            )
        self.assertTrue(dataset_defaults("mars")["asre_attention_decay"])
        self.assertFalse(dataset_defaults("synthetic")["asre_attention_decay"])
        for flag, expected in (
            ("--asre-attention-decay", True),
            ("--no-asre-attention-decay", False),
        ):
            config = cli.config_from_args(self.fit.parse_args([flag]))
            self.assertIs(config.asre_attention_decay, expected)

    def test_attribute_weight_and_asre_axis_defaults_are_the_datasets(self):
        from keras_asanet.training.runner import RunConfig, build_model

        synthetic = cli.config_from_args(self.fit.parse_args([]))
        self.assertEqual(
            (synthetic.bce_weight, synthetic.asre_softmax_over), (15.0, "identity_positions")
        )
        self.assertEqual(synthetic.bce_weight, RunConfig.bce_weight)
        mars = cli.config_from_args(self.fit.parse_args(["--dataset", "mars", "--root", "/x"]))
        self.assertEqual((mars.bce_weight, mars.asre_softmax_over), (None, "attribute_positions"))
        # A typed reading keeps its own lambda_BCE; a typed --bce-weight wins over both.
        printed = cli.config_from_args(self.fit.parse_args(["--loss-weights", "printed"]))
        self.assertIsNone(printed.bce_weight)
        flags = ["--loss-weights", "printed", "--bce-weight", "3", "--asre-softmax-over",
                 "attribute_positions"]  # fmt: skip
        typed = cli.config_from_args(self.fit.parse_args(flags))
        self.assertEqual((typed.bce_weight, typed.asre_softmax_over), (3.0, "attribute_positions"))

        class TinyDataset:
            num_train_pids = 4
            attribute_schema = "mars"

        for config, expected in (
            (synthetic, (0.0005, 15.0, "identity_positions")),
            (printed, (1.5, 0.0005, "identity_positions")),
            (mars, (0.0005, 1.5, "attribute_positions")),
        ):
            config = dataclasses.replace(config, preset="asanet_tiny", image_size=(32, 16))
            model = build_model(config, TinyDataset())
            axes = {
                layer.softmax_over
                for layer in model._flatten_layers()
                if hasattr(layer, "softmax_over")
            }
            self.assertEqual((model.center_loss_weight, model.bce_weight, *axes), expected)

    def test_attribute_loss_weighting_flag_gives_the_model_the_training_ratios(self):
        from keras_asanet.data import MARS_SCHEMA
        from keras_asanet.data.tracklet import Tracklet
        from keras_asanet.training.runner import RunConfig, UsageError, build_model

        self.assertEqual(cli.config_from_args(self.fit.parse_args([])).attribute_loss_weighting,
                         "none")  # fmt: skip
        config = cli.config_from_args(
            self.fit.parse_args(["--attribute-loss-weighting", "positive_ratio"])
        )
        self.assertEqual(config.attribute_loss_weighting, "positive_ratio")
        config = dataclasses.replace(config, preset="asanet_tiny", image_size=(32, 16))
        base = {a.name: 0 for a in MARS_SCHEMA.attributes}
        rows = [dict(base, hat=1), dict(base, hat=0), None, dict(base, hat=0), dict(base, hat=0)]

        class TinyDataset:
            num_train_pids = 4
            attribute_schema = MARS_SCHEMA
            train = [Tracklet(("f.jpg",), i, 0, i, i, attributes=r)
                     for i, r in enumerate(rows)]  # fmt: skip

        model = build_model(config, TinyDataset())
        ratios = model.attribute_positive_ratios
        self.assertEqual(ratios, MARS_SCHEMA.positive_ratios(rows))
        self.assertEqual(ratios[23 + 4], 0.25)  # hat: 1 of the 4 annotated tracklets
        self.assertIsNone(build_model(dataclasses.replace(config, attributes=False),
                                      TinyDataset()).attribute_positive_ratios)  # fmt: skip
        TinyDataset.train = [Tracklet(("f.jpg",), 0, 0, 0, 0)]
        with self.assertRaisesRegex(UsageError, "needs annotated training tracklets"):
            build_model(config, TinyDataset())
        with self.assertRaisesRegex(UsageError, "Unknown --attribute-loss-weighting 'rare'"):
            RunConfig(attribute_loss_weighting="rare").validate()

    def test_attribute_channels_flag_reaches_the_model(self):
        from keras_asanet.training.runner import RunConfig, UsageError, build_model

        class TinyDataset:
            num_train_pids = 4
            attribute_schema = "mars"

        synthetic = cli.config_from_args(self.fit.parse_args([]))
        mars = cli.config_from_args(self.fit.parse_args(["--dataset", "mars", "--root", "/x"]))
        paper = cli.config_from_args(self.fit.parse_args(["--attribute-channels", "paper"]))
        typed = cli.config_from_args(self.fit.parse_args(["--attribute-channels", "64"]))
        self.assertEqual(synthetic.attribute_channels, RunConfig.attribute_channels)
        self.assertEqual(
            (synthetic.attribute_channels, mars.attribute_channels, paper.attribute_channels),
            (128, None, None),
        )
        for config, expected in ((synthetic, 128), (paper, 64), (typed, 64), (mars, 64)):
            # asanet_tiny's backbone map has C = 128 channels: the paper's C/2 is 64.
            config = dataclasses.replace(config, preset="asanet_tiny", image_size=(32, 16))
            model = build_model(config, TinyDataset())
            self.assertEqual(model.re_attr_branch.filters, expected)
            self.assertEqual(model.ir_attr_branch.filters, expected)
        for text in ("6", "0", "wide"):
            with self.assertRaises(SystemExit):
                with contextlib.redirect_stderr(io.StringIO()):
                    self.fit.parse_args(["--attribute-channels", text])
        with self.assertRaisesRegex(UsageError, "--attribute-channels must be .*got 6"):
            RunConfig(attribute_channels=6).validate()

    def test_unseen_synthetic_seed_is_the_training_runs_heldout_seed(self):
        from keras_asanet.evaluation.unseen_synthetic import unseen_synthetic
        from keras_asanet.training.runner import RunConfig

        self.assertEqual(self.evaluate.DEFAULT_SYNTHETIC_SEED, RunConfig.heldout_seed)
        self.assertEqual(cli.DEFAULT_SYNTHETIC_SEED, RunConfig.heldout_seed)
        self.assertEqual(self.fit.parse_args([]).heldout_seed, RunConfig.heldout_seed)
        self.assertEqual(unseen_synthetic({}, cache_dir="/x").seed, RunConfig.heldout_seed)

    def test_zero_frames_or_workers_are_refused_by_every_script(self):
        for flags in (["--seq-len", "0"], ["--workers", "0"], ["--image-size", "0", "16"]):
            err = io.StringIO()
            with contextlib.redirect_stderr(err):
                with self.assertRaises(SystemExit) as exit_:
                    self.evaluate_args(*flags)
            self.assertEqual(exit_.exception.code, 2, flags)
            self.assertIn(f"argument {flags[0]}: must be >= 1, got 0", err.getvalue())
            err = io.StringIO()
            with contextlib.redirect_stderr(err):
                code = self.fit.main(flags)
            self.assertEqual(code, 2, flags)
            self.assertIn(f"argument {flags[0]}: must be >= 1, got 0", err.getvalue())
        self.assertEqual(cli.positive_int("6"), 6)
        with self.assertRaisesRegex(argparse.ArgumentTypeError, "expected an integer"):
            cli.positive_int("six")

    def test_select_backend_errors(self):
        with self.assertRaisesRegex(cli.BackendError, "unknown --backend 'mxnet'"):
            cli.select_backend("mxnet")
        missing = {"nobackend": ("no_such_backend_module", "nobackend")}
        with mock.patch.dict(cli.BACKEND_PACKAGES, missing):
            with self.assertRaisesRegex(cli.BackendError, r'pip install -e "\.\[nobackend\]"'):
                cli.select_backend("nobackend")
        # Keras is imported here already: another backend is refused, this one is accepted.
        other = next(b for b in cli.BACKEND_PACKAGES if b != keras.backend.backend())
        with mock.patch.object(cli.importlib.util, "find_spec", return_value=object()):
            with self.assertRaisesRegex(cli.BackendError, "already imported"):
                cli.select_backend(other)
        with mock.patch.dict(os.environ):
            cli.select_backend(keras.backend.backend())
            self.assertEqual(os.environ["KERAS_BACKEND"], keras.backend.backend())

    def test_loading_the_module_by_path_imports_no_keras(self):
        code = textwrap.dedent(
            f"""
            import importlib.util, sys
            spec = importlib.util.spec_from_file_location("c", {cli.__file__!r})
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            module.select_backend({keras.backend.backend()!r})
            print(sorted(m for m in sys.modules if m.split(".")[0] in ("keras", "keras_asanet")))
            """
        )
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
        )
        self.assertEqual(out.stdout.strip(), "[]")
