"""Accuracy of the attribute heads on annotated test tracklets. numpy-only."""

from __future__ import annotations

import dataclasses

import numpy as np

from keras_asanet.data.attributes import ID_IRRELEVANT, ID_RELEVANT


@dataclasses.dataclass
class AttributeAccuracy:
    """Per-attribute and mean accuracy of attribute predictions.

    Attributes:
        per_attribute: accuracy in [0, 1] keyed by attribute name (both groups).
        mean_accuracy: unweighted mean over `per_attribute`.
        group_mean: mean accuracy of each evaluated group (`"id_relevant"`,
            `"id_irrelevant"`).
        num_tracklets: annotated tracklets scored.
        num_skipped: tracklets without an annotation row (not scored).
    """

    per_attribute: dict
    mean_accuracy: float
    group_mean: dict
    num_tracklets: int
    num_skipped: int

    def to_dict(self) -> dict:
        return {
            "mean_accuracy": float(self.mean_accuracy),
            "group_mean": {k: float(v) for k, v in self.group_mean.items()},
            "per_attribute": {k: float(v) for k, v in self.per_attribute.items()},
            "num_tracklets": int(self.num_tracklets),
            "num_skipped": int(self.num_skipped),
        }

    def __str__(self) -> str:
        lines = [
            f"Attribute accuracy on {self.num_tracklets} annotated tracklets "
            f"({self.num_skipped} without annotation skipped): mean "
            f"{100 * self.mean_accuracy:.2f}%"
        ]
        for group, value in self.group_mean.items():
            lines.append(f"  {group:<14}: {100 * value:6.2f}%")
        for name, value in self.per_attribute.items():
            lines.append(f"    {name:<16}: {100 * value:6.2f}%")
        return "\n".join(lines)


def _check_logits(name, logits, num, dim):
    logits = np.asarray(logits)
    if logits.dtype.kind not in "fiu":
        raise ValueError(f"{name} must hold numbers, got dtype {logits.dtype}.")
    if logits.shape != (num, dim):
        raise ValueError(
            f"{name} must have shape ({num}, {dim}) (one row per tracklet, the schema's "
            f"{dim} slots), got {logits.shape}."
        )
    if not np.isfinite(logits).all():
        raise ValueError(f"{name} contains NaN or inf values.")
    return logits


def attribute_accuracy(schema, id_relevant_logits, id_irrelevant_logits, tracklets):
    """Accuracy of each attribute prediction against the tracklets' annotations.

    Why it exists: ASA-Net's attribute heads are trained beside re-ID; their accuracy on the
    test tracklets is reported next to CMC / mAP. A multi-class attribute is predicted by the
    arg-max over its sigmoid slots, a binary one by `logit > 0` (`AttributeSchema.decode`).

    Args:
        schema: the dataset's `AttributeSchema`.
        id_relevant_logits: `(N, schema.id_relevant_dim)` head outputs (logits), aligned with
            `tracklets`, or `None` to skip that group (e.g. a cross-dataset model whose head
            was trained on another schema).
        id_irrelevant_logits: `(N, schema.id_irrelevant_dim)` (motion + pose), or `None`.
        tracklets: the `N` `Tracklet`s; those whose `attributes` is `None` are skipped.

    Returns:
        An `AttributeAccuracy`.

    Raises:
        ValueError: both logits `None`, shapes not `(N, dim)`, NaN/inf, or no annotated
            tracklet.

    Example:

    >>> acc = attribute_accuracy(schema, re_logits, ir_logits, test_tracklets)  # doctest: +SKIP
    >>> acc.per_attribute["gender"], acc.mean_accuracy                          # doctest: +SKIP
    """
    tracklets = list(tracklets)
    groups = []
    if id_relevant_logits is not None:
        groups.append(
            (
                ID_RELEVANT,
                _check_logits(
                    "id_relevant_logits", id_relevant_logits, len(tracklets), schema.id_relevant_dim
                ),
            )
        )
    if id_irrelevant_logits is not None:
        groups.append(
            (
                ID_IRRELEVANT,
                _check_logits(
                    "id_irrelevant_logits",
                    id_irrelevant_logits,
                    len(tracklets),
                    schema.id_irrelevant_dim,
                ),
            )
        )
    if not groups:
        raise ValueError("id_relevant_logits and id_irrelevant_logits are both None.")
    annotated = np.array([t.attributes is not None for t in tracklets], bool)
    if not annotated.any():
        raise ValueError(
            f"None of the {len(tracklets)} tracklets has an attribute annotation; "
            "attribute accuracy cannot be computed."
        )
    rows = [t.attributes for t in tracklets if t.attributes is not None]
    per_attribute, group_mean = {}, {}
    for group, logits in groups:
        predictions = schema.decode(logits[annotated], group)
        accs = []
        for attribute in schema.group(group):
            truth = np.array([int(r[attribute.name]) for r in rows])
            acc = float(np.mean(predictions[attribute.name] == truth))
            per_attribute[attribute.name] = acc
            accs.append(acc)
        group_mean[group] = float(np.mean(accs))
    return AttributeAccuracy(
        per_attribute=per_attribute,
        mean_accuracy=float(np.mean(list(per_attribute.values()))),
        group_mean=group_mean,
        num_tracklets=int(annotated.sum()),
        num_skipped=int((~annotated).sum()),
    )


def majority_class_accuracy(schema, train_tracklets, test_tracklets):
    """Accuracy of the predictor that always answers each attribute's most frequent class.

    The class frequencies are counted on `train_tracklets` (what a model could know), the
    accuracy on the annotated `test_tracklets`: the floor a trained attribute head must beat,
    since a head that learned nothing settles on exactly this answer.

    Args:
        schema: the `AttributeSchema` of both splits.
        train_tracklets: tracklets whose annotations give the majority classes.
        test_tracklets: tracklets scored.

    Returns:
        An `AttributeAccuracy` with the same groups and attributes as `attribute_accuracy`.

    Example:

    ```python
    floor = majority_class_accuracy(mars.attribute_schema, mars.train, mars.query)
    floor.group_mean["id_relevant"]
    ```
    """
    train_rows = [t.attributes for t in train_tracklets if t.attributes is not None]
    test_rows = [t.attributes for t in test_tracklets if t.attributes is not None]
    if not train_rows or not test_rows:
        raise ValueError(
            "majority_class_accuracy needs annotated tracklets in both splits; got "
            f"{len(train_rows)} annotated training and {len(test_rows)} annotated test tracklets."
        )
    per_attribute, group_mean = {}, {}
    for group in (ID_RELEVANT, ID_IRRELEVANT):
        accs = []
        for attribute in schema.group(group):
            counts = np.bincount([int(r[attribute.name]) for r in train_rows])
            majority = int(np.argmax(counts))
            truth = np.array([int(r[attribute.name]) for r in test_rows])
            per_attribute[attribute.name] = float(np.mean(truth == majority))
            accs.append(per_attribute[attribute.name])
        if accs:
            group_mean[group] = float(np.mean(accs))
    return AttributeAccuracy(
        per_attribute=per_attribute,
        mean_accuracy=float(np.mean(list(per_attribute.values()))),
        group_mean=group_mean,
        num_tracklets=len(test_rows),
        num_skipped=len(test_tracklets) - len(test_rows),
    )
