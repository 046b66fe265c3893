import importlib.util
import warnings

import pytest
import tqdm

from keras_asanet.evaluation.progress import progress_bar
from keras_asanet.tests.test_case import TestCase

pytestmark = pytest.mark.backend_independent


class ProgressBarTest(TestCase):
    def test_no_warning_and_the_text_bar_without_ipywidgets(self):
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # tqdm.auto's "IProgress not found" would raise
            bar = progress_bar(total=3, disable=True)
        self.assertIsInstance(bar, tqdm.std.tqdm)
        if importlib.util.find_spec("ipywidgets") is None:
            self.assertIs(type(bar), tqdm.std.tqdm)
        bar.update(3)
        bar.close()
        self.assertEqual(list(progress_bar(iter("abc"), total=3, disable=True)), ["a", "b", "c"])
