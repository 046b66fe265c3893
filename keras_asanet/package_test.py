"""`import keras_asanet` registers every serializable class, so `.keras` files load with plain
`keras.models.load_model`, while the evaluation and visualization code stays unimported."""

import importlib
import json
import os
import pkgutil
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

import keras_asanet
from keras_asanet.tests.test_case import TestCase

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _fresh_python(code, timeout=600):
    """Runs `code` in a new interpreter on this backend; returns its stdout."""
    env = dict(
        os.environ,
        KERAS_BACKEND=keras.backend.backend(),
        PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""),
        TF_CPP_MIN_LOG_LEVEL="2",
    )
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert result.returncode == 0, result.stdout + result.stderr[-4000:]
    return result.stdout


def _all_registered_names():
    """The `keras_asanet>...` names registered by the library's modules: every module whose
    source registers a class is imported, then the registry is read."""
    package = os.path.dirname(os.path.abspath(keras_asanet.__file__))
    for info in pkgutil.walk_packages([package], "keras_asanet."):
        if info.ispkg or info.name.endswith("_test") or ".tests" in info.name:
            continue
        source = os.path.join(package, *info.name.split(".")[1:]) + ".py"
        with open(source, encoding="utf-8") as f:
            if "register_keras_serializable" in f.read():
                importlib.import_module(info.name)
    return sorted(k for k in keras.saving.get_custom_objects() if k.startswith("keras_asanet>"))


@pytest.mark.heavy
@pytest.mark.subprocess
class PackageImportTest(TestCase):
    def test_import_registers_every_serializable_class(self):
        expected = _all_registered_names()
        for name in ("ASANet", "AGWResNet", "ASRE", "BottleneckBlock", "CoupledWeightDecayAdam"):
            self.assertIn(f"keras_asanet>{name}", expected)
        self.assertIn("keras_asanet>PMITripletLoss", expected)
        out = _fresh_python(
            f"""
            import json, sys
            import keras_asanet, keras
            missing = [n for n in {expected!r} if keras.saving.get_registered_object(n) is None]
            lazy = [m for m in ("keras_asanet.evaluation", "keras_asanet.visualization")
                    if m in sys.modules]
            print(json.dumps({{"missing": missing, "imported_lazy": lazy}}))
            """
        )
        report = json.loads(out.strip().splitlines()[-1])
        self.assertEqual(report["missing"], [])
        self.assertEqual(report["imported_lazy"], [])

    def test_plain_load_model_after_import(self):
        from keras_asanet.models import ASANet
        from keras_asanet.training import make_optimizer

        tmp = self.get_temp_dir()
        path = os.path.join(tmp, "asanet.keras")
        # The smallest ASANet (a fresh JAX process compiles every op it runs once).
        model = ASANet.from_preset(
            "asanet_tiny",
            num_identities=4,
            attribute_schema="mars",
            backbone={"block_counts": (1, 1, 1, 1), "width": 4, "non_local": (0, 1, 1, 0)},
            branch_dim=8,
        )
        model.build_for_input((None, 2, 32, 16, 3))
        model.compile(optimizer=make_optimizer(center_loss_weight=model.center_loss_weight))
        model.optimizer.build(model.trainable_variables)
        model.save(path)
        x = np.random.default_rng(0).uniform(0, 255, (2, 2, 32, 16, 3)).astype("float32")
        np.save(os.path.join(tmp, "x.npy"), x)
        expected = keras.ops.convert_to_numpy(model(x))

        out = _fresh_python(
            f"""
            import keras, keras_asanet
            import numpy as np

            model = keras.models.load_model({path!r})
            features = model(np.load({os.path.join(tmp, "x.npy")!r}))
            np.save({os.path.join(tmp, "features.npy")!r}, keras.ops.convert_to_numpy(features))
            network = model.optimizer._optimizer_map.default_optimizer
            print(type(model).__name__, type(model.optimizer).__name__, type(network).__name__)
            """
        )
        self.assertEqual(
            out.split()[-3:], ["ASANet", "MultiOptimizer", "CoupledWeightDecayAdam"], out
        )
        self.assertAllClose(np.load(os.path.join(tmp, "features.npy")), expected, atol=1e-5)
