import json
import os
import subprocess
import sys
import textwrap

import pytest

from keras_asanet.tests.test_case import TestCase
from keras_asanet.training.freed_memory import (
    DEFAULT_MMAP_THRESHOLD,
    _glibc,
    retain_freed_memory,
)

# Process-wide C-library settings, not Keras code: the README's test command runs it under one
# backend only.
pytestmark = pytest.mark.backend_independent

# Runs in a fresh process: SETUP, then a step-like loop (eight 4 MiB blocks allocated, touched
# and freed, 30 times) in the main thread and in a worker thread (another glibc arena, where
# TensorFlow's and XLA's threads allocate), printing the page faults of the timed iterations.
_PROBE = """
import ctypes, json, resource, threading
SETUP
libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype = ctypes.c_void_p
libc.malloc.argtypes = (ctypes.c_size_t,)
libc.free.argtypes = (ctypes.c_void_p,)

def steps(count, out):
    size = 4 << 20
    for i in range(count + 2):
        if i == 2:  # the first two iterations settle glibc's dynamic thresholds
            start = resource.getrusage(resource.RUSAGE_THREAD).ru_minflt
        blocks = [libc.malloc(size) for _ in range(8)]
        for block in blocks:
            ctypes.memset(block, 1, size)
        for block in reversed(blocks):
            libc.free(block)
    out.append(resource.getrusage(resource.RUSAGE_THREAD).ru_minflt - start)

main, worker = [], []
steps(30, main)
thread = threading.Thread(target=steps, args=(30, worker))
thread.start()
thread.join()
print(json.dumps({"main": main[0], "worker": worker[0]}))
"""

_MODULE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "freed_memory.py")

#: Pages the probe touches in its 30 timed iterations, were each one faulted in anew.
_PROBE_PAGES = 30 * 8 * (4 << 20) // os.sysconf("SC_PAGE_SIZE")


def _page_faults(setup):
    code = textwrap.dedent(_PROBE).replace("SETUP", setup)
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=300
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


class RetainFreedMemoryTest(TestCase):
    def test_bad_values_are_refused_before_anything_changes(self):
        with self.assertRaisesRegex(ValueError, "top_pad"):
            retain_freed_memory(top_pad=-1)
        for threshold in (0, DEFAULT_MMAP_THRESHOLD + 1):
            with self.assertRaisesRegex(ValueError, "mmap_threshold"):
                retain_freed_memory(mmap_threshold=threshold)

    @pytest.mark.skipif(_glibc() is None, reason="needs glibc")
    def test_freed_memory_is_not_faulted_in_again_on_the_next_step(self):
        """Without the settings each step faults its 32 MiB in again, in both arenas (the
        cost found in TensorFlow's fit); with them nearly nothing is faulted after the
        first steps."""
        before = _page_faults("")
        # The module alone, by its path: importing the package would import Keras.
        after = _page_faults(
            "import importlib.util\n"
            f"spec = importlib.util.spec_from_file_location('freed_memory', {_MODULE!r})\n"
            "module = importlib.util.module_from_spec(spec)\n"
            "spec.loader.exec_module(module)\n"
            "assert module.retain_freed_memory()"
        )
        for arena in ("main", "worker"):
            self.assertGreater(before[arena], _PROBE_PAGES // 2, (arena, before))
            self.assertLess(after[arena], _PROBE_PAGES // 50, (arena, after))

    @pytest.mark.skipif(_glibc() is None, reason="needs glibc")
    def test_training_runs_keep_freed_memory_unless_told_not_to(self):
        """`runner.train` applies the settings first thing after validating its config: here
        it then stops at an occupied run folder, and the probe tells whether they were set."""
        output = os.path.join(self.get_temp_dir(), "run")
        os.makedirs(output)
        with open(os.path.join(output, "results.json"), "w") as f:
            f.write("{}")
        for retain in (True, False):
            setup = (
                "import os; os.environ['KERAS_BACKEND'] = 'numpy'\n"
                "from keras_asanet.training.runner import RunConfig, UsageError, train\n"
                "try:\n"
                f"    train(RunConfig(output={output!r}, retain_freed_memory={retain}))\n"
                "except UsageError as err:\n"
                "    assert 'already holds a run' in str(err), err\n"
                "else:\n"
                "    raise AssertionError('train did not stop at the occupied folder')"
            )
            faults = _page_faults(setup)["worker"]
            if retain:
                self.assertLess(faults, _PROBE_PAGES // 50, faults)
            else:
                self.assertGreater(faults, _PROBE_PAGES // 2, faults)
