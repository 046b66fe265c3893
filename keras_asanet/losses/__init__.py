"""Losses of ASA-Net (paper §III-C and §III-E): the classes and their pure `keras.ops` math."""

from keras_asanet.losses.center_loss import CenterLoss, center_loss
from keras_asanet.losses.class_centers import ClassCenters
from keras_asanet.losses.label_smoothing_cross_entropy import (
    LabelSmoothingCrossEntropy,
    label_smoothing_cross_entropy,
)
from keras_asanet.losses.multi_binary_attribute_loss import (
    MultiBinaryAttributeLoss,
    multi_binary_attribute_loss,
    multi_binary_attribute_terms,
    positive_ratio_weights,
)
from keras_asanet.losses.pmi_triplet_loss import PMITripletLoss, pmi_triplet_loss, pmi_triplet_terms
from keras_asanet.losses.weighted_regularization_triplet import (
    WeightedRegularizationTriplet,
    weighted_regularization_triplet,
    weighted_regularization_triplet_terms,
)

__all__ = [
    "CenterLoss",
    "ClassCenters",
    "LabelSmoothingCrossEntropy",
    "MultiBinaryAttributeLoss",
    "PMITripletLoss",
    "WeightedRegularizationTriplet",
    "center_loss",
    "label_smoothing_cross_entropy",
    "multi_binary_attribute_loss",
    "multi_binary_attribute_terms",
    "pmi_triplet_loss",
    "pmi_triplet_terms",
    "positive_ratio_weights",
    "weighted_regularization_triplet",
    "weighted_regularization_triplet_terms",
]
