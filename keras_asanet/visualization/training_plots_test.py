import os

import numpy as np
import pytest
from PIL import Image

from keras_asanet.tests.test_case import TestCase
from keras_asanet.visualization import plot_cmc, plot_training_curves

# Pure numpy / file code: the README's test command runs it under one backend only.
pytestmark = pytest.mark.backend_independent

HISTORY = {
    "loss": [3.0, 2.0, 1.5],
    "xent": [2.0, 1.2, 0.9],
    "pmi": [0.0, 0.1, 0.05],
    "id_acc": [0.1, 0.4, 0.6],
    "attr_acc": [0.5, 0.6, 0.7],
    "learning_rate": [0.1, 0.1, 0.01],  # not a loss or accuracy: not drawn
    "bce_re": [],  # never recorded: not drawn
}


def _lines(ax):
    return {line.get_label(): line for line in ax.get_lines()}


class TrainingPlotsTest(TestCase):
    def test_training_curves_content_and_file(self):
        path = os.path.join(self.get_temp_dir(), "curves.png")
        fig = plot_training_curves(HISTORY, path)
        losses, accuracy = fig.axes
        self.assertEqual(losses.get_title(), "losses")
        self.assertEqual(accuracy.get_title(), "training accuracy")
        self.assertEqual(sorted(_lines(losses)), ["loss", "pmi", "xent"])
        self.assertEqual(sorted(_lines(accuracy)), ["attr_acc", "id_acc"])
        self.assertEqual(losses.get_yscale(), "log")
        self.assertEqual(accuracy.get_yscale(), "linear")
        line = _lines(losses)["xent"]
        self.assertAllClose(line.get_xdata(), [1, 2, 3])
        self.assertAllClose(line.get_ydata(), HISTORY["xent"])
        self.assertEqual(losses.get_xlabel(), "epoch")
        self.assertEqual(
            sorted(t.get_text() for t in losses.get_legend().get_texts()), ["loss", "pmi", "xent"]
        )
        with Image.open(path) as image:
            self.assertEqual(image.format, "PNG")
            self.assertEqual(image.size, (1000, 350))  # 10 x 3.5 inches at 100 dpi

    def test_training_curves_without_history(self):
        fig = plot_training_curves({"learning_rate": [0.1]})
        for ax in fig.axes:
            self.assertEmpty(ax.get_lines())
            self.assertIsNone(ax.get_legend())
        self.assertEqual(fig.axes[0].get_title(), "losses (none recorded)")

    def test_cmc_content_and_file(self):
        cmc = np.linspace(0.5, 1.0, 50)
        path = os.path.join(self.get_temp_dir(), "cmc.png")
        fig = plot_cmc(cmc, mAP=0.4321, path=path)
        (ax,) = fig.axes
        (line,) = ax.get_lines()
        self.assertAllClose(line.get_xdata(), np.arange(1, 21))
        self.assertAllClose(line.get_ydata(), 100 * cmc[:20])
        self.assertEqual(ax.get_title(), "CMC (mAP 43.2)")
        self.assertEqual(ax.get_ylabel(), "matching rate (%)")
        with Image.open(path) as image:
            self.assertEqual((image.format, image.size), ("PNG", (450, 350)))
        short = plot_cmc([0.2, 0.7, 1.0])
        self.assertEqual(short.axes[0].get_title(), "CMC")
        self.assertLen(short.axes[0].get_lines()[0].get_xdata(), 3)
        with self.assertRaisesRegex(ValueError, "cmc is empty"):
            plot_cmc([])

    def test_no_pyplot_figure_is_left_open(self):
        import matplotlib.pyplot as plt

        before = plt.get_fignums()
        plot_cmc([0.5, 1.0])
        plot_training_curves(HISTORY)
        self.assertEqual(plt.get_fignums(), before)
