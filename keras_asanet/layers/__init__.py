"""ASA-Net layers: each usable on its own in a user's Keras model."""

from keras_asanet.layers.asre import ASRE
from keras_asanet.layers.attribute_head import AttributeHead
from keras_asanet.layers.attribute_residual_branch import AttributeResidualBranch
from keras_asanet.layers.bn_neck import BNNeck
from keras_asanet.layers.bottleneck_block import BottleneckBlock
from keras_asanet.layers.feature_fusion import FeatureFusion
from keras_asanet.layers.gem_pooling_2d import GeMPooling2D
from keras_asanet.layers.instance_batch_norm import InstanceBatchNormalization
from keras_asanet.layers.non_local_block_2d import NonLocalBlock2D
from keras_asanet.layers.spatio_temporal_pooling import SpatioTemporalPooling

__all__ = [
    "ASRE",
    "AttributeHead",
    "AttributeResidualBranch",
    "BNNeck",
    "BottleneckBlock",
    "FeatureFusion",
    "GeMPooling2D",
    "InstanceBatchNormalization",
    "NonLocalBlock2D",
    "SpatioTemporalPooling",
]
