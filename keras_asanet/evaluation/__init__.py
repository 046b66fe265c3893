"""Evaluation: feature extraction, CMC / mAP / mINP ranking (MARS usual + mixing, Duke,
cross-dataset), attribute accuracy and per-query breakdowns.

Everything here except `extract_features` / `evaluate_model` (which import Keras lazily, when
called) is numpy-only.
"""

from keras_asanet.evaluation.attribute_accuracy import AttributeAccuracy, attribute_accuracy
from keras_asanet.evaluation.breakdown import (
    CameraPairBreakdown,
    QueryBreakdown,
    breakdown_by_query,
    camera_pair_breakdown,
)
from keras_asanet.evaluation.evaluator import EvaluationReport, evaluate_model
from keras_asanet.evaluation.feature_extraction import (
    ExtractedFeatures,
    clip_plan,
    extract_features,
)
from keras_asanet.evaluation.protocols import (
    EvaluationProtocol,
    canonical_dataset_name,
    cross_dataset_protocol,
    duke_protocol,
    get_protocol,
    mars_protocol,
)
from keras_asanet.evaluation.ranking import (
    RankingResult,
    evaluate_distance_matrix,
    evaluate_ranking,
    pairwise_distance,
)

__all__ = [
    "AttributeAccuracy",
    "CameraPairBreakdown",
    "EvaluationProtocol",
    "EvaluationReport",
    "ExtractedFeatures",
    "QueryBreakdown",
    "RankingResult",
    "attribute_accuracy",
    "breakdown_by_query",
    "camera_pair_breakdown",
    "canonical_dataset_name",
    "clip_plan",
    "cross_dataset_protocol",
    "duke_protocol",
    "evaluate_distance_matrix",
    "evaluate_model",
    "evaluate_ranking",
    "extract_features",
    "get_protocol",
    "mars_protocol",
    "pairwise_distance",
]
