"""`scripts/draw_architecture.py` draws the home page's figure, and its own layout checks pass
(every class it names exists in the package; no text overflows or overlaps)."""

import os
import subprocess
import sys

import pytest
from PIL import Image

from keras_asanet.tests.test_case import TestCase

pytestmark = pytest.mark.backend_independent

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class DrawArchitectureTest(TestCase):
    def test_draws_the_figure(self):
        path = os.path.join(self.get_temp_dir(), "architecture.png")
        result = subprocess.run(
            [sys.executable, os.path.join(ROOT, "scripts", "draw_architecture.py"),
             "--output", path, "--no-svg"],
            cwd=ROOT, env=dict(os.environ, PYTHONPATH=ROOT), capture_output=True, text=True,
            timeout=300,
        )  # fmt: skip
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        with Image.open(path) as image:
            self.assertGreater(image.width, 900)
