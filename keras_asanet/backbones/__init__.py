"""Backbones: the AGW ResNet-50 of ASA-Net and the import of ImageNet ResNet weights."""

from keras_asanet.backbones.agw_resnet import AGWResNet
from keras_asanet.backbones.resnet_weights import (
    load_resnet50_weights,
    read_resnet_state_dict,
    weight_targets,
)

__all__ = ["AGWResNet", "load_resnet50_weights", "read_resnet_state_dict", "weight_targets"]
