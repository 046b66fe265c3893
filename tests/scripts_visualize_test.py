"""scripts/visualize.py end to end, in this process (`main([...])`), on a tiny synthetic
dataset and the tiniest saved ASANet: every figure file is a PNG of its figure's size, the
page shows each of them, the training curves come from the run's checkpoint beside the
model; and bad arguments exit with code 2 and a message."""

import contextlib
import importlib.util
import io
import json
import os
import re
import tempfile

import keras
from PIL import Image

from keras_asanet.tests.test_case import TestCase

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(REPO, "scripts", "visualize.py")


def _load_script():
    spec = importlib.util.spec_from_file_location("visualize_script", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class VisualizeScriptTest(TestCase):
    @classmethod
    def setUpClass(cls):
        # The dataset and model the visualisation tests share in this process (one build).
        from keras_asanet.visualization._testing import synthetic_dataset, tiny_asanet

        cls.script = _load_script()
        cls._tmp = tempfile.TemporaryDirectory()
        cls.data, _ = synthetic_dataset()
        run = os.path.join(cls._tmp.name, "run")
        os.makedirs(os.path.join(run, "checkpoints", "ckpt-000002"))
        cls.weights = os.path.join(run, "model.keras")
        tiny_asanet().save(cls.weights)
        # What the training runner leaves beside the model: results.json (its settings) and
        # a checkpoint whose state.json holds the history.
        with open(os.path.join(run, "results.json"), "w") as f:
            json.dump({"config": {"image_size": [32, 16], "seq_len": 2, "flip_test": True}}, f)
        cls.history = {"loss": [3.0, 2.5, 2.0], "xent": [2.0, 1.5, 1.2], "id_acc": [0.1, 0.3, 0.5]}
        with open(os.path.join(run, "checkpoints", "ckpt-000002", "state.json"), "w") as f:
            json.dump({"epoch": 3, "history": cls.history}, f)

    @classmethod
    def tearDownClass(cls):
        cls._tmp.cleanup()

    def run_main(self, *args):
        out, err = io.StringIO(), io.StringIO()
        code = 0
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = self.script.main(["--backend", keras.backend.backend(), *args])
            except SystemExit as exit_:  # argparse's parser.error
                code = exit_.code
        return code or 0, out.getvalue(), err.getvalue()

    def test_writes_every_figure_and_the_page(self):
        output = os.path.join(self.get_temp_dir(), "figures")
        code, out, err = self.run_main(
            "--weights", self.weights, "--dataset", "synthetic", "--root", self.data,
            "--output", output, "--tracklets", "1", "--quiet", "--workers", "1",
        )  # fmt: skip
        self.assertEqual(code, 0, err)
        expected = [
            "retrieval.png", "cmc.png", "tsne_pose.png", "tsne_motion.png", "attributes.png",
            "masks_0.png", "grad_cam_0.png", "curves.png",
        ]  # fmt: skip
        for name in expected:
            path = os.path.join(output, name)
            self.assertIn(f"wrote {path}", out)
            with Image.open(path) as image:
                self.assertEqual(image.format, "PNG", name)
                self.assertGreater(min(image.size), 100, name)
        self.assertEqual(sorted(os.listdir(output)), sorted([*expected, "index.html"]))
        with open(os.path.join(output, "index.html"), encoding="utf-8") as f:
            page = f.read()
        self.assertEqual(re.findall(r'<img src="([^"]+)"', page), expected)
        self.assertNotIn("Not shown", page)
        # Settings from the run's results.json (32x16, T = 2): 2x1 masks over 2 frames; the
        # training curves from its checkpoint (curves.png is 10 x 3.5 inches).
        self.assertIn("over 2 frames of query pid", page)
        # ... and its flip test, for the features behind the retrievals.
        self.assertIn("queries (mars/usual, cosine, flip test): green", page)
        with Image.open(os.path.join(output, "curves.png")) as image:
            self.assertEqual(image.size, (1000, 350))

    def test_bad_arguments_exit_2(self):
        folder = self.get_temp_dir()
        missing = os.path.join(folder, "none.keras")
        code, _, err = self.run_main(
            "--weights", missing, "--dataset", "synthetic", "--root", self.data,
            "--output", folder,
        )  # fmt: skip
        self.assertEqual(code, 2)
        self.assertIn(f"checkpoint {missing!r} does not exist", err)
        a_file = os.path.join(folder, "page.html")
        open(a_file, "w").close()
        code, _, err = self.run_main(
            "--weights", self.weights, "--dataset", "synthetic", "--root", self.data,
            "--output", a_file,
        )  # fmt: skip
        self.assertEqual(code, 2)
        self.assertIn("is a file; give a folder", err)
        code, _, err = self.run_main(
            "--weights", self.weights, "--dataset", "market", "--output", folder
        )
        self.assertEqual(code, 2)
        self.assertIn("Unknown dataset 'market'", err)
        code, _, err = self.run_main(
            "--weights", self.weights, "--dataset", "mars", "--output", folder
        )
        self.assertEqual(code, 2)
        self.assertIn("--dataset mars needs --root PATH", err)
