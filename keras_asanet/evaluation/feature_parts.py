"""Which part of a concatenated feature carries the ranking: each part ranked alone.

ASA-Net's test feature is `BN(f_final)`, the concatenation of the identity features
(`f_re_ID`, `f_ID`, `f_ir_ID`) and the attribute feature (§III-D). The BNNeck normalises each
channel on its own, so the columns of the test feature stay those of `f_final`, and each part
can be ranked by itself with the same protocol. That answers what the total mAP cannot: whether
the attribute-guided part or the identity parts generalise to new identities and scenes
(docs/results.md, "What carries the ranking").
"""

from __future__ import annotations

import dataclasses

import numpy as np


@dataclasses.dataclass
class FeaturePartScores:
    """Each part of a feature ranked alone (`evaluate_model(..., feature_parts=...)`).

    Attributes:
        parts: `{name: (start, stop)}`, the columns of each part, in feature order.
        results: `{name: RankingResult}` of each part alone, same protocol and metric.
    """

    parts: dict
    results: dict

    def to_dict(self) -> dict:
        return {
            name: {"columns": list(self.parts[name]), "ranking": result.to_dict()}
            for name, result in self.results.items()
        }

    def __str__(self) -> str:
        items = [
            f"{name} [{self.parts[name][0]}:{self.parts[name][1]}] mAP {100 * r.mAP:.1f} "
            f"rank-1 {100 * r.rank(1):.1f}"
            for name, r in self.results.items()
        ]
        return "feature parts, each ranked alone: " + ", ".join(items)


def check_feature_parts(parts, width):
    """Validates `{name: (start, stop)}` against a feature of `width` columns.

    Raises:
        ValueError: a part is empty, out of `[0, width]`, or overlaps another.
    """
    if not parts:
        raise ValueError("feature_parts must name at least one part.")
    taken = np.zeros(int(width), bool)
    for name, span in parts.items():
        start, stop = (int(v) for v in span)
        if not 0 <= start < stop <= width:
            raise ValueError(
                f"feature part {name!r} = ({start}, {stop}) is not a non-empty column range "
                f"of the {width}-wide feature."
            )
        if taken[start:stop].any():
            raise ValueError(f"feature part {name!r} = ({start}, {stop}) overlaps another part.")
        taken[start:stop] = True
    return {name: (int(a), int(b)) for name, (a, b) in parts.items()}


def score_feature_parts(protocol, features, pids, camids, parts, **ranking_kwargs):
    """Ranks each part of `features` alone with `protocol`.

    Args:
        protocol: an `EvaluationProtocol`.
        features, pids, camids: as `protocol.evaluate` takes them (`(N, D)` features).
        parts: `{name: (start, stop)}` column ranges (e.g. `asanet_feature_parts(model)`).
        **ranking_kwargs: `metric`, `max_rank`, `max_memory` of `evaluate_ranking`.

    Returns:
        A `FeaturePartScores`.
    """
    features = np.asarray(features)
    parts = check_feature_parts(parts, features.shape[1])
    results = {
        name: protocol.evaluate(features[:, start:stop], pids, camids, **ranking_kwargs)
        for name, (start, stop) in parts.items()
    }
    return FeaturePartScores(parts=parts, results=results)


def asanet_feature_parts(model):
    """The column ranges of an `ASANet`'s test feature, in concatenation order.

    Args:
        model: a `keras_asanet.models.ASANet`.

    Returns:
        `{"f_re_id": (0, d), "f_id": (d, 2d), ...}` for the identity branches it fuses
        (`branch_dim` wide each), then `"f_re_attr"` (fusion a) or `"attribute_fc"` (fusion
        b, the FC of both attribute features) when the attribute feature is fused.

    Example:

    >>> model = ASANet.from_preset("asanet_tiny", num_identities=10)   # doctest: +SKIP
    >>> asanet_feature_parts(model)                                    # doctest: +SKIP
    {'f_re_id': (0, 32), 'f_id': (32, 64), 'f_ir_id': (64, 96), 'f_re_attr': (96, 160)}
    """
    return dict(model.feature_columns)
