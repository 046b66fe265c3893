"""CMC curves of one or more ranking results on one axis (e.g. the model beside the
raw-pixels baseline on the same protocol)."""

from __future__ import annotations

import numpy as np

from keras_asanet.visualization._figures import new_figure, save_figure


def _curve(result):
    """`(cmc, mAP or None, scored queries or None)` of a `RankingResult` or a CMC array."""
    if hasattr(result, "cmc"):
        return (
            np.asarray(result.cmc, np.float64).reshape(-1),
            float(result.mAP),
            int(result.num_valid_queries),
        )
    return np.asarray(result, np.float64).reshape(-1), None, None


def plot_cmc_curves(results, max_rank=20, title=None, path=None):
    """Matching rate (%) against rank, one line per ranking result.

    Args:
        results: a `RankingResult` (`evaluate_ranking`), or a dict of label ->
            `RankingResult` (or a CMC array `cmc[r - 1]` in [0, 1]), drawn in order.
        max_rank: the last rank drawn (fewer where a CMC is shorter).
        title: axis title; by default "CMC" with the number of scored queries when known.
        path: where to write the figure as PNG, or `None`.

    Returns:
        A `matplotlib.figure.Figure` with one axis, one line per result labelled
        `"<label> (mAP m, R1 r)"` (mAP only for a `RankingResult`), ranks 1..max_rank on x.

    Example:

    >>> fig = plot_cmc_curves({"ASA-Net": report.ranking,
    ...                        "raw pixels": report.baseline}, path="cmc.png")  # doctest: +SKIP
    """
    if not isinstance(results, dict):
        results = {getattr(results, "name", None) or "model": results}
    if not results:
        raise ValueError("results is empty: nothing to plot.")
    fig = new_figure(4.8, 3.6)
    ax = fig.subplots()
    scored = None
    for label, result in results.items():
        cmc, mean_ap, valid = _curve(result)
        if cmc.size == 0:
            raise ValueError(f"the CMC of {label!r} is empty.")
        ranks = np.arange(1, min(cmc.size, int(max_rank)) + 1)
        text = f"{label} (R1 {100 * cmc[0]:.1f}"
        text += ")" if mean_ap is None else f", mAP {100 * mean_ap:.1f})"
        ax.plot(ranks, 100.0 * cmc[ranks - 1], marker="o", markersize=3, label=text)
        scored = valid if scored is None else scored
    ax.set_xlabel("rank")
    ax.set_ylabel("matching rate (%)")
    ax.set_ylim(0, 101)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    if title is None:
        title = "CMC" if scored is None else f"CMC ({scored} scored queries)"
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return save_figure(fig, path)
