"""The `>>>` examples of the library's docstrings run, on the suite's backend (the rendered API
reference shows them; an example that no longer runs is a wrong document). Examples marked
`# doctest: +SKIP` need a dataset or a trained model and are shown only."""

import doctest
import importlib
import os
import pkgutil

import keras
import numpy as np

import keras_asanet
from keras_asanet.tests.test_case import TestCase


def _modules_with_examples():
    root = os.path.dirname(keras_asanet.__file__)
    for info in pkgutil.walk_packages([root], prefix="keras_asanet."):
        name = info.name
        if name.endswith("_test") or ".tests" in name or name.endswith("_testing"):
            continue
        path = os.path.join(os.path.dirname(root), *name.split(".")) + ".py"
        if os.path.isfile(path):
            with open(path) as f:
                if ">>>" in f.read():
                    yield name


class DocstringExamplesTest(TestCase):
    def test_every_example_runs(self):
        names = list(_modules_with_examples())
        self.assertGreaterEqual(len(names), 10)
        failures = []
        for name in names:
            module = importlib.import_module(name)
            result = doctest.testmod(
                module,
                extraglobs={"np": np, "keras": keras},
                optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE,
                report=False,
            )
            if result.failed:
                failures.append(f"{name}: {result.failed} of {result.attempted} failed")
        self.assertEqual(failures, [], "run `python -m doctest -v` on the module to see why")
