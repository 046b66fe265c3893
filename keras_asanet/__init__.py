"""keras_asanet: attribute-assisted video person re-identification (ASA-Net) for Keras 3.

Submodules are imported on first use (`keras_asanet.data`, `.layers`, `.losses`, `.models`,
`.evaluation`, `.training`, `.visualization`) so importing the package does no work.
"""

import importlib

from keras_asanet.version import __version__

_SUBMODULES = (
    "backbones",
    "data",
    "evaluation",
    "layers",
    "losses",
    "models",
    "training",
    "visualization",
)


def __getattr__(name):
    if name in _SUBMODULES:
        return importlib.import_module(f"keras_asanet.{name}")
    raise AttributeError(f"module 'keras_asanet' has no attribute {name!r}")


__all__ = ["__version__", *_SUBMODULES]
