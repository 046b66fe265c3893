"""Runs the project's checks: ruff lint, ruff format check, then the test suite once per backend.

This is the README's test command (after the install) and what `.ci/run` calls. It fails on
any failure, and treats "no tests collected" (pytest exit code 5) as a failure.

Tests marked `backend_independent` (numpy and file code: readers, sampling, ranking, plots;
tests that start each backend in its own process) give the same result under every backend,
so they run in one backend's run only (torch's, the shortest, when it is among `--backends`);
the other runs deselect them. The tutorial notebooks (`tutorials/*.ipynb`, executed with
nbmake) count as such: each sets its own backend.

Tests marked `heavy` (training in `fit.py` subprocesses, other backends in subprocesses, the
full-size ResNet-50, mixed-precision training: about a quarter of the suite's time in a few
dozen tests) are kept out of the default run so that the command stays short; `--heavy` runs
only them and `--all` runs everything in one pass. `.ci/run` runs the default, then `--heavy`:
CI runs every test.

The backends' runs are independent processes, and each keeps about one core busy (most of a
run is Python, compiling and small ops), so on a machine with more than one core they all run
at the same time (`--jobs N` limits how many; 1 runs them one after the other). Each run's
output goes to a log file and is printed whole when the run ends, so the logs never
interleave.

Usage:
    python scripts/run_tests.py [--backends jax torch tensorflow] [--quick | --heavy | --all]
                                [--jobs N] [-- PYTEST_ARGS...]
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BACKENDS = ("jax", "torch", "tensorflow")
#: The environment variable conftest.py reads to deselect the backend-independent tests.
ELSEWHERE_ENV = "KERAS_ASANET_BACKEND_INDEPENDENT_TESTS"
#: Seconds one notebook cell may run before nbmake fails it.
NOTEBOOK_CELL_TIMEOUT = 600


def independent_tests_backend(backends):
    """The one backend whose run keeps the backend-independent tests: torch's run is the
    shortest of the three, so it absorbs them best; else the first one asked for."""
    return "torch" if "torch" in backends else backends[0]


def pytest_command(args):
    """One backend's pytest command line for the selection the flags ask for."""
    cmd = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider"]
    if args.heavy:
        return cmd + ["-m", "heavy"]
    if not args.all:
        cmd += ["-m", "not heavy"]
    if not args.quick:
        # The tutorials (tutorials/*.ipynb), executed top to bottom by nbmake, each in its
        # own kernel on the backend its first cell names (in the keeper's run only).
        cmd += ["--nbmake", f"--nbmake-timeout={NOTEBOOK_CELL_TIMEOUT}"]
    return cmd


def _run(cmd, env=None):
    print("$", " ".join(cmd), flush=True)
    return subprocess.call(cmd, cwd=ROOT, env=env)


def build_parser():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", nargs="+", default=list(BACKENDS), choices=BACKENDS)
    which = parser.add_mutually_exclusive_group()
    which.add_argument(
        "--quick",
        action="store_true",
        help='skip the tests marked "heavy" and the tutorial notebooks',
    )
    which.add_argument(
        "--heavy",
        action="store_true",
        help='run only the tests marked "heavy" (kept out of the default run; CI runs them)',
    )
    which.add_argument(
        "--all", action="store_true", help='run every test, the "heavy" ones included'
    )
    parser.add_argument("--no-lint", action="store_true", help="skip the ruff checks")
    parser.add_argument(
        "--jobs",
        type=int,
        default=None,
        help="backends tested at the same time (default: all of them on a machine with more "
        "than one core; 1 runs them one after the other, streaming the output)",
    )
    parser.add_argument("pytest_args", nargs="*", help="extra arguments for pytest (after --)")
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)

    failures = []
    if not args.no_lint:
        for cmd in (["ruff", "check", "."], ["ruff", "format", "--check", "."]):
            if _run([sys.executable, "-m", *cmd]) != 0:
                failures.append(" ".join(cmd))
    # All at once on a multi-core machine: with two cores, three runs sharing them finish
    # sooner than two at a time (measured: the torch + tensorflow pair, run after one another
    # beside jax, was the longest path by 600 s).
    default_jobs = len(args.backends) if (os.cpu_count() or 1) > 1 else 1
    jobs = args.jobs if args.jobs is not None else default_jobs
    if jobs < 1:
        parser.error(f"--jobs must be >= 1, got {jobs}.")
    keeper = independent_tests_backend(args.backends)
    print(f"backend-independent tests run under: {keeper}", flush=True)
    commands = {}
    for backend in args.backends:
        commands[backend] = pytest_command(args) + args.pytest_args
    envs = {b: _backend_env(b, b == keeper, side_by_side=jobs > 1) for b in commands}
    if jobs == 1:
        codes, timings = _run_one_by_one(commands, envs)
    else:
        codes, timings = _run_side_by_side(commands, envs, jobs)
    for backend, code in codes.items():
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


def _backend_env(backend, keep_independent, side_by_side=False):
    env = dict(os.environ, KERAS_BACKEND=backend)
    env[ELSEWHERE_ENV] = "run" if keep_independent else "elsewhere"
    if side_by_side:
        # Several test processes share the cores: one compute thread each (conftest.py).
        env.setdefault("KERAS_ASANET_TEST_THREADS", "1")
    return env


def _run_one_by_one(commands, envs):
    codes, timings = {}, {}
    for backend, cmd in commands.items():
        start = time.time()
        print(f"# backend {backend}", flush=True)
        codes[backend] = _run(cmd, env=envs[backend])
        timings[backend] = time.time() - start
    return codes, timings


def _run_side_by_side(commands, envs, jobs):
    """Runs up to `jobs` backends at once; prints each log whole when its run ends."""
    codes, timings, running = {}, {}, {}
    pending = list(commands)
    with tempfile.TemporaryDirectory(prefix="keras_asanet_tests_") as logs:
        while pending or running:
            while pending and len(running) < jobs:
                backend = pending.pop(0)
                log = open(os.path.join(logs, f"{backend}.log"), "w+")
                print(f"$ KERAS_BACKEND={backend} " + " ".join(commands[backend]), flush=True)
                proc = subprocess.Popen(
                    commands[backend],
                    cwd=ROOT,
                    env=envs[backend],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
                running[backend] = (proc, log, time.time())
            time.sleep(1)
            for backend, (proc, log, start) in list(running.items()):
                if proc.poll() is None:
                    continue
                del running[backend]
                codes[backend], timings[backend] = proc.returncode, time.time() - start
                log.seek(0)
                print(f"\n# backend {backend} (exit code {proc.returncode})", flush=True)
                sys.stdout.write(log.read())
                sys.stdout.flush()
                log.close()
    return codes, timings


if __name__ == "__main__":
    sys.exit(main())
