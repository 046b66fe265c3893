"""Test-session settings shared by every test module.

The backend is whatever `KERAS_BACKEND` names (the test command runs the suite once per
backend). Thread counts are kept small so three backends fit on a 2-core CI machine.
"""

import os

os.environ.setdefault("KERAS_BACKEND", "jax")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=1")


def pytest_report_header(config):
    import keras

    return f"keras {keras.__version__}, backend {keras.backend.backend()}"
