import os

import numpy as np
import pytest
from PIL import Image

from keras_asanet.evaluation.ranking import evaluate_ranking
from keras_asanet.tests.test_case import TestCase
from keras_asanet.visualization import plot_cmc_curves

# Pure numpy / file code: the README's test command runs it under one backend only.
pytestmark = pytest.mark.backend_independent


class CMCCurveTest(TestCase):
    def test_lines_follow_the_ranking_results(self):
        rng = np.random.default_rng(0)
        pids = np.repeat(np.arange(6), 2)
        qf = rng.normal(size=(6, 4))
        gf = np.repeat(qf, 2, axis=0) + 0.3 * rng.normal(size=(12, 4))
        good = evaluate_ranking(qf, gf, np.arange(6), pids, np.zeros(6), np.ones(12))
        bad = evaluate_ranking(qf, -gf, np.arange(6), pids, np.zeros(6), np.ones(12))
        path = os.path.join(self.get_temp_dir(), "sub", "cmc.png")
        fig = plot_cmc_curves({"model": good, "raw pixels": bad}, max_rank=10, path=path)
        (ax,) = fig.axes
        lines = ax.get_lines()
        self.assertLen(lines, 2)
        for line, result in zip(lines, (good, bad)):
            self.assertAllClose(line.get_xdata(), np.arange(1, 11))
            self.assertAllClose(line.get_ydata(), 100 * result.cmc[:10])
        labels = [t.get_text() for t in ax.get_legend().get_texts()]
        self.assertEqual(
            labels[0], f"model (R1 {100 * good.rank(1):.1f}, mAP {100 * good.mAP:.1f})"
        )
        self.assertTrue(labels[1].startswith("raw pixels (R1 "))
        self.assertEqual(ax.get_title(), "CMC (6 scored queries)")
        with Image.open(path) as image:  # folders created; the figure's size at 100 dpi
            self.assertEqual((image.format, image.size), ("PNG", (480, 360)))

    def test_a_plain_cmc_and_a_short_one(self):
        fig = plot_cmc_curves({"a": [0.5, 0.75, 1.0]}, max_rank=20)
        line = fig.axes[0].get_lines()[0]
        self.assertAllClose(line.get_xdata(), [1, 2, 3])
        self.assertEqual(fig.axes[0].get_legend().get_texts()[0].get_text(), "a (R1 50.0)")
        self.assertEqual(fig.axes[0].get_title(), "CMC")
        with self.assertRaisesRegex(ValueError, "CMC of 'a' is empty"):
            plot_cmc_curves({"a": []})
