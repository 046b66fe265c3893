"""`keras_asanet/cli.py` for the scripts, loaded by its path and once: `import keras_asanet`
imports Keras, and the backend has to be chosen first (`cli.select_backend`)."""

import importlib.util
import os

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load_cli():
    """The module `keras_asanet/cli.py` (standard library only), without importing the
    `keras_asanet` package."""
    spec = importlib.util.spec_from_file_location(
        "keras_asanet_cli", os.path.join(_ROOT, "keras_asanet", "cli.py")
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


cli = load_cli()
