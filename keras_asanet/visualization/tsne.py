"""Feature space at a glance: a 2-D t-SNE of test features coloured by identity and, beside it,
by an ID-irrelevant attribute (pose or motion), as in the paper's Fig. 7.

A feature that ignores pose and motion groups each identity's tracklets together (left) while
pose / motion colours mix inside every group (right). t-SNE comes from scikit-learn, an
optional dependency: `pip install "keras_asanet[vis]"`.
"""

from __future__ import annotations

import numpy as np

from keras_asanet.visualization._figures import hide_ticks, new_figure, save_figure

#: The pip extra that installs scikit-learn.
SKLEARN_EXTRA = "vis"


def _tsne_class():
    try:
        from sklearn.manifold import TSNE
    except ImportError as err:
        raise ImportError(
            "t-SNE needs scikit-learn, which is not installed; install it with "
            f'pip install "keras_asanet[{SKLEARN_EXTRA}]" (or pip install scikit-learn).'
        ) from err
    return TSNE


def tsne_embedding(features, perplexity=None, seed=0, method=None):
    """2-D t-SNE of features (scikit-learn's `TSNE`, PCA initialisation, fixed seed).

    Args:
        features: `(N, D)` finite numbers, `N >= 3`.
        perplexity: t-SNE perplexity; by default `min(30, (N - 1) / 3)` so that small test
            sets work.
        seed: random state (the result is deterministic for a given seed).
        method: `"exact"` or `"barnes_hut"`; by default exact up to 1,000 points (numpy
            only: scikit-learn's Barnes-Hut runs OpenMP threads that crawl on a busy
            machine, 30 s instead of 0.3 s for 32 points on two shared cores) and Barnes-Hut
            above (MARS has 11,310 test tracklets).

    Returns:
        `(N, 2)` float64 coordinates.

    Raises:
        ImportError: scikit-learn is not installed (the message names the extra).
        ValueError: fewer than 3 rows, or NaN / inf values.
    """
    tsne = _tsne_class()
    features = np.asarray(features, np.float64)
    if features.ndim != 2 or features.shape[0] < 3:
        raise ValueError(f"t-SNE needs (N >= 3, D) features, got shape {features.shape}.")
    if not np.isfinite(features).all():
        raise ValueError("features hold NaN or inf values.")
    n = features.shape[0]
    if perplexity is None:
        perplexity = min(30.0, max((n - 1) / 3.0, 1.0))
    if method is None:
        method = "exact" if n <= 1000 else "barnes_hut"
    return tsne(
        n_components=2,
        perplexity=float(perplexity),
        init="pca",
        random_state=int(seed),
        method=method,
    ).fit_transform(features)


def tracklet_labels(tracklets, name):
    """An attribute of each tracklet as an int array, -1 where the tracklet has no
    annotation row (or no such attribute): `"pose"`, `"motion"`, or any attribute name of
    the schema, read like `breakdown_by_query` reads them. `"pid"` and `"camid"` give the
    identity and camera."""
    if name in ("pid", "camid"):
        return np.array([getattr(t, name) for t in tracklets], np.int64)
    return np.array(
        [
            -1 if t.attributes is None or t.attributes.get(name) is None else t.attributes[name]
            for t in tracklets
        ],
        np.int64,
    )


def _colours(labels, cmap_name):
    """One RGBA colour per label value (a qualitative map, cycled), grey for -1."""
    from matplotlib import colormaps

    cmap = colormaps[cmap_name]
    values = sorted(v for v in set(labels.tolist()) if v >= 0)
    table = {v: cmap(i % cmap.N) for i, v in enumerate(values)}
    table[-1] = (0.6, 0.6, 0.6, 1.0)
    return values, np.array([table[v] for v in labels.tolist()]), table


def _name(value, names):
    if value < 0:
        return "unknown"
    return names[value] if names is not None and value < len(names) else str(value)


def plot_tsne(
    features,
    pids,
    second=None,
    second_name="pose",
    class_names=None,
    embedding=None,
    perplexity=None,
    seed=0,
    path=None,
):
    """t-SNE of features: coloured by identity, and in a second panel by another label.

    Args:
        features: `(N, D)` features (e.g. `extract_features` on the test tracklets).
        pids: `(N,)` identities (first panel's colours; `tab20`, cycled when there are more).
        second: optional `(N,)` int labels of the second panel (`tracklet_labels(tracklets,
            "pose")`), -1 for unknown (grey); `None` draws the identity panel only.
        second_name: what `second` is (panel title and legend title).
        class_names: optional names of `second`'s values (a legend entry per value).
        embedding: a precomputed `(N, 2)` embedding (skips t-SNE, and scikit-learn).
        perplexity, seed: of `tsne_embedding`.
        path: where to write the figure as PNG, or `None`.

    Returns:
        A `matplotlib.figure.Figure` with one or two axes, each holding one scatter of the
        `N` points at `embedding`; `fig.embedding` is the `(N, 2)` embedding.

    Raises:
        ImportError: scikit-learn is missing and no `embedding` is given.

    Example:

    >>> out = evaluation_outputs(model, dataset)                            # doctest: +SKIP
    >>> tracklets = out.protocol.tracklets                                   # doctest: +SKIP
    >>> fig = plot_tsne(out.features, tracklet_labels(tracklets, "pid"),
    ...                 tracklet_labels(tracklets, "pose"), "pose")          # doctest: +SKIP
    """
    features = np.asarray(features)
    pids = np.asarray(pids, np.int64).reshape(-1)
    if features.ndim != 2 or len(pids) != features.shape[0]:
        raise ValueError(
            f"features must be (N, D) with one pid per row; got {features.shape} and "
            f"{len(pids)} pids."
        )
    if embedding is None:
        embedding = tsne_embedding(features, perplexity=perplexity, seed=seed)
    embedding = np.asarray(embedding, np.float64)
    if embedding.shape != (len(pids), 2):
        raise ValueError(f"embedding must be ({len(pids)}, 2), got {embedding.shape}.")
    panels = [("identity", pids, "tab20", None)]
    if second is not None:
        second = np.asarray(second, np.int64).reshape(-1)
        if len(second) != len(pids):
            raise ValueError(f"second has {len(second)} labels for {len(pids)} points.")
        panels.append((second_name, second, "tab10", class_names))
    fig = new_figure(4.2 * len(panels), 4.0)
    axes = np.atleast_1d(fig.subplots(1, len(panels)))
    for ax, (title, labels, cmap, names) in zip(axes, panels):
        values, colours, table = _colours(labels, cmap)
        ax.scatter(embedding[:, 0], embedding[:, 1], c=colours, s=18, linewidths=0)
        ax.set_title(f"t-SNE coloured by {title} ({len(values)} values)", fontsize=9)
        hide_ticks(ax)
        if title != "identity":
            from matplotlib.lines import Line2D

            shown = values + ([-1] if (labels == -1).any() else [])
            handles = [
                Line2D([], [], marker="o", linestyle="", color=table[v], label=_name(v, names))
                for v in shown
            ]
            ax.legend(handles=handles, title=title, fontsize=6, title_fontsize=7, loc="best")
    fig.tight_layout()
    fig.embedding = embedding
    return save_figure(fig, path)
