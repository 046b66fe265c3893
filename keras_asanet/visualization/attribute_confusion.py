"""How the attribute heads err: a confusion matrix per attribute (true class against predicted
class) on the annotated test tracklets, drawn as a grid of small heat maps.

Predictions are decoded as `attribute_accuracy` decodes them (`AttributeSchema.decode`:
arg-max over a multi-class attribute's slots, `logit > 0` for a binary one), so the diagonal
share of each matrix is exactly that attribute's accuracy in the evaluation report.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from keras_asanet.visualization._figures import new_figure, save_figure


@dataclasses.dataclass
class AttributeConfusion:
    """One attribute's confusion matrix.

    Attributes:
        name: the attribute.
        group: `"id_relevant"` or `"id_irrelevant"`.
        class_names: its classes (rows and columns, in order).
        counts: `(K, K)` int64, `counts[true, predicted]`.
    """

    name: str
    group: str
    class_names: tuple
    counts: np.ndarray

    @property
    def accuracy(self) -> float:
        """The diagonal share (`attribute_accuracy`'s value for this attribute)."""
        total = int(self.counts.sum())
        return float(np.trace(self.counts) / total) if total else float("nan")


def attribute_confusion(schema, id_relevant_logits, id_irrelevant_logits, tracklets):
    """The confusion matrix of every attribute of the given head outputs.

    Args:
        schema: the dataset's `AttributeSchema`.
        id_relevant_logits: `(N, schema.id_relevant_dim)` logits aligned with `tracklets`, or
            `None` to skip the group.
        id_irrelevant_logits: `(N, schema.id_irrelevant_dim)` (motion + pose), or `None`.
        tracklets: the `N` `Tracklet`s; those without annotation are left out.

    Returns:
        A list of `AttributeConfusion` in schema order (ID-relevant first).

    Raises:
        ValueError: as `attribute_accuracy` (shapes, NaN, no annotated tracklet, no logits).

    Example:

    >>> conf = attribute_confusion(schema, re_logits, ir_logits, tracklets)  # doctest: +SKIP
    >>> conf[0].name, conf[0].counts, conf[0].accuracy                      # doctest: +SKIP
    """
    from keras_asanet.data.attributes import ID_IRRELEVANT, ID_RELEVANT
    from keras_asanet.evaluation.attribute_accuracy import _check_logits

    tracklets = list(tracklets)
    groups = []
    for group, logits, dim, arg in (
        (ID_RELEVANT, id_relevant_logits, schema.id_relevant_dim, "id_relevant_logits"),
        (ID_IRRELEVANT, id_irrelevant_logits, schema.id_irrelevant_dim, "id_irrelevant_logits"),
    ):
        if logits is not None:
            groups.append((group, _check_logits(arg, logits, len(tracklets), dim)))
    if not groups:
        raise ValueError("id_relevant_logits and id_irrelevant_logits are both None.")
    annotated = np.array([t.attributes is not None for t in tracklets], bool)
    if not annotated.any():
        raise ValueError(
            f"None of the {len(tracklets)} tracklets has an attribute annotation; no "
            "confusion matrix can be computed."
        )
    rows = [t.attributes for t in tracklets if t.attributes is not None]
    out = []
    for group, logits in groups:
        predictions = schema.decode(logits[annotated], group)
        for attribute in schema.group(group):
            k = attribute.num_classes
            truth = np.array([int(r[attribute.name]) for r in rows])
            counts = np.zeros((k, k), np.int64)
            np.add.at(counts, (truth, np.asarray(predictions[attribute.name])), 1)
            out.append(AttributeConfusion(attribute.name, group, attribute.class_names, counts))
    return out


def plot_attribute_confusion(confusions, columns=5, path=None):
    """A grid of row-normalised confusion matrices, one per attribute, titled with the
    attribute's accuracy.

    Args:
        confusions: the list `attribute_confusion` returns.
        columns: panels per row.
        path: where to write the figure as PNG, or `None`.

    Returns:
        A `matplotlib.figure.Figure` with one axis per attribute (in the list's order; spare
        grid cells are switched off). Each axis image is the matrix with every true-class
        row divided by its count (rows without a sample stay 0); matrices with at most 6
        classes print their counts in the cells.

    Example:

    >>> fig = plot_attribute_confusion(attribute_confusion(schema, re, ir, tracklets),
    ...                                path="attributes.png")  # doctest: +SKIP
    """
    confusions = list(confusions)
    if not confusions:
        raise ValueError("confusions is empty: nothing to plot.")
    columns = max(1, min(int(columns), len(confusions)))
    rows = -(-len(confusions) // columns)
    fig = new_figure(2.3 * columns, 2.4 * rows)
    axes = np.asarray(fig.subplots(rows, columns, squeeze=False)).reshape(-1)
    for ax, conf in zip(axes, confusions):
        counts = np.asarray(conf.counts)
        totals = counts.sum(axis=1, keepdims=True)
        rates = np.divide(counts, np.maximum(totals, 1), dtype=np.float64)
        ax.imshow(rates, cmap="Blues", vmin=0.0, vmax=1.0, interpolation="nearest")
        k = counts.shape[0]
        labels = [str(c)[:6] for c in conf.class_names]
        ax.set_xticks(range(k), labels, fontsize=5, rotation=90)
        ax.set_yticks(range(k), labels, fontsize=5)
        ax.set_xlabel("predicted", fontsize=6)
        ax.set_ylabel("true", fontsize=6)
        ax.set_title(f"{conf.name}: {100 * conf.accuracy:.0f}%", fontsize=7)
        if k <= 6:
            for i in range(k):
                for j in range(k):
                    ax.text(
                        j, i, str(int(counts[i, j])), ha="center", va="center", fontsize=6,
                        color="white" if rates[i, j] > 0.5 else "black",
                    )  # fmt: skip
    for ax in axes[len(confusions) :]:
        ax.set_axis_off()
    fig.tight_layout()
    return save_figure(fig, path)
