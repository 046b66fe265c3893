"""Test-session settings shared by every test module.

The backend is whatever `KERAS_BACKEND` names (the test command runs the suite once per
backend). Thread counts are kept small so three backends fit on a 2-core CI machine.

On JAX, compiling is most of the suite's time: every new model compiles its train and predict
steps, and every eager op is compiled once per shape and per process (a fresh `scripts/fit.py`
subprocess spends about 60 of its 100 s compiling). The session therefore uses one JAX
persistent compilation cache, a temporary folder that the subprocesses the tests start inherit
through the environment, removed at the end of the session. Identical programs (the same
model at the same shapes, in another test or another process) are then loaded instead of
compiled again; what runs is the same executable. Set `JAX_COMPILATION_CACHE_DIR` yourself to
keep a cache between sessions.
"""

import os
import shutil
import tempfile

import pytest

os.environ.setdefault("KERAS_BACKEND", "jax")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# XLA:CPU compiles every eager JAX op (an add, a random draw per weight shape) at 70-700 ms
# each on a 2-core machine, and the suite runs thousands of them: the legacy emitters at LLVM
# -O0 compile 2-4x faster (measured: an add 120 -> 68 ms, a normal draw 660 -> 176 ms). Both
# keep IEEE semantics (no fast-math, no reassociation); the compiled code is slower, which the
# tiny test models never notice.
_XLA_FLAGS = (
    "--xla_force_host_platform_device_count=1 --xla_cpu_use_fusion_emitters=false "
    "--xla_backend_optimization_level=0"
)
# One compute thread per process when `scripts/run_tests.py` runs the backends side by side
# (it sets KERAS_ASANET_TEST_THREADS=1): three test processes on two cores, each with its own
# pool of threads that spin and wait for one another at every op, lose more than they gain
# (torch's OpenMP pool was measured at 5.5 s for a 0.06 s step on a loaded 2-core machine).
_THREADS = os.environ.get("KERAS_ASANET_TEST_THREADS")
if _THREADS:
    for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ.setdefault(_var, _THREADS)
    os.environ.setdefault("TF_NUM_INTRAOP_THREADS", _THREADS)
    _XLA_FLAGS += (
        f" --xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads={int(_THREADS)}"
    )
os.environ.setdefault("XLA_FLAGS", _XLA_FLAGS)

# Created by this pytest process (the processes its tests start inherit it): removed by this
# process only.
_OWN_JAX_CACHE = None
if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
    _OWN_JAX_CACHE = tempfile.mkdtemp(prefix="keras_asanet_jax_cache_")
    os.environ["JAX_COMPILATION_CACHE_DIR"] = _OWN_JAX_CACHE
# Cache every program: the eager ops take 0.01-0.5 s each to compile, but there are hundreds.
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")


def pytest_report_header(config):
    import keras

    header = f"keras {keras.__version__}, backend {keras.backend.backend()}"
    if keras.backend.backend() == "jax":
        header += f"; JAX compilation cache {os.environ['JAX_COMPILATION_CACHE_DIR']}"
    if os.environ.get(ELSEWHERE_ENV) == "elsewhere":
        header += "; backend-independent tests deselected (another backend's run has them)"
    return header


#: Set by `scripts/run_tests.py` in every backend's run but one: the tests marked
#: `backend_independent` (readers, sampling, ranking, plots: numpy and files, no Keras op)
#: give the same result under any backend, so one run of them is enough. They are
#: deselected, not skipped, and the run that keeps them says so in its header.
ELSEWHERE_ENV = "KERAS_ASANET_BACKEND_INDEPENDENT_TESTS"


# Before pytest's own `-m` selection, so that the markers added here count for it.
@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    for item in items:
        # A tutorial notebook (collected with --nbmake) sets its own backend in its first cell
        # and runs in its own kernel: one run of it, like the backend-independent tests.
        if item.path.suffix == ".ipynb":
            item.add_marker(pytest.mark.backend_independent)
        # The full-size checks are among the slowest: `large` implies `heavy`.
        if item.get_closest_marker("large"):
            item.add_marker(pytest.mark.heavy)
    # Tests of one backend's own code (`@pytest.mark.only_backends("tensorflow")`) are
    # deselected in the other backends' runs, where the code cannot run.
    import keras

    backend = keras.backend.backend()
    other = [
        i for i in items if (m := i.get_closest_marker("only_backends")) and backend not in m.args
    ]
    if other:
        config.hook.pytest_deselected(items=other)
        items[:] = [i for i in items if i not in other]
    if os.environ.get(ELSEWHERE_ENV) != "elsewhere":
        return
    kept, dropped = [], []
    for item in items:
        (dropped if item.get_closest_marker("backend_independent") else kept).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


def pytest_unconfigure(config):
    if _OWN_JAX_CACHE is not None:
        shutil.rmtree(_OWN_JAX_CACHE, ignore_errors=True)
