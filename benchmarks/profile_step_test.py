"""`python -m benchmarks.profile_step --layouts` at a tiny size: the two layouts compute the
same backbone (so the timing compares like with like) and both are timed."""

import argparse

import pytest

from benchmarks import profile_step
from benchmarks._testing import OneTorchThread
from keras_asanet.tests.test_case import TestCase

pytestmark = pytest.mark.only_backends("torch")


class LayoutComparisonTest(OneTorchThread, TestCase):
    def test_both_layouts_compute_the_same_backbone_and_are_timed(self):
        args = argparse.Namespace(image_size=(32, 16), seq_len=2, batch=(1, 2))
        times, difference = profile_step.layout_comparison(args, repeats=2)
        self.assertLess(difference, 1e-4)
        self.assertEqual(set(times), {"channels_last", "channels_first"})
        for seconds in times.values():
            self.assertGreater(seconds, 0.0)
