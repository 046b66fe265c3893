"""The MkDocs site (API reference rendered by mkdocstrings) builds without a warning."""

import glob
import os
import re
import subprocess
import sys
import tempfile

import pytest

from keras_asanet.tests.test_case import TestCase

# Pure numpy / file code: the README's test command runs it under one backend only.
pytestmark = pytest.mark.backend_independent

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class DocsBuildTest(TestCase):
    def test_mkdocs_build_strict(self):
        with tempfile.TemporaryDirectory() as site:
            result = subprocess.run(
                [sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-d", site],
                cwd=ROOT,
                capture_output=True,
                text=True,
                timeout=600,
            )
            self.assertEqual(result.returncode, 0, result.stdout[-3000:] + result.stderr[-3000:])
            for page in (
                "api/layers/index.html",
                "api/models/index.html",
                "reliability/index.html",
            ):
                self.assertTrue(os.path.isfile(os.path.join(site, page)), page)
            # The tutorials, rendered from the notebooks with their committed outputs: every
            # figure embedded, no error cell.
            for notebook in sorted(glob.glob(os.path.join(ROOT, "tutorials", "*.ipynb"))):
                name = os.path.splitext(os.path.basename(notebook))[0]
                with open(os.path.join(site, "tutorials", name, "index.html")) as f:
                    html = f.read()
                with open(notebook) as f:
                    figures = f.read().count('"image/png"')
                self.assertGreaterEqual(html.count("data:image/png;base64"), figures, name)
                self.assertNotIn("Traceback (most recent call last)", html, name)
                # Every relative link of the page leads to a page or file of the site.
                page_dir = os.path.join(site, "tutorials", name)
                for href in re.findall(r'<a [^>]*href="([^"#]+)[^"]*"', html):
                    if "://" in href or href.startswith(("mailto:", "data:", "/")):
                        continue
                    target = os.path.normpath(os.path.join(page_dir, href))
                    if os.path.isdir(target):
                        target = os.path.join(target, "index.html")
                    self.assertTrue(os.path.exists(target), f"{name}: dead link {href}")
            with open(os.path.join(site, "tutorials/01_quickstart/index.html")) as f:
                self.assertIn("raw-pixels baseline", f.read())  # an output cell
            self.assertFalse(os.path.exists(os.path.join(site, "tutorials/assets")))
            with open(os.path.join(site, "api/layers/index.html")) as f:
                html = f.read()
            self.assertIn("ASRE", html)
            self.assertIn("return_mask", html)
