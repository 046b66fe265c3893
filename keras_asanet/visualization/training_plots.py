"""The two pictures of a training run: loss and accuracy curves per epoch, and the CMC curve.

Figures are made with matplotlib's object-oriented API (`matplotlib.figure.Figure`, no
`pyplot`), so drawing them neither switches the user's matplotlib backend nor leaves figures
open in pyplot's registry during a long run; a notebook displays the returned figure as usual.
"""

from __future__ import annotations

import numpy as np

#: The loss terms drawn (log scale) and the training accuracies drawn beside them.
LOSS_KEYS = ("loss", "xent", "wrt", "center", "bce_re", "bce_ir", "pmi")
ACCURACY_KEYS = ("id_acc", "attr_acc")


def _save(fig, path):
    if path is not None:
        fig.savefig(path, dpi=100)
    return fig


def plot_training_curves(history, path=None):
    """The loss terms (log scale) and the training accuracies of a run, per epoch.

    Args:
        history: a dict of per-epoch lists (`History.history`, or the history a run's
            checkpoints keep); keys other than `LOSS_KEYS` and `ACCURACY_KEYS` are ignored.
        path: where to write the figure as PNG, or `None` not to write it.

    Returns:
        A `matplotlib.figure.Figure` with two axes: `"losses"` (one line per loss term found)
        and `"training accuracy"` (one per accuracy found). A history without any of them
        gives the two empty axes, titled so.

    Example:

    >>> fig = plot_training_curves(model.fit(...).history, "curves.png")  # doctest: +SKIP
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 3.5))
    axes = fig.subplots(1, 2)
    for ax, keys, title, log in (
        (axes[0], LOSS_KEYS, "losses", True),
        (axes[1], ACCURACY_KEYS, "training accuracy", False),
    ):
        found = [k for k in keys if len(history.get(k) or ()) > 0]
        for k in found:
            values = [float(v) for v in history[k]]
            ax.plot(range(1, len(values) + 1), values, label=k)
        ax.set_xlabel("epoch")
        if found:
            if log:  # terms span orders of magnitude; a 0 (PMI off) is left out of a line
                ax.set_yscale("log")
            ax.legend(fontsize=7)
            ax.set_title(title)
        else:
            ax.set_title(f"{title} (none recorded)")
    fig.tight_layout()
    return _save(fig, path)


def plot_cmc(cmc, mAP=None, path=None, max_rank=20):
    """The CMC curve (matching rate in % against rank) up to `max_rank`.

    Args:
        cmc: the cumulative matching rates, `cmc[r - 1]` for rank `r`, in [0, 1]
            (`RankingResult.cmc`).
        mAP: the mAP in [0, 1], shown in the title when given.
        path: where to write the figure as PNG, or `None` not to write it.
        max_rank: the last rank drawn (fewer if `cmc` is shorter).

    Returns:
        A `matplotlib.figure.Figure` with one axis holding one line of
        `min(len(cmc), max_rank)` points.

    Example:

    >>> fig = plot_cmc(report.ranking.cmc, report.ranking.mAP, "cmc.png")  # doctest: +SKIP
    """
    from matplotlib.figure import Figure

    cmc = np.asarray(cmc, np.float64).reshape(-1)
    if cmc.size == 0:
        raise ValueError("cmc is empty: nothing to plot.")
    ranks = np.arange(1, min(cmc.size, int(max_rank)) + 1)
    fig = Figure(figsize=(4.5, 3.5))
    ax = fig.subplots()
    ax.plot(ranks, 100.0 * cmc[ranks - 1], marker="o")
    ax.set_xlabel("rank")
    ax.set_ylabel("matching rate (%)")
    ax.set_title("CMC" if mAP is None else f"CMC (mAP {100 * float(mAP):.1f})")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return _save(fig, path)
