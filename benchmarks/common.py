"""What the model benchmarks share: one subprocess per backend, memory readings, versions."""

from __future__ import annotations

import importlib.util
import json
import os
import platform
import re
import resource
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BACKENDS = ("jax", "torch", "tensorflow")
_BACKEND_MODULES = {"jax": "jax", "torch": "torch", "tensorflow": "tensorflow"}


def installed_backends():
    """The Keras backends whose framework can be imported here, in `BACKENDS` order."""
    return [b for b in BACKENDS if importlib.util.find_spec(_BACKEND_MODULES[b]) is not None]


def run_worker(module, backend, args, timeout, threads=None):
    """Runs `python -m module --worker <args>` with `KERAS_BACKEND=backend`; returns the
    JSON dict it printed last, or `{"error": ...}`.

    `threads`: pin the worker to that many CPUs (the last ones) and tell OpenMP / BLAS so;
    every framework then sizes its thread pools to them. None: all CPUs.
    """
    env = dict(os.environ, KERAS_BACKEND=backend or "torch", TF_CPP_MIN_LOG_LEVEL="3")
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    preexec = None
    if threads:
        cpus = sorted(os.sched_getaffinity(0))[-int(threads) :]
        for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            env[var] = str(len(cpus))
        env["TF_NUM_INTRAOP_THREADS"] = str(len(cpus))
        env["TF_NUM_INTEROP_THREADS"] = "1"

        def preexec():
            os.sched_setaffinity(0, cpus)

    cmd = [sys.executable, "-m", module, "--worker", *[str(a) for a in args]]
    try:
        done = subprocess.run(
            cmd,
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            preexec_fn=preexec,
        )
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout} s"}
    for line in reversed(done.stdout.strip().splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    return {"error": f"exit code {done.returncode}: {error_summary(done.stderr or done.stdout)}"}


_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Interrupt|Exit)\b.*")


def error_summary(output, limit=600):
    """The line of a failed worker's output that says what failed: the last line that
    starts with an exception's name (Keras appends the call's arguments after the
    exception, so the last lines alone name no error), else the last three lines; colour
    codes removed, at most `limit` characters."""
    lines = [_ANSI.sub("", line).strip() for line in (output or "").strip().splitlines()]
    named = [line for line in lines if _EXCEPTION_LINE.match(line)]
    text = named[-1] if named else " ".join(lines[-3:])
    return text[:limit]


def rss_bytes():
    """The resident set size of this process now (Linux /proc; else the peak)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return peak_rss_bytes()


def device_peak_bytes():
    """Peak accelerator memory of this process under the Keras backend, or None on a CPU
    (or where the backend cannot say)."""
    import keras

    backend = keras.backend.backend()
    try:
        if backend == "torch":
            return torch_device_peak_bytes()
        if backend == "jax":
            import jax

            dev = jax.devices()[0]
            if dev.platform != "cpu":
                return int(dev.memory_stats().get("peak_bytes_in_use", 0))
        elif backend == "tensorflow":
            import tensorflow as tf

            if tf.config.list_physical_devices("GPU"):
                return int(tf.config.experimental.get_memory_info("GPU:0")["peak"])
    except Exception:  # noqa: BLE001 - best effort
        return None
    return None


def torch_device_peak_bytes():
    """Peak CUDA memory of this process through PyTorch (the reference, or Keras on torch),
    or None on a CPU."""
    import torch

    return int(torch.cuda.max_memory_allocated()) if torch.cuda.is_available() else None


def peak_rss_bytes():
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss if sys.platform == "darwin" else rss * 1024


class PeakRSS:
    """Samples this process's RSS every `interval` s in a thread: the peak above the RSS at
    entry (`growth`) over a `with` block."""

    def __init__(self, interval=0.005):
        self.interval = interval
        self.growth = 0

    def __enter__(self):
        self.start = rss_bytes()
        self.peak = self.start
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_bytes())
            time.sleep(self.interval)

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_bytes())
        self.growth = self.peak - self.start
        return False


def machine():
    """Machine and versions, for the JSON lines and docs/performance.md."""
    info = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
    }
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    info["cpu"] = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    from importlib.metadata import PackageNotFoundError, version

    for name, dists in (
        ("numpy", ("numpy",)),
        ("keras", ("keras",)),
        ("jax", ("jax",)),
        ("torch", ("torch",)),
        ("tensorflow", ("tensorflow", "tensorflow-cpu", "tf-nightly")),
    ):
        for dist in dists:
            try:
                info[name] = version(dist)
                break
            except PackageNotFoundError:
                continue
    return info


def median(values):
    values = sorted(values)
    n = len(values)
    return values[n // 2] if n % 2 else 0.5 * (values[n // 2 - 1] + values[n // 2])
