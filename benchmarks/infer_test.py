"""`benchmark.py infer`: the reference's dense extraction is `extract_features`'s."""

import os

import numpy as np
import pytest

from benchmarks import infer
from benchmarks import reference_torch as ref
from benchmarks._testing import OneTorchThread
from keras_asanet.tests.test_case import TestCase

# In the README's test command this runs once, in the torch backend's run.
pytestmark = pytest.mark.backend_independent


class InferBenchmarkTest(OneTorchThread, TestCase):
    def test_reference_dense_features_equal_the_librarys_on_the_same_weights(self):
        import keras

        from keras_asanet.evaluation.feature_extraction import extract_features
        from keras_asanet.models import ASANet

        root = os.path.join(self.get_temp_dir(), "synthetic")
        dataset = infer._dataset(root, (32, 16), 8)
        tracklets = list(dataset.query)[:5]
        longer = infer._long(tracklets, 2)
        self.assertEqual(sum(t.num_frames for t in longer), sum(t.num_frames for t in tracklets))
        model = ASANet.from_preset("asanet_tiny", num_identities=4)
        model.build_for_input((None, 3, 32, 16, 3))
        reference = ref.ReferenceASANet.from_preset("asanet_tiny", 4)
        weights = {v.path: keras.ops.convert_to_numpy(v) for v in model.weights}
        ref.load_keras_weights(reference, weights, model.name)
        ours = extract_features(
            model, longer, seq_len=3, batch_size=4, image_size=(32, 16), verbose=False
        ).features
        theirs = infer.reference_extract(reference, longer, 3, 4, (32, 16))
        self.assertEqual(theirs.shape, ours.shape)
        self.assertAllClose(theirs, ours, atol=1e-4)
        self.assertFalse(np.allclose(theirs[0], theirs[1], atol=1e-3))

    def test_workers_report_the_median_of_their_passes_and_a_table(self):
        root = os.path.join(self.get_temp_dir(), "synthetic")
        base = ["--root", root, "--image-size", "32", "16", "--seq-len", "2"]
        base += ["--batch-size", "4", "--num-identities", "8", "--max-tracklets", "5"]
        base += ["--repeats", "3"]
        outputs = {}
        for kind in ("reference", "keras"):
            args = infer.worker_parser().parse_args([*base, "--kind", kind])
            outputs[kind] = infer.worker(args)
        self.assertEqual(outputs["reference"]["params"], outputs["keras"]["params"])
        for out in outputs.values():
            for name in ("test", "long"):
                self.assertEqual(out[name]["passes"], 3)
                self.assertGreater(out[name]["tracklets_per_s"], 0.0)
        self.assertEqual(outputs["keras"]["long"]["tracklets"], 2)
        result = {
            "preset": "asanet_tiny", "image_size": [32, 16], "seq_len": 2, "batch_size": 4,
            "repeats": 3, "threads": 1, "reference": outputs["reference"],
            "keras": {"torch": {**outputs["keras"], "vs_reference": 1.0}},
        }  # fmt: skip
        table = infer.table(result)
        self.assertIn("the median of 3 passes over each", table)
        self.assertIn("| keras_asanet torch (`extract_features`) |", table)
        # On a CPU no process has a device peak, and the table has no column for it.
        self.assertIsNone(outputs["keras"]["device_peak_bytes"])
        self.assertNotIn("device peak", table)
        # Where one has (a GPU run), every row gets the column.
        result["keras"]["torch"]["device_peak_bytes"] = 3 * 2**30
        lines = infer.table(result).splitlines()
        self.assertTrue(lines[2].endswith("| device peak |"))
        self.assertTrue(lines[4].endswith("| - |"))  # the reference ran on the CPU
        self.assertTrue(lines[5].endswith("| 3.00 GiB |"))
