"""`benchmarks/device/gpu_tables.sh` runs through at a tiny size on the CPU, so that its one
run on a lent GPU machine (minutes of device time) does not fail on a typo."""

import os
import subprocess

import pytest

from keras_asanet.tests.test_case import TestCase

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# Several benchmark workers in subprocesses; once, in the torch backend's run.
pytestmark = [pytest.mark.heavy, pytest.mark.backend_independent]


class GpuTablesScriptTest(TestCase):
    def test_every_phase_writes_its_table(self):
        out = os.path.join(self.get_temp_dir(), "out")
        env = dict(
            os.environ,
            OUT=out,
            SKIP_INSTALL="1",
            PRESET="asanet_tiny",
            SIZE="32 16",
            BATCH="2 2",
            SEQ="2",
            STEPS="1",
            PEAK_MIXED="2",
            PEAK_FP32="1",
            HOME=self.get_temp_dir(),  # the synthetic set of `infer` is built under it
        )
        done = subprocess.run(
            ["bash", os.path.join(ROOT, "benchmarks", "device", "gpu_tables.sh")],
            env=env,
            capture_output=True,
            text=True,
            timeout=1200,
        )
        self.assertEqual(done.returncode, 0, done.stdout + done.stderr)
        files = sorted(os.listdir(out))
        # At most 8 files come back from the device machine.
        self.assertEqual(
            files,
            [
                "infer.log", "infer.txt", "machine.txt", "tables.md",
                "train_fp32.log", "train_fp32.txt", "train_mixed.log", "train_mixed.txt",
            ],
        )  # fmt: skip
        with open(os.path.join(out, "machine.txt")) as f:
            self.assertIn("keras 3.", f.read())
        for name, peak in (("train_mixed", 2), ("train_fp32", 1)):
            with open(os.path.join(out, f"{name}.txt")) as f:
                text = f.read()
            self.assertIn(f"MFU against a peak of {peak} TFLOP/s", text)
            self.assertIn("| keras_asanet jax jit_compile=True |", text)
            self.assertIn("| keras_asanet torch jit_compile=False |", text)
            self.assertNotIn("exit code", text)  # no configuration failed
        self.assertIn("mixed precision", open(os.path.join(out, "train_mixed.txt")).read())
        with open(os.path.join(out, "infer.txt")) as f:
            text = f.read()
        self.assertIn("| keras_asanet jax (`extract_features`) |", text)
        self.assertNotIn("exit code", text)
        with open(os.path.join(out, "tables.md")) as f:
            tables = f.read()
        self.assertEqual(tables.count("| reference: plain PyTorch"), 5)
        self.assertLess(tables.index("### train_mixed"), tables.index("### train_fp32"))
        self.assertNotIn('{"benchmark"', tables)
