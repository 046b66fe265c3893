"""`evaluate_model` for an `ASANet`: re-ID on its feature, and both attribute heads scored
beside it, during training (`keras_asanet.training.callbacks.ReIDEvaluation`) and after it
(`scripts/evaluate.py`).

The model is called for its output dict (`return_dict=True`) instead of being switched to
dict outputs and back, so an evaluation never changes what the model returns afterwards (nor
throws away its compiled predict function).
"""

from __future__ import annotations

from keras_asanet.evaluation.evaluator import evaluate_model

#: Where an ASANet's output dict holds the re-ID feature and the attribute logits.
ASANET_OUTPUT_KEYS = {
    "feature_key": "feature",
    "id_relevant_key": "re_attr_logits",
    "id_irrelevant_key": "ir_attr_logits",
}


def is_asanet(model) -> bool:
    """Whether `model` is a `keras_asanet.models.ASANet` (a loaded `.keras` file may hold
    any model)."""
    from keras_asanet.models import ASANet

    return isinstance(model, ASANet)


def evaluate_asanet(model, dataset, feature_parts=False, **kwargs):
    """`evaluate_model` on an `ASANet`, with its attribute heads reported beside re-ID.

    Args:
        model: an `ASANet`; its output mode (`set_inference_outputs`) is left as it is.
        dataset: as for `evaluate_model`.
        feature_parts: also rank each part of the test feature alone (the identity
            features and the attribute feature, `asanet_feature_parts`): which part carries
            the ranking.
        **kwargs: any other argument of `evaluate_model` (`setup`, `mode`, `seq_len`,
            `image_size`, `batch_size`, `num_workers`, `verbose`, ...).

    Returns:
        An `EvaluationReport`.

    Example:

    >>> report = evaluate_asanet(model, Mars(root), seq_len=6)  # doctest: +SKIP
    """
    from keras_asanet.evaluation.feature_parts import asanet_feature_parts

    parts = asanet_feature_parts(model) if feature_parts else None
    return evaluate_model(
        model,
        dataset,
        call_kwargs={"return_dict": True},
        feature_parts=parts,
        **ASANET_OUTPUT_KEYS,
        **kwargs,
    )
