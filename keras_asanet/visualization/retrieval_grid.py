"""What the model retrieves: a query tracklet and its top-k gallery tracklets, one
representative frame each, framed green for a true match and red for a false one, with the
cameras in the titles (paper Fig. 6).

The ranking is the evaluation's: distances from `keras_asanet.evaluation.pairwise_distance`
(or features from `extract_features`), gallery items with the query's identity *and* camera
removed (the Market-1501 / MARS rule of `evaluate_ranking`), ties broken by gallery order.
It works on any `VideoReIDDataset` (MARS, DukeMTMC-VideoReID, synthetic).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from keras_asanet.cli import DEFAULT_METRIC
from keras_asanet.visualization._figures import (
    MATCH_COLOUR,
    MISMATCH_COLOUR,
    QUERY_COLOUR,
    as_image,
    hide_ticks,
    new_figure,
    save_figure,
    set_border,
)


@dataclasses.dataclass
class Retrieval:
    """The top of one query's ranking.

    Attributes:
        query: the query's position in the query list.
        gallery: `(k,)` int64 positions in the gallery list, nearest first (fewer than `k`
            when fewer items are left after the same-identity-same-camera removal).
        distances: `(k,)` their distances to the query.
        matches: `(k,)` bool, True where the gallery item has the query's identity.
    """

    query: int
    gallery: np.ndarray
    distances: np.ndarray
    matches: np.ndarray


def rank_gallery(
    distances, query_pids, gallery_pids, query_camids, gallery_camids, queries=None, top_k=5
):
    """The top-k gallery items of each query under the evaluation protocol.

    Args:
        distances: `(Q, G)` distances (smaller is nearer), e.g. `pairwise_distance`.
        query_pids, gallery_pids: `(Q,)`, `(G,)` integer identities.
        query_camids, gallery_camids: `(Q,)`, `(G,)` integer cameras.
        queries: positions of the queries to rank, or `None` for all.
        top_k: items kept per query.

    Returns:
        A list of `Retrieval`, one per query in `queries`' order. As in `evaluate_ranking`,
        items with the query's identity and camera are removed first and equal distances
        keep the gallery order (a stable sort).

    Example:

    >>> import numpy as np
    >>> d = np.array([[0.1, 0.2, 0.3]])
    >>> r = rank_gallery(d, [7], [7, 7, 2], [0], [0, 1, 1], top_k=2)[0]
    >>> r.gallery.tolist(), r.matches.tolist()  # item 0 is the query's own camera: removed
    ([1, 2], [True, False])
    """
    distances = np.asarray(distances)
    q_pids, g_pids = np.asarray(query_pids), np.asarray(gallery_pids)
    q_cams, g_cams = np.asarray(query_camids), np.asarray(gallery_camids)
    if distances.ndim != 2 or distances.shape != (len(q_pids), len(g_pids)):
        raise ValueError(
            f"distances must be (queries, gallery) = ({len(q_pids)}, {len(g_pids)}), got "
            f"shape {distances.shape}."
        )
    if q_cams.shape != q_pids.shape or g_cams.shape != g_pids.shape:
        raise ValueError("camera ids must have one entry per query / gallery item.")
    if int(top_k) < 1:
        raise ValueError(f"top_k must be >= 1, got {top_k}.")
    queries = range(len(q_pids)) if queries is None else [int(q) for q in queries]
    out = []
    for q in queries:
        if not 0 <= q < len(q_pids):
            raise ValueError(f"query position {q} is out of range (there are {len(q_pids)}).")
        keep = np.flatnonzero(~((g_pids == q_pids[q]) & (g_cams == q_cams[q])))
        order = keep[np.argsort(distances[q, keep], kind="stable")][: int(top_k)]
        out.append(
            Retrieval(
                query=q,
                gallery=order.astype(np.int64),
                distances=distances[q, order],
                matches=g_pids[order] == q_pids[q],
            )
        )
    return out


def pick_queries(query_pids, gallery_pids, query_camids, gallery_camids, num_queries=4):
    """`num_queries` query positions evenly spread over the queries that have a true match
    (same identity, another camera) in the gallery: the queries the evaluation scores.

    Returns:
        int64 array of positions, in increasing order (all valid ones if fewer).
    """
    q_pids, g_pids = np.asarray(query_pids), np.asarray(gallery_pids)
    q_cams, g_cams = np.asarray(query_camids), np.asarray(gallery_camids)
    valid = np.array([np.any((g_pids == p) & (g_cams != c)) for p, c in zip(q_pids, q_cams)], bool)
    positions = np.flatnonzero(valid)
    if len(positions) <= int(num_queries):
        return positions.astype(np.int64)
    index = np.linspace(0, len(positions) - 1, int(num_queries)).round().astype(int)
    return positions[np.unique(index)].astype(np.int64)


def representative_frame(tracklet, image_size=None):
    """The middle frame of a tracklet as uint8 RGB (resized to `image_size` if given)."""
    from keras_asanet.data.image_io import read_frame

    return read_frame(tracklet.frames[tracklet.num_frames // 2], image_size)


def plot_retrieval_grid(
    query_tracklets,
    gallery_tracklets,
    distances=None,
    query_features=None,
    gallery_features=None,
    metric=DEFAULT_METRIC,
    queries=None,
    num_queries=4,
    top_k=5,
    image_size=None,
    path=None,
):
    """One row per query: the query's middle frame (blue frame), then its top-k gallery
    tracklets, green for a true match and red for a false one.

    Give either `distances` or both feature arrays.

    Args:
        query_tracklets: the query `Tracklet`s (rows of `distances`).
        gallery_tracklets: the gallery `Tracklet`s (columns).
        distances: `(Q, G)` distances, or `None` to compute them from the features.
        query_features, gallery_features: `(Q, D)`, `(G, D)` features
            (`extract_features`), ranked by `pairwise_distance(..., metric)`.
        metric: `"euclidean"` or `"cosine"`, for features.
        queries: query positions to show, or `None` for `num_queries` of the scored queries
            evenly spread (`pick_queries`).
        num_queries: rows when `queries` is `None`.
        top_k: gallery items per row.
        image_size: `(height, width)` the frames are shown at (default: as stored).
        path: where to write the figure as PNG, or `None`.

    Returns:
        A `matplotlib.figure.Figure` with `rows x (1 + top_k)` axes in row order. Each axis
        is titled `"query"` or `"rank r"`, then the camera (`"cam c"`, 1-based as in MARS
        names) and identity; its spines are coloured (`MATCH_COLOUR`, `MISMATCH_COLOUR`,
        `QUERY_COLOUR`). `fig.retrievals` holds the `Retrieval` of each row. Rows with
        fewer than `top_k` candidates leave the rest of the row empty (axis off).

    Example:

    >>> protocol = mars_protocol(dataset)                                   # doctest: +SKIP
    >>> feats, pids, cams = extract_features(model, protocol.tracklets)    # doctest: +SKIP
    >>> qf, gf, *_ = protocol.split(feats)                                 # doctest: +SKIP
    >>> fig = plot_retrieval_grid(protocol.query_tracklets, protocol.gallery_tracklets,
    ...                           query_features=qf, gallery_features=gf)  # doctest: +SKIP
    """
    from keras_asanet.evaluation.ranking import pairwise_distance

    query_tracklets, gallery_tracklets = list(query_tracklets), list(gallery_tracklets)
    if distances is None:
        if query_features is None or gallery_features is None:
            raise ValueError("Give distances, or both query_features and gallery_features.")
        distances = pairwise_distance(query_features, gallery_features, metric)
    q_pids = np.array([t.pid for t in query_tracklets])
    g_pids = np.array([t.pid for t in gallery_tracklets])
    q_cams = np.array([t.camid for t in query_tracklets])
    g_cams = np.array([t.camid for t in gallery_tracklets])
    if queries is None:
        queries = pick_queries(q_pids, g_pids, q_cams, g_cams, num_queries)
    if len(queries) == 0:
        raise ValueError("No query to show (no query has a true match in another camera).")
    retrievals = rank_gallery(distances, q_pids, g_pids, q_cams, g_cams, queries, top_k)

    first = representative_frame(query_tracklets[retrievals[0].query], image_size)
    aspect = first.shape[1] / first.shape[0]
    cols, rows = 1 + int(top_k), len(retrievals)
    fig = new_figure(0.3 + cols * max(1.6 * aspect, 0.7), 0.3 + rows * 2.0)
    axes = np.asarray(fig.subplots(rows, cols, squeeze=False))
    for row, r in enumerate(retrievals):
        query = query_tracklets[r.query]
        ax = axes[row, 0]
        ax.imshow(as_image(representative_frame(query, image_size)))
        ax.set_title(f"query\ncam {query.camid + 1}\npid {query.original_pid}", fontsize=7)
        set_border(ax, QUERY_COLOUR)
        hide_ticks(ax)
        for col in range(1, cols):
            ax = axes[row, col]
            if col > len(r.gallery):
                ax.set_axis_off()
                continue
            item = gallery_tracklets[r.gallery[col - 1]]
            ax.imshow(as_image(representative_frame(item, image_size)))
            ax.set_title(f"rank {col}\ncam {item.camid + 1}\npid {item.original_pid}", fontsize=7)
            set_border(ax, MATCH_COLOUR if r.matches[col - 1] else MISMATCH_COLOUR)
            hide_ticks(ax)
    fig.tight_layout()
    fig.retrievals = retrievals
    return save_figure(fig, path)


def plot_model_retrieval(
    model,
    dataset,
    setup="usual",
    metric=DEFAULT_METRIC,
    queries=None,
    num_queries=4,
    top_k=5,
    path=None,
    **extract_kwargs,
):
    """`plot_retrieval_grid` of a model on a dataset's test split: features are extracted as
    the evaluation does (`evaluation_outputs`) and ranked under `setup`'s protocol.

    Args:
        model: an `ASANet` or any model `extract_features` accepts.
        dataset: a `VideoReIDDataset` (MARS, Duke, synthetic).
        setup: `"usual"` or `"mixing"`.
        metric, queries, num_queries, top_k, path: as `plot_retrieval_grid`.
        **extract_kwargs: `mode`, `seq_len`, `image_size`, `batch_size`, `num_workers`,
            `verbose` of `extract_features`.

    Returns:
        The `matplotlib.figure.Figure` of `plot_retrieval_grid`.

    Example:

    >>> fig = plot_model_retrieval(model, Mars(root), seq_len=4, image_size=(64, 32),
    ...                            path="retrieval.png")  # doctest: +SKIP
    """
    from keras_asanet.visualization.model_outputs import evaluation_outputs

    outputs = evaluation_outputs(model, dataset, setup=setup, **extract_kwargs)
    protocol = outputs.protocol
    qf, gf, *_ = protocol.split(outputs.features)
    return plot_retrieval_grid(
        protocol.query_tracklets,
        protocol.gallery_tracklets,
        query_features=qf,
        gallery_features=gf,
        metric=metric,
        queries=queries,
        num_queries=num_queries,
        top_k=top_k,
        path=path,
    )
