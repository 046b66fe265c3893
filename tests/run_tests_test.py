"""The test command's runner: backends side by side, each log printed whole, every exit code
kept (a failing or empty backend run fails the command)."""

import contextlib
import glob
import importlib.util
import io
import os
import subprocess
import sys

import pytest

from keras_asanet.tests.test_case import TestCase

# Pure numpy / file code: the README's test command runs it under one backend only.
pytestmark = pytest.mark.backend_independent

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _load():
    spec = importlib.util.spec_from_file_location(
        "run_tests_script", os.path.join(ROOT, "scripts", "run_tests.py")
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _program(backend_lines, code):
    """A stand-in for one backend's pytest: prints its lines slowly, then exits with `code`."""
    body = (
        "import os, sys, time\n"
        f"for line in {backend_lines!r}:\n"
        "    print(os.environ['KERAS_BACKEND'], line, flush=True)\n"
        "    time.sleep(0.05)\n"
        f"sys.exit({code})\n"
    )
    return [sys.executable, "-c", body]


class RunTestsTest(TestCase):
    @classmethod
    def setUpClass(cls):
        cls.script = _load()

    def test_side_by_side_keeps_each_log_whole_and_every_exit_code(self):
        commands = {
            "jax": _program(["a", "b", "c"], 0),
            "torch": _program(["d", "e", "f"], 1),
            "tensorflow": _program(["g"], 5),
        }
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            envs = {b: self.script._backend_env(b, keep_independent=True) for b in commands}
            codes, timings = self.script._run_side_by_side(commands, envs, jobs=2)
        self.assertEqual(codes, {"jax": 0, "torch": 1, "tensorflow": 5})
        self.assertEqual(set(timings), set(commands))
        text = out.getvalue()
        for backend, lines in (("jax", "abc"), ("torch", "def"), ("tensorflow", "g")):
            block = "".join(f"{backend} {x}\n" for x in lines)
            self.assertIn(block, text)  # the run's lines in one piece, not interleaved
            self.assertIn(f"# backend {backend} (exit code {codes[backend]})", text)

    def test_one_by_one_and_the_default_job_count(self):
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            envs = {"jax": self.script._backend_env("jax", keep_independent=True)}
            codes, _ = self.script._run_one_by_one({"jax": _program(["a"], 0)}, envs)
        self.assertEqual(codes, {"jax": 0})
        self.assertIn("# backend jax", out.getvalue())
        err = io.StringIO()
        with contextlib.redirect_stderr(err), self.assertRaises(SystemExit):
            self.script.main(["--jobs", "0", "--no-lint"])
        self.assertIn("--jobs must be >= 1", err.getvalue())

    def test_backend_independent_tests_run_under_one_backend_only(self):
        self.assertEqual(self.script.independent_tests_backend(["jax", "torch"]), "torch")
        self.assertEqual(self.script.independent_tests_backend(["tensorflow", "jax"]), "tensorflow")
        keep = self.script._backend_env("jax", keep_independent=True)
        drop = self.script._backend_env("tensorflow", keep_independent=False)
        self.assertEqual(keep["KERAS_BACKEND"], "jax")
        self.assertEqual(keep[self.script.ELSEWHERE_ENV], "run")
        self.assertEqual(drop[self.script.ELSEWHERE_ENV], "elsewhere")
        # Side by side, each run computes on one thread (conftest.py reads the variable).
        shared = self.script._backend_env("torch", True, side_by_side=True)
        self.assertEqual(shared["KERAS_ASANET_TEST_THREADS"], "1")
        if "KERAS_ASANET_TEST_THREADS" not in os.environ:
            self.assertNotIn("KERAS_ASANET_TEST_THREADS", keep)

        # The real conftest (collected under the numpy backend, the quickest to import). In
        # a run that leaves them to another backend, a marked module and every tutorial
        # notebook (an nbmake item, marked by conftest) are deselected, not skipped, and an
        # unmarked module is collected; the keeper's run collects the notebooks. (This test
        # is marked: that it runs at all shows the keeping run collects the marked modules.)
        notebooks = sorted(glob.glob(os.path.join(ROOT, "tutorials", "*.ipynb")))
        self.assertGreaterEqual(len(notebooks), 5)
        marked = "keras_asanet/data/samplers_test.py"
        unmarked = "keras_asanet/layers/bn_neck_test.py"

        def collected(where, *paths):
            env = dict(os.environ, KERAS_BACKEND="numpy", **{self.script.ELSEWHERE_ENV: where})
            return subprocess.run(
                [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--collect-only",
                 "-q", "--nbmake", *paths],
                cwd=ROOT, env=env, capture_output=True, text=True, check=True,
            ).stdout  # fmt: skip

        out = collected("elsewhere", marked, unmarked, "tutorials")
        self.assertNotIn(marked, out)
        self.assertNotIn(".ipynb::", out)
        self.assertIn("deselected", out)
        self.assertIn(unmarked, out)
        kept = collected("run", "tutorials")
        for path in notebooks:
            self.assertIn(os.path.relpath(path, ROOT), kept)

    def test_heavy_tests_are_kept_out_of_the_default_run_and_run_by_ci(self):
        def command(*flags):
            return self.script.pytest_command(self.script.build_parser().parse_args(list(flags)))

        def selection(cmd):  # pytest's `-m` (after `python -m pytest`), or None
            rest = cmd[cmd.index("pytest") + 1 :]
            return rest[rest.index("-m") + 1] if "-m" in rest else None

        default, heavy, everything = command(), command("--heavy"), command("--all")
        self.assertEqual(default[:3], [sys.executable, "-m", "pytest"])
        self.assertEqual(selection(default), "not heavy")
        self.assertIn("--nbmake", default)
        self.assertEqual(selection(heavy), "heavy")
        self.assertNotIn("--nbmake", heavy)
        self.assertIsNone(selection(everything))
        self.assertIn("--nbmake", everything)
        quick = command("--quick")
        self.assertEqual(selection(quick), "not heavy")
        self.assertNotIn("--nbmake", quick)
        with contextlib.redirect_stderr(io.StringIO()), self.assertRaises(SystemExit):
            command("--heavy", "--all")
        # CI runs the default and then the heavy pass, so it runs every test.
        with open(os.path.join(ROOT, ".ci", "run")) as f:
            ci = [line.strip() for line in f if line.startswith("python3 scripts/run_tests.py")]
        self.assertEqual(
            ci, ["python3 scripts/run_tests.py", "python3 scripts/run_tests.py --heavy --no-lint"]
        )

        # The real conftest and markers (numpy backend): a `heavy` test and a `large` one
        # (large implies heavy) are deselected by the default selection and collected by the
        # heavy one, which leaves an unmarked test out.
        heavy_test = "keras_asanet/data/synthetic_test.py::SyntheticBuildSafetyTest"
        large_test = "keras_asanet/models/asanet_test.py::ASANetFullSizeTest"
        light_test = "keras_asanet/layers/bn_neck_test.py"

        def collected(selection):
            env = dict(os.environ, KERAS_BACKEND="numpy")
            env.pop(self.script.ELSEWHERE_ENV, None)
            return subprocess.run(
                [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--collect-only",
                 "-q", "-m", selection, heavy_test, large_test, light_test],
                cwd=ROOT, env=env, capture_output=True, text=True, check=True,
            ).stdout  # fmt: skip

        out = collected("not heavy")
        self.assertNotIn("test_a_build_process_killed_midway", out)
        self.assertNotIn("test_asanet_b_at_256x128", out)
        self.assertIn(light_test, out)
        out = collected("heavy")
        self.assertIn("test_a_build_process_killed_midway", out)
        self.assertIn("test_asanet_b_at_256x128", out)
        self.assertNotIn(light_test, out)
