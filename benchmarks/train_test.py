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
            "steps": 1, "warmup": 0, "num_identities": 5, "threads": 1, "peak_tflops": 0.5,
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
        # Every configuration's model TFLOP/s is the reference's step FLOPs at its own rate.
        for out in (reference, keras_step):
            steps_per_s = out["clips_per_s"] / 6
            expected = reference["step_flops"] * steps_per_s / 1e12
            self.assertAllClose(out["model_tflops_per_s"], expected, rtol=1e-3)
            self.assertAllClose(out["mfu"], out["model_tflops_per_s"] / 0.5, rtol=1e-3)
        table = train.table(result)
        self.assertIn("| keras_asanet jax jit_compile=True | x |", table)
        self.assertIn("| model TFLOP/s | MFU |", table)
        self.assertIn(f"Model FLOPs per step: {reference['step_flops'] / 1e9:.2f} GFLOP", table)
        self.assertIn(f"{100 * keras_step['mfu']:.1f} % |", table)
        self.assertNotIn("device peak", table)  # on a CPU no process has one
        keras_step["device_peak_bytes"] = 2**30  # as a GPU run reports it
        lines = train.table(result).splitlines()
        self.assertIn("| peak RSS | device peak | model TFLOP/s | MFU |", lines[4])
        self.assertIn(" GiB | - | ", lines[6])  # the reference, here on the CPU
        self.assertIn(" GiB | 1.00 GiB | ", lines[7])
        # A parameter mismatch is an error, not a row.
        keras_step["params"] += 1
        with self.assertRaisesRegex(AssertionError, "parameter counts differ"):
            train._ratios(result)

    def test_step_flops_count_forward_and_backward_per_clip(self):
        """The reference's step FLOPs: about three forward passes (the backward computes the
        gradients of inputs and weights), and twice the clips give twice the FLOPs."""
        import torch
        from torch.utils.flop_counter import FlopCounterMode

        from benchmarks.reference_torch import ReferenceASANet, ReferenceTrainer

        def counts(batch):
            torch.manual_seed(0)
            model = ReferenceASANet.from_preset("asanet_tiny", 5)
            trainer = ReferenceTrainer(model)
            clips, targets = train.make_batch(batch, 2, (32, 16))
            x = torch.from_numpy(clips).permute(0, 1, 4, 2, 3).contiguous()
            y = {k: torch.from_numpy(v) for k, v in targets.items()}
            with FlopCounterMode(display=False) as forward, torch.no_grad():
                model(x)
            return forward.get_total_flops(), train.step_flops(lambda: trainer.step(x, y))

        forward, step = counts((2, 3))
        self.assertGreater(forward, 0)
        self.assertBetween(step / forward, 2.0, 3.5)
        _, doubled = counts((4, 3))
        self.assertAllClose(doubled / step, 2.0, rtol=0.02)
