"""k-reciprocal re-ranking (Zhong et al., "Re-ranking Person Re-identification with
k-reciprocal Encoding", CVPR 2017), the post-processing torchreid and fast-reid offer as
`rerank`. numpy-only.

Why it exists: a query's true matches tend to be each other's nearest neighbours, while a
gallery item that looks like the query but is another person usually is not. The method
describes every item by the set of its k-reciprocal neighbours (among queries and gallery
together), weighted by a Gaussian of their distances, compares those sets by the Jaccard
distance, and mixes it with the original distance. It uses the test set's structure
(transductive), so papers report it separately ("w/ RR"); ASA-Net's paper does not use it.

The steps, for every item `i` of the `N = Q + G` queries and gallery items, on the original
distances `d` (squared Euclidean, or cosine distance, which is the squared Euclidean distance
of L2-normalised features halved) divided by their row's largest value:

1. `N(i, k)`: the `k + 1` nearest items, `i` itself included (ties: the lower index first).
   The k-reciprocal set `R(i, k)` keeps the `j` of `N(i, k)` with `i` in `N(j, k)`.
2. Expansion: `R*(i)` is `R(i, k1)` joined with every `R(c, round(k1 / 2))` (`c` in
   `R(i, k1)`) of which more than two thirds lie in `R(i, k1)`.
3. `V[i, j] = exp(-d[i, j])` on `R*(i)`, zero elsewhere, each row summing to 1; then local
   query expansion: row `i` becomes the mean of the rows of its `k2` nearest items.
4. Jaccard distance `d_J(i, j) = 1 - m / (2 - m)`, `m = sum_k min(V[i, k], V[j, k])` (the
   rows sum to 1, so `sum_k max = 2 - m`).
5. Final `(Q, G)` distance: `(1 - lambda) * d_J + lambda * d`.
"""

from __future__ import annotations

import numpy as np

from keras_asanet.evaluation.ranking import _check_dims, _check_features, pairwise_distance

#: The paper's settings for MARS-sized galleries (torchreid's and fast-reid's defaults too).
DEFAULT_K1 = 20
DEFAULT_K2 = 6
DEFAULT_LAMBDA = 0.3
#: Default working-memory limit (bytes): the method holds three `N x N` float32 arrays.
DEFAULT_MAX_MEMORY = 4 * 2**30
_ROW_BLOCK = 512


def rerank_settings(rerank):
    """The re-ranking settings an evaluation asks for: `None` for `False` / `None`, the
    defaults for `True`, or a dict of `k1`, `k2`, `lambda_value` with the missing ones
    filled in. Unknown keys and values out of range are refused (before any feature is
    extracted)."""
    if rerank is None or rerank is False:
        return None
    settings = {"k1": DEFAULT_K1, "k2": DEFAULT_K2, "lambda_value": DEFAULT_LAMBDA}
    if rerank is True:
        return settings
    if not isinstance(rerank, dict):
        raise ValueError(f"rerank must be a bool or a dict of {sorted(settings)}, got {rerank!r}.")
    unknown = sorted(set(rerank) - set(settings))
    if unknown:
        raise ValueError(f"Unknown re-ranking setting(s) {unknown}; known: {sorted(settings)}.")
    settings.update(rerank)
    _check_values(**settings)
    return settings


def describe(settings):
    """One line naming the re-ranking settings (for reports)."""
    return (
        f"k-reciprocal re-ranking (k1 {settings['k1']}, k2 {settings['k2']}, "
        f"lambda {settings['lambda_value']})"
    )


def _neighbours(d, k):
    """The `k + 1` nearest items of every row (stable: ties by index), `(N, k + 1)`."""
    out = np.empty((d.shape[0], k + 1), np.int64)
    for start in range(0, d.shape[0], _ROW_BLOCK):
        block = d[start : start + _ROW_BLOCK]
        out[start : start + _ROW_BLOCK] = np.argsort(block, axis=1, kind="stable")[:, : k + 1]
    return out


def _reciprocal(ranks, i, k):
    """`R(i, k)`: the items of `N(i, k)` that have `i` in their own `N(., k)`."""
    forward = ranks[i, : k + 1]
    backward = ranks[forward, : k + 1]
    return forward[(backward == i).any(axis=1)]


def _check_values(k1, k2, lambda_value):
    for name, k in (("k1", k1), ("k2", k2)):
        if isinstance(k, bool) or int(k) != k or k < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {k!r}.")
    if not 0.0 <= float(lambda_value) <= 1.0:
        raise ValueError(f"lambda_value must be in [0, 1], got {lambda_value!r}.")


def _check_settings(k1, k2, lambda_value, n):
    _check_values(k1, k2, lambda_value)
    if k1 >= n:
        raise ValueError(
            f"k1={k1} needs more than k1 items (queries + gallery); there are {n}. Use a "
            "smaller k1."
        )
    if k2 > n:
        raise ValueError(f"k2={k2} is larger than the {n} items (queries + gallery).")


def k_reciprocal_distance(
    query_features,
    gallery_features,
    k1=DEFAULT_K1,
    k2=DEFAULT_K2,
    lambda_value=DEFAULT_LAMBDA,
    metric="euclidean",
    max_memory=DEFAULT_MAX_MEMORY,
):
    """The re-ranked `(Q, G)` query x gallery distance matrix (see the module docstring).

    Args:
        query_features: `(Q, D)` finite array.
        gallery_features: `(G, D)` finite array.
        k1: size of the k-reciprocal neighbourhoods (default 20, the paper's).
        k2: neighbours averaged by the local query expansion (default 6; 1 turns it off).
        lambda_value: weight of the original distance in the result (default 0.3; 1 gives
            the original ranking back).
        metric: `"euclidean"` or `"cosine"`, the distance the neighbourhoods are built on
            (`keras_asanet.evaluation.pairwise_distance`).
        max_memory: bytes the three `(Q + G)^2` float32 arrays may take; larger is refused.

    Returns:
        `(Q, G)` float32 distances, to score with
        `keras_asanet.evaluation.evaluate_distance_matrix`.

    Raises:
        ValueError: bad features or settings, or a test set too large for `max_memory`.

    Example:

    >>> dist = k_reciprocal_distance(qf, gf, metric="cosine")             # doctest: +SKIP
    >>> result = evaluate_distance_matrix(dist, q_pids, g_pids, q_cams, g_cams)  # doctest: +SKIP
    """
    qf = _check_features("query_features", query_features)
    gf = _check_features("gallery_features", gallery_features)
    _check_dims(qf, gf)
    num_query, n = qf.shape[0], qf.shape[0] + gf.shape[0]
    _check_settings(k1, k2, lambda_value, n)
    need = 3 * n * n * 4
    if need > max_memory:
        raise ValueError(
            f"Re-ranking {num_query} queries and {n - num_query} gallery items needs about "
            f"{need / 2**30:.1f} GiB (three {n} x {n} float32 arrays), more than max_memory "
            f"({max_memory / 2**30:.1f} GiB); pass a larger max_memory."
        )
    features = np.concatenate([qf, gf]).astype(np.float32, copy=False)
    d = pairwise_distance(features, features, metric).astype(np.float32, copy=False)
    np.maximum(d, 0.0, out=d)
    d /= np.maximum(d.max(axis=1, keepdims=True), np.float32(1e-12))
    half = int(np.around(k1 / 2.0))
    ranks = _neighbours(d, max(k1, half, k2 - 1))
    v = np.zeros((n, n), np.float32)
    for i in range(n):
        core = _reciprocal(ranks, i, k1)
        expanded = core
        for c in core:
            candidate = _reciprocal(ranks, c, half)
            if len(np.intersect1d(candidate, core)) > 2.0 / 3.0 * len(candidate):
                expanded = np.append(expanded, candidate)
        expanded = np.unique(expanded)
        weights = np.exp(-d[i, expanded])
        v[i, expanded] = weights / weights.sum()
    if k2 > 1:
        v = np.stack([v[ranks[i, :k2]].mean(axis=0) for i in range(n)])
    jaccard = np.empty((num_query, n - num_query), np.float32)
    gallery_rows = v[num_query:]
    for i in range(num_query):
        support = np.flatnonzero(v[i])
        shared = np.minimum(gallery_rows[:, support], v[i, support]).sum(axis=1)
        jaccard[i] = 1.0 - shared / (2.0 - shared)
    return (1.0 - lambda_value) * jaccard + lambda_value * d[:num_query, num_query:]
