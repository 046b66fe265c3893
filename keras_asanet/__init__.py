"""keras_asanet: attribute-assisted video person re-identification (ASA-Net) for Keras 3.

Importing the package registers every serializable class of the library with Keras (the
`ASANet` model, the `AGWResNet` backbone, the layers, the losses and the training optimiser
`CoupledWeightDecayAdam`), so a `.keras` file it wrote loads with a plain
`keras.models.load_model(path)` after `import keras_asanet`, as with KerasHub. This imports
Keras (and so the backend). `keras_asanet.evaluation` and `keras_asanet.visualization` hold
no registered classes and are imported on first use.
"""

import importlib

# Imported for their `@keras.saving.register_keras_serializable` side effect (and as
# attributes). `models` imports `data` (the attribute schemas).
from keras_asanet import backbones, layers, losses, models, training
from keras_asanet.version import __version__

_LAZY_SUBMODULES = ("data", "evaluation", "visualization")


def __getattr__(name):
    if name in _LAZY_SUBMODULES:
        return importlib.import_module(f"keras_asanet.{name}")
    raise AttributeError(f"module 'keras_asanet' has no attribute {name!r}")


__all__ = [
    "__version__",
    "backbones",
    "data",
    "evaluation",
    "layers",
    "losses",
    "models",
    "training",
    "visualization",
]
