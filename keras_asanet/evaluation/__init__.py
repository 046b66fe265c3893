"""Evaluation: feature extraction, CMC / mAP / mINP ranking (MARS usual + mixing, Duke,
cross-dataset), attribute accuracy, per-query breakdowns, the raw-pixels baseline and the
ASRE mask score.

Everything here except `extract_features` / `evaluate_model` / `evaluate_asanet` /
`mask_score` (which import Keras lazily, when called) is numpy-only.
"""

from keras_asanet.evaluation.asanet_evaluation import evaluate_asanet
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
from keras_asanet.evaluation.feature_parts import (
    FeaturePartScores,
    asanet_feature_parts,
    score_feature_parts,
)
from keras_asanet.evaluation.mask_score import (
    MaskScore,
    cell_fractions,
    cell_windows,
    centre_prior,
    mask_score,
    top_k_iou,
    top_k_positions,
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
from keras_asanet.evaluation.raw_pixels import (
    RawPixelSums,
    raw_pixel_baseline,
    raw_pixel_features,
)
from keras_asanet.evaluation.reranking import k_reciprocal_distance

__all__ = [
    "AttributeAccuracy",
    "CameraPairBreakdown",
    "EvaluationProtocol",
    "EvaluationReport",
    "ExtractedFeatures",
    "FeaturePartScores",
    "MaskScore",
    "QueryBreakdown",
    "RankingResult",
    "RawPixelSums",
    "asanet_feature_parts",
    "attribute_accuracy",
    "breakdown_by_query",
    "camera_pair_breakdown",
    "canonical_dataset_name",
    "cell_fractions",
    "cell_windows",
    "centre_prior",
    "clip_plan",
    "cross_dataset_protocol",
    "duke_protocol",
    "evaluate_asanet",
    "evaluate_distance_matrix",
    "evaluate_model",
    "evaluate_ranking",
    "extract_features",
    "get_protocol",
    "k_reciprocal_distance",
    "mars_protocol",
    "mask_score",
    "pairwise_distance",
    "raw_pixel_baseline",
    "raw_pixel_features",
    "score_feature_parts",
    "top_k_iou",
    "top_k_positions",
]
