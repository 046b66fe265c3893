"""`benchmark.py data` at a tiny size: it runs and reports what it measured."""

import json

import pytest

from benchmarks import data
from keras_asanet.tests.test_case import TestCase

pytestmark = pytest.mark.backend_independent


class DataBenchmarkTest(TestCase):
    def test_tiny_run_measures_both_clip_dtypes_per_worker_count(self):
        out = data.run(
            image_size=(32, 16),
            batch=(2, 2),
            seq_len=2,
            batches=2,
            workers=(1, 2),
            repeats=1,
            num_identities=8,
            keras_reference=False,
        )
        json.dumps(out)
        self.assertEqual(set(out["per_workers"]), {"1", "2"})
        for row in out["per_workers"].values():
            for key in ("bare_decode", "pipeline_float32", "pipeline_uint8"):
                self.assertGreater(row[f"{key}_clips_per_s"], 0.0)
            self.assertGreater(row["ratio_uint8"], 0.0)
        self.assertEqual(out["clips_per_pass"], 8)
        # Two decode threads give the batch one thread gives.
        self.assertTrue(out["batches_equal_across_workers"])
        # The uint8 batch is the float32 batch rounded (the erasing fill 123.675 -> 124 ...).
        self.assertLessEqual(out["uint8_vs_float32_max_pixel_difference"], 0.5)
        self.assertIn("| workers |", data.table(out))
