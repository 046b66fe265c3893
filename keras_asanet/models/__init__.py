"""ASA-Net models and their presets."""

from keras_asanet.models.asanet import ASANet
from keras_asanet.models.asanet_presets import ASANET_PRESETS

__all__ = ["ASANET_PRESETS", "ASANet"]
