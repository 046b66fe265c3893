"""ASA-Net models and their presets."""

from keras_asanet.models.asanet import ASANet
from keras_asanet.models.asanet_presets import ASANET_PRESETS
from keras_asanet.models.saving import ModelFileError, check_model_file, load_model, save_model

__all__ = [
    "ASANET_PRESETS",
    "ASANet",
    "ModelFileError",
    "check_model_file",
    "load_model",
    "save_model",
]
