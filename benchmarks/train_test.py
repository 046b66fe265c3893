"""`benchmark.py train` at a tiny size: the workers run one step and report it."""

import json

import pytest

from benchmarks import train
from benchmarks._testing import OneTorchThread
from keras_asanet.tests.test_case import TestCase

# In the README's test command this runs once, in the torch backend's run.
pytestmark = pytest.mark.backend_independent


def args(kind, **overrides):
    argv = ["--kind", kind, "--image-size", "32", "16", "--seq-len", "2", "--batch", "2", "3"]
    argv += ["--steps", "1", "--warmup", "0", "--num-identities", "5"]
    parsed = train.worker_parser().parse_args(argv)
    parsed.image_size, parsed.batch = tuple(parsed.image_size), tuple(parsed.batch)
    for key, value in overrides.items():
        setattr(parsed, key, value)
    return parsed


class TrainBenchmarkTest(OneTorchThread, TestCase):
    def test_keras_and_reference_steps_have_equal_parameters_and_a_table(self):
        reference = train.reference_worker(args("reference"))
        keras_step = train.keras_worker(args("keras"))
        self.assertEqual(reference["params"], keras_step["params"])
        for out in (reference, keras_step):
            self.assertGreater(out["clips_per_s"], 0.0)
            self.assertLen(out["step_seconds_all"], 1)
        result = {
            "preset": "asanet_tiny", "image_size": [32, 16], "seq_len": 2, "batch": [2, 3],
            "steps": 1, "warmup": 0, "num_identities": 5, "threads": 1,
            "reference": reference,
            "keras": {
                "torch jit_compile=False": keras_step,
                "jax jit_compile=True": {"error": "x"},
            },
        }  # fmt: skip
        train._ratios(result)
        json.dumps(result)
        self.assertTrue(result["params_equal"])
        self.assertAlmostEqual(
            keras_step["vs_reference"],
            keras_step["clips_per_s"] / reference["clips_per_s"],
            places=2,
        )
        table = train.table(result)
        self.assertIn("| keras_asanet jax jit_compile=True | x |", table)
        # A parameter mismatch is an error, not a row.
        keras_step["params"] += 1
        with self.assertRaisesRegex(AssertionError, "parameter counts differ"):
            train._ratios(result)
