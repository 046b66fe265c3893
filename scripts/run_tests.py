"""Runs the project's checks: ruff lint, ruff format check, then the test suite once per backend.

This is the README's test command (after the install) and what `.ci/run` calls. It fails on
any failure, and treats "no tests collected" (pytest exit code 5) as a failure.

Usage:
    python scripts/run_tests.py [--backends jax torch tensorflow] [--quick] [-- PYTEST_ARGS...]
"""

import argparse
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BACKENDS = ("jax", "torch", "tensorflow")


def _run(cmd, env=None):
    print("$", " ".join(cmd), flush=True)
    return subprocess.call(cmd, cwd=ROOT, env=env)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", nargs="+", default=list(BACKENDS), choices=BACKENDS)
    parser.add_argument("--quick", action="store_true", help='skip tests marked "large"')
    parser.add_argument("--no-lint", action="store_true", help="skip the ruff checks")
    parser.add_argument("pytest_args", nargs="*", help="extra arguments for pytest (after --)")
    args = parser.parse_args(argv)

    failures = []
    if not args.no_lint:
        for cmd in (["ruff", "check", "."], ["ruff", "format", "--check", "."]):
            if _run([sys.executable, "-m", *cmd]) != 0:
                failures.append(" ".join(cmd))
    timings = {}
    for backend in args.backends:
        env = dict(os.environ, KERAS_BACKEND=backend)
        cmd = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider"]
        if args.quick:
            cmd += ["-m", "not large"]
        cmd += args.pytest_args
        start = time.time()
        code = _run(cmd, env=env)
        timings[backend] = time.time() - start
        if code == 5:
            print(f"!! no tests were collected on backend {backend}: that is a failure")
        if code != 0:
            failures.append(f"pytest ({backend}, exit code {code})")
    print()
    for backend, seconds in timings.items():
        print(f"backend {backend}: {seconds:.0f} s")
    if failures:
        print("FAILED: " + "; ".join(failures))
        return 1
    print("all checks passed on: " + ", ".join(args.backends))
    return 0


if __name__ == "__main__":
    sys.exit(main())
