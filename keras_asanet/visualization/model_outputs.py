"""A model's outputs on a dataset's test split, extracted once and shared by the figures that
need them (retrieval grid, t-SNE, CMC curve, attribute confusion)."""

from __future__ import annotations

import dataclasses

import numpy as np

from keras_asanet.cli import DEFAULT_METRIC


@dataclasses.dataclass
class EvaluationOutputs:
    """What `evaluation_outputs` extracted.

    Attributes:
        protocol: the `EvaluationProtocol` (its `tracklets` are the rows below).
        features: `(N, D)` float32 re-ID features, one per tracklet of the protocol.
        re_attr_logits: `(N, A_re)` ID-relevant attribute logits, or `None` (a model
            without attribute heads).
        ir_attr_logits: `(N, A_ir)` ID-irrelevant (motion + pose) logits, or `None`.
        settings: the extraction settings (`mode`, `seq_len`, `image_size`).
    """

    protocol: object
    features: np.ndarray
    re_attr_logits: np.ndarray | None
    ir_attr_logits: np.ndarray | None
    settings: dict

    def ranking(self, metric=DEFAULT_METRIC, max_rank=50):
        """The protocol's `RankingResult` on these features (`evaluate_ranking`)."""
        return self.protocol.evaluate(self.features, metric=metric, max_rank=max_rank)


def evaluation_outputs(
    model,
    dataset,
    setup="usual",
    mode="dense",
    seq_len=6,
    image_size=None,
    batch_size=32,
    num_workers=4,
    verbose=False,
    flip=False,
) -> EvaluationOutputs:
    """Features (and, for an ASA-Net, attribute logits) of every test tracklet of `dataset`,
    through `keras_asanet.evaluation.extract_features` exactly as the evaluation computes them.

    Args:
        model: an `ASANet` (asked for its output dict, `return_dict=True`) or any model
            `extract_features` accepts.
        dataset: a `VideoReIDDataset` (or anything with `.name`, `.query`, `.gallery`).
        setup: `"usual"` or `"mixing"` (`get_protocol`).
        mode, seq_len, image_size, batch_size, num_workers, verbose, flip: as
            `extract_features`.

    Returns:
        A `EvaluationOutputs`.
    """
    from keras_asanet.evaluation.asanet_evaluation import ASANET_OUTPUT_KEYS, is_asanet
    from keras_asanet.evaluation.feature_extraction import extract_features, resolve_image_size
    from keras_asanet.evaluation.protocols import get_protocol

    protocol = get_protocol(dataset, setup)
    image_size = resolve_image_size(model, image_size)
    asanet = is_asanet(model)
    extracted = extract_features(
        model,
        protocol.tracklets,
        mode=mode,
        seq_len=seq_len,
        batch_size=batch_size,
        image_size=image_size,
        num_workers=num_workers,
        verbose=verbose,
        call_kwargs={"return_dict": True} if asanet else None,
        flip=flip,
    )
    outputs = extracted.features
    if isinstance(outputs, dict):
        features = outputs[ASANET_OUTPUT_KEYS["feature_key"]]
        re_logits = outputs.get(ASANET_OUTPUT_KEYS["id_relevant_key"])
        ir_logits = outputs.get(ASANET_OUTPUT_KEYS["id_irrelevant_key"])
    else:
        features, re_logits, ir_logits = outputs, None, None
    return EvaluationOutputs(
        protocol=protocol,
        features=features,
        re_attr_logits=re_logits,
        ir_attr_logits=ir_logits,
        settings={
            "mode": mode,
            "seq_len": int(seq_len),
            "image_size": list(image_size),
            "flip": bool(flip),
        },
    )
