"""`benchmarks.common`: what a failed worker's row says."""

import pytest

from benchmarks.common import error_summary
from keras_asanet.tests.test_case import TestCase

pytestmark = pytest.mark.backend_independent


class ErrorSummaryTest(TestCase):
    def test_names_the_exception_not_the_call_arguments_keras_appends(self):
        # The shape of torch.compile's failure in a Keras step, colour codes included.
        output = "\n".join(
            [
                "Traceback (most recent call last):",
                '  File "benchmarks/train.py", line 90, in <lambda>',
                "RuntimeError: Exception encountered when calling ASANet.call().",
                "",
                "\x1b[1mTypeError: cannot determine truth value of Relational: "
                "s34*s90 < s90\x1b[0m",
                "",
                "Arguments received by ASANet.call():",
                "  • training=True",
                "  • return_masks=False",
            ]
        )
        self.assertEqual(
            error_summary(output),
            "TypeError: cannot determine truth value of Relational: s34*s90 < s90",
        )

    def test_without_an_exception_line_keeps_the_last_three_lines(self):
        output = "usage: x\nstep one\nstep two\nKilled"
        self.assertEqual(error_summary(output), "step one step two Killed")
        self.assertEqual(error_summary(""), "")
        self.assertEqual(len(error_summary("ValueError: " + "x" * 1000, limit=50)), 50)
