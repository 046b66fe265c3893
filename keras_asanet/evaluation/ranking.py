"""CMC, mAP and mINP under the Market-1501 / MARS protocol, computed in bounded-memory blocks.

This module is numpy-only (it never imports Keras), so it can score features produced by any
framework.

The protocol is the one torchreid's `eval_market1501`, fast-reid and AGW implement:

* for each query, gallery items with the query's identity **and** camera are removed (this also
  removes the query itself when it is part of the gallery, as in the MARS "mixing" setup);
* a query with no remaining gallery item of its identity is skipped and counted as invalid;
* CMC: `cmc[k-1]` is the fraction of valid queries whose first true match is within the top `k`;
* AP is the non-interpolated average precision `(1/m) * sum_i i / rank_i` over the `m` true
  matches at 1-based ranks `rank_1 < ... < rank_m`; mAP is its mean over valid queries;
* INP (Ye et al., "Deep Learning for Person Re-identification: A Survey and Outlook", AGW) is
  `m / rank_m`, the precision at the hardest true match; mINP is its mean over valid queries.

Ties. Gallery items at exactly the same distance from a query are ranked by gallery index (the
lower index first): the ranking is that of `numpy.argsort(distances, kind="stable")`. torchreid
uses numpy's default (unstable) quicksort, whose tie order is unspecified; the two agree
whenever no true match ties with another gallery item.

How it is fast. No per-query sort and no query x gallery matrix beyond one block is needed: only
the ranks of the true matches matter. For each query, every gallery item farther than its
hardest true match is irrelevant; the remaining candidates are compared with the true matches'
distances to count, for each true match, the kept gallery items ranked before it.

Determinism. Distances are computed by BLAS on a fixed grid of tiles that depends only on the
number of queries and gallery items (never on `max_memory`), so every distance is bit-identical
however the work is blocked, and the block-wise result equals the all-at-once result exactly.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

METRICS = ("euclidean", "cosine")

#: Largest tile of the distance grid (queries x gallery items). Big tiles keep BLAS efficient.
_MAX_QUERY_TILE = 2048
_MAX_GALLERY_TILE = 4096
#: Default working-memory budget of `evaluate_ranking` (bytes).
DEFAULT_MAX_MEMORY = 256 * 2**20
#: Positives per query above which candidates are sorted instead of compared pairwise.
_SORT_ABOVE_POSITIVES = 48
_COSINE_EPS = 1e-12


# ----------------------------------------------------------------------------------- results


@dataclasses.dataclass
class RankingResult:
    """The scores of one ranking evaluation.

    Attributes:
        cmc: `(L,)` float64, `cmc[k-1]` = fraction of valid queries matched within the top k;
            `L = min(max_rank, num_gallery)`.
        mAP: mean average precision over valid queries, in [0, 1].
        mINP: mean inverse negative penalty over valid queries, in [0, 1].
        num_valid_queries: queries with at least one true match left in their gallery.
        num_queries: all queries (valid + skipped).
        num_gallery: gallery items.
        metric: `"euclidean"` or `"cosine"`.
        max_rank: the requested CMC length.
        query_ap: `(num_queries,)` AP of each query, NaN for a skipped query.
        query_inp: `(num_queries,)` INP of each query, NaN for a skipped query.
        query_first_rank: `(num_queries,)` 1-based rank of each query's first true match
            (among kept gallery items), -1 for a skipped query.
        name: a label for the setup (e.g. `"mars/usual"`), or `None`.
    """

    cmc: np.ndarray
    mAP: float
    mINP: float
    num_valid_queries: int
    num_queries: int
    num_gallery: int
    metric: str
    max_rank: int
    query_ap: np.ndarray
    query_inp: np.ndarray
    query_first_rank: np.ndarray
    name: str | None = None

    @property
    def valid_mask(self) -> np.ndarray:
        """`(num_queries,)` bool: which queries were scored."""
        return self.query_first_rank > 0

    def rank(self, k: int) -> float:
        """CMC at rank `k` (1-based): the fraction of valid queries matched in the top `k`.

        A `k` beyond the CMC length returns its last value (every valid query has been matched
        by the end of its gallery).
        """
        k = int(k)
        if k < 1:
            raise ValueError(f"rank(k) needs k >= 1, got k={k}.")
        return float(self.cmc[min(k, len(self.cmc)) - 1])

    def to_dict(self) -> dict:
        """JSON-serialisable summary (fractions in [0, 1])."""
        out = {
            "name": self.name,
            "metric": self.metric,
            "num_queries": int(self.num_queries),
            "num_valid_queries": int(self.num_valid_queries),
            "num_gallery": int(self.num_gallery),
            "mAP": float(self.mAP),
            "mINP": float(self.mINP),
        }
        for k in (1, 5, 10, 20):
            out[f"rank{k}"] = self.rank(k)
        out["cmc"] = [float(c) for c in self.cmc]
        return out

    def __str__(self) -> str:
        title = f"{self.name}: " if self.name else ""
        lines = [
            f"{title}{self.num_valid_queries}/{self.num_queries} queries scored "
            f"against {self.num_gallery} gallery items ({self.metric} distance)",
            f"  mAP     : {100 * self.mAP:6.2f}%",
            f"  mINP    : {100 * self.mINP:6.2f}%",
        ]
        for k in (1, 5, 10, 20):
            lines.append(f"  Rank-{k:<3d}: {100 * self.rank(k):6.2f}%")
        return "\n".join(lines)


# ----------------------------------------------------------------------------- validation


def _check_features(name, x):
    x = np.asarray(x)
    if x.dtype.kind not in "fiu":
        raise ValueError(f"{name} must hold numbers, got dtype {x.dtype}.")
    if x.ndim != 2:
        raise ValueError(f"{name} must be 2-D (items, dim), got shape {x.shape}.")
    if x.shape[0] == 0:
        raise ValueError(f"{name} is empty (shape {x.shape}); at least one item is needed.")
    if x.shape[1] == 0:
        raise ValueError(f"{name} has feature dimension 0 (shape {x.shape}).")
    if x.dtype.kind == "f":
        step = max(1, (32 * 2**20) // max(1, x.shape[1] * x.itemsize))
        for start in range(0, x.shape[0], step):
            block = x[start : start + step]
            if not np.isfinite(block).all():
                bad = start + int(np.flatnonzero(~np.isfinite(block).all(axis=1))[0])
                raise ValueError(
                    f"{name} holds NaN or inf values (first at row {bad}); features must be finite."
                )
    return x


def _check_ids(name, ids, n, features_name):
    ids = np.asarray(ids)
    if ids.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {ids.shape}.")
    if len(ids) != n:
        raise ValueError(
            f"{name} has {len(ids)} entries but {features_name} has {n} rows; they must match."
        )
    if ids.dtype.kind in "iu":
        return ids.astype(np.int64, copy=False)
    if ids.dtype.kind == "f" and np.isfinite(ids).all() and np.array_equal(ids, np.round(ids)):
        return ids.astype(np.int64)
    example = ids[:3].tolist()
    raise ValueError(f"{name} must be integers, got dtype {ids.dtype} (e.g. {example}).")


def _check_metric(metric):
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {METRICS}, got {metric!r}.")


# ------------------------------------------------------------------------------ distances


def _tile_size(n, max_tile, multiple):
    num_tiles = max(1, math.ceil(n / max_tile))
    size = math.ceil(n / num_tiles)
    return int(math.ceil(size / multiple) * multiple)


class _DistanceGrid:
    """Query x gallery distances on a fixed tile grid (bit-identical however it is blocked)."""

    def __init__(self, query_features, gallery_features, metric):
        self.qf = query_features
        self.gf = gallery_features
        self.metric = metric
        self.dtype = np.result_type(query_features.dtype, gallery_features.dtype, np.float32)
        self.num_query, self.dim = query_features.shape
        self.num_gallery = gallery_features.shape[0]
        self.q_tile = _tile_size(self.num_query, _MAX_QUERY_TILE, 8)
        self.g_tile = _tile_size(self.num_gallery, _MAX_GALLERY_TILE, 16)
        self.num_q_tiles = math.ceil(self.num_query / self.q_tile)
        # Per-row squared norms of the gallery, computed tile by tile (grid-aligned).
        self.g_sqnorm = np.empty((self.num_gallery,), self.dtype)
        for start in range(0, self.num_gallery, self.g_tile):
            tile = self.gf[start : start + self.g_tile].astype(self.dtype, copy=False)
            self.g_sqnorm[start : start + len(tile)] = np.einsum("ij,ij->i", tile, tile)
        if not np.isfinite(self.g_sqnorm).all():
            raise ValueError(
                "gallery_features are too large: their squared norms overflow "
                f"{np.dtype(self.dtype).name}; rescale or normalise the features."
            )
        if metric == "cosine":
            self.g_norm = np.maximum(np.sqrt(self.g_sqnorm), self.dtype.type(_COSINE_EPS))
        self._q_cache = None

    def query_rows(self, tile_index):
        start = tile_index * self.q_tile
        return start, min(start + self.q_tile, self.num_query)

    def plan(self, max_memory):
        return _plan(self, max_memory)

    def buffer(self, block):
        return np.empty((self.q_tile, min(block, self.num_gallery)), self.dtype)

    def _query_tile(self, tile_index):
        if self._q_cache is not None and self._q_cache[0] == tile_index:
            return self._q_cache[1:]
        start, stop = self.query_rows(tile_index)
        q = np.zeros((self.q_tile, self.dim), self.dtype)
        q[: stop - start] = self.qf[start:stop]
        sqnorm = np.einsum("ij,ij->i", q, q)
        if not np.isfinite(sqnorm).all():
            raise ValueError(
                "query_features are too large: their squared norms overflow "
                f"{np.dtype(self.dtype).name}; rescale or normalise the features."
            )
        if self.metric == "euclidean":
            q *= -2.0  # exact (power of two): dot(-2q, g) == -2 * dot(q, g) bit for bit.
        else:
            q /= np.maximum(np.sqrt(sqnorm), self.dtype.type(_COSINE_EPS))[:, None]
        self._q_cache = (tile_index, q, sqnorm)
        return q, sqnorm

    def compute(self, tile_index, g_start, g_stop, out=None):
        """Distances of query tile `tile_index` (all `q_tile` rows, padded rows included) to
        gallery items `[g_start, g_stop)`; `g_start` must lie on the tile grid."""
        assert g_start % self.g_tile == 0
        q, q_sqnorm = self._query_tile(tile_index)
        width = g_stop - g_start
        if out is None:
            out = np.empty((self.q_tile, width), self.dtype)
        out = out[:, :width]
        for start in range(g_start, g_stop, self.g_tile):
            stop = min(start + self.g_tile, self.num_gallery)
            g = np.ascontiguousarray(self.gf[start:stop], dtype=self.dtype)
            if self.metric == "cosine":
                g = g / self.g_norm[start:stop, None]
            target = out[:, start - g_start : stop - g_start]
            if stop - start < self.g_tile:  # same BLAS call shape for every tile
                padded = np.zeros((self.g_tile, self.dim), self.dtype)
                padded[: stop - start] = g
                target[...] = (q @ padded.T)[:, : stop - start]
            else:
                np.matmul(q, g.T, out=target)
        # Finish in row chunks that stay in cache between the two additions.
        step = max(1, 2**18 // max(1, width))
        for r in range(0, self.q_tile, step):
            rows = out[r : r + step]
            if self.metric == "euclidean":
                # ||q||^2 + ||g||^2 - 2 q.g, added in this fixed order.
                rows += self.g_sqnorm[None, g_start:g_stop]
                rows += q_sqnorm[r : r + step, None]
            else:
                np.subtract(1.0, rows, out=rows)
        return out


def pairwise_distance(query_features, gallery_features, metric="euclidean"):
    """The full query x gallery distance matrix, exactly as `evaluate_ranking` sees it.

    Euclidean distances are squared (`||q||^2 + ||g||^2 - 2 q.g`, as torchreid and AGW
    compute them; the ranking is the same as with the square root). Cosine distance is
    `1 - q.g / (||q|| ||g||)`. Computed in float32 (float64 if either input is float64).

    Args:
        query_features: `(Q, D)` array.
        gallery_features: `(G, D)` array.
        metric: `"euclidean"` or `"cosine"`.

    Returns:
        `(Q, G)` array. Memory grows as `Q * G`: use `evaluate_ranking` for large galleries.
    """
    _check_metric(metric)
    qf = _check_features("query_features", query_features)
    gf = _check_features("gallery_features", gallery_features)
    _check_dims(qf, gf)
    grid = _DistanceGrid(qf, gf, metric)
    out = np.empty((grid.num_query, grid.num_gallery), grid.dtype)
    for t in range(grid.num_q_tiles):
        start, stop = grid.query_rows(t)
        out[start:stop] = grid.compute(t, 0, grid.num_gallery)[: stop - start]
    return out


def _check_dims(qf, gf):
    if qf.shape[1] != gf.shape[1]:
        raise ValueError(
            f"query_features have dimension {qf.shape[1]} but gallery_features have "
            f"dimension {gf.shape[1]}; they must be equal."
        )


# ------------------------------------------------------------------------- match structure


def _match_structure(q_pids, q_camids, g_pids, g_camids):
    """For every query, the gallery indices of its true matches (same pid, other camera) and
    of its removed items (same pid, same camera), as CSR arrays sorted by gallery index."""
    order = np.argsort(g_pids, kind="stable")
    sorted_pids = g_pids[order]
    lo = np.searchsorted(sorted_pids, q_pids, side="left")
    hi = np.searchsorted(sorted_pids, q_pids, side="right")
    lengths = hi - lo
    owner = np.repeat(np.arange(len(q_pids)), lengths)
    offsets = np.arange(int(lengths.sum())) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    members = order[np.repeat(lo, lengths) + offsets]  # ascending within each query
    same_cam = g_camids[members] == q_camids[owner]

    def csr(select):
        idx = members[select]
        ptr = np.zeros(len(q_pids) + 1, np.int64)
        np.cumsum(np.bincount(owner[select], minlength=len(q_pids)), out=ptr[1:])
        return ptr, idx

    return csr(~same_cam), csr(same_cam)


# --------------------------------------------------------------------------------- ranking


def _plan(grid, max_memory):
    """Gallery columns per block: all of them (one pass) or a multiple of the tile width."""
    itemsize = np.dtype(grid.dtype).itemsize
    # distances + the candidate mask, per element
    per_column = grid.q_tile * (itemsize + 1)
    if per_column * grid.num_gallery <= max_memory:
        return grid.num_gallery
    tiles = max(1, int(max_memory // (per_column * grid.g_tile)))
    return tiles * grid.g_tile


class _DistanceMatrix:
    """A precomputed `(Q, G)` distance matrix (array or memmap), served in row blocks."""

    def __init__(self, distmat):
        self.matrix = distmat
        self.dtype = distmat.dtype
        self.num_query, self.num_gallery = distmat.shape
        self.q_tile = min(self.num_query, _MAX_QUERY_TILE)
        self.g_tile = self.num_gallery
        self.num_q_tiles = math.ceil(self.num_query / self.q_tile)

    def query_rows(self, tile_index):
        start = tile_index * self.q_tile
        return start, min(start + self.q_tile, self.num_query)

    def plan(self, max_memory):
        return self.num_gallery  # the rows are already in memory: one pass

    def buffer(self, block):
        return None

    def compute(self, tile_index, g_start, g_stop, out=None):
        start, stop = self.query_rows(tile_index)
        return np.asarray(self.matrix[start:stop, g_start:g_stop])


def _count_true(flags):
    """Row sums of a 2-D bool array (faster than `count_nonzero(axis=1)`)."""
    return flags.view(np.uint8).sum(axis=1, dtype=np.int64)


def _count_before(dist, col0, q0, pos_ptr, pos_idx, pos_val, thresh, counts):
    """Adds to `counts` (aligned with `pos_idx`), for each true match, the gallery items in
    columns `[col0, col0 + width)` ranked before it (smaller distance, or equal distance and
    lower index). Row `r` of `dist` belongs to query `q0 + r`; `thresh[r]` is that query's
    largest true-match distance (-inf for rows without a valid query): farther items are
    never ranked before a true match."""
    width = dist.shape[1]
    for r in np.flatnonzero(np.isfinite(thresh)):
        row = dist[r]
        cand = row[row <= thresh[r]]
        if cand.size == 0:
            continue
        q = q0 + r
        a, b = pos_ptr[q], pos_ptr[q + 1]
        pv = pos_val[a:b]
        pidx = pos_idx[a:b]
        if b - a > _SORT_ABOVE_POSITIVES:
            cand = np.sort(cand)
            less = np.searchsorted(cand, pv, side="left")
            less_eq = np.searchsorted(cand, pv, side="right")
        else:
            less = _count_true(np.less(cand[None, :], pv[:, None]))
            less_eq = _count_true(np.less_equal(cand[None, :], pv[:, None]))
        itself = (pidx >= col0) & (pidx < col0 + width)
        tied = np.flatnonzero(less_eq - less - itself > 0)
        for i in tied:  # rare: resolve equal distances by gallery index
            stop = min(int(pidx[i]), col0 + width) - col0
            if stop > 0:
                less[i] += np.count_nonzero(row[:stop] == pv[i])
        counts[a:b] += less


def _gather(dist, col0, q_start, q_stop, ptr, idx, values):
    """Copies the distances of (query, gallery index) pairs of CSR `ptr/idx` for queries
    `[q_start, q_stop)` whose gallery index falls in the block into `values`."""
    a, b = ptr[q_start], ptr[q_stop]
    if a == b:
        return
    owner = np.repeat(np.arange(q_start, q_stop), np.diff(ptr[q_start : q_stop + 1]))
    cols = idx[a:b]
    inside = (cols >= col0) & (cols < col0 + dist.shape[1])
    values[a:b][inside] = dist[owner[inside] - q_start, cols[inside] - col0]


def _rank_matches(grid, q_pids, q_camids, g_pids, g_camids, max_memory):
    """0-based ranks, among kept gallery items, of every query's true matches.

    `grid` serves distance blocks: a `_DistanceGrid` (from features) or a `_DistanceMatrix`.

    Returns `(pos_ptr, ranks)`: CSR over queries, ranks sorted ascending within each query.
    """
    (pos_ptr, pos_idx), (rem_ptr, rem_idx) = _match_structure(q_pids, q_camids, g_pids, g_camids)
    pos_val = np.empty(len(pos_idx), grid.dtype)
    rem_val = np.empty(len(rem_idx), grid.dtype)
    counts = np.zeros(len(pos_idx), np.int64)
    num_pos = np.diff(pos_ptr)
    block = grid.plan(max_memory)
    one_pass = block >= grid.num_gallery
    buffer = grid.buffer(block)

    for t in range(grid.num_q_tiles):
        q0, q1 = grid.query_rows(t)
        valid_rows = np.flatnonzero(num_pos[q0:q1] > 0)
        if len(valid_rows) == 0:
            continue
        blocks = [(c, min(c + block, grid.num_gallery)) for c in range(0, grid.num_gallery, block)]
        # Pass 1 (a second pass only when the rows do not fit at once): the distances of the
        # true matches and removed items, from the blocks that hold any of them.
        touched = np.unique(
            np.concatenate([pos_idx[pos_ptr[q0] : pos_ptr[q1]], rem_idx[rem_ptr[q0] : rem_ptr[q1]]])
            // block
        )
        for c0, c1 in blocks[0:1] if one_pass else [blocks[i] for i in touched]:
            dist = grid.compute(t, c0, c1, out=buffer)
            _gather(dist, c0, q0, q1, pos_ptr, pos_idx, pos_val)
            _gather(dist, c0, q0, q1, rem_ptr, rem_idx, rem_val)
        thresh = np.full((q1 - q0,), -np.inf, grid.dtype)
        thresh[valid_rows] = np.maximum.reduceat(pos_val[: pos_ptr[q1]], pos_ptr[q0 + valid_rows])
        # Pass 2: count the gallery items ranked before each true match.
        for c0, c1 in blocks:
            if not one_pass:
                dist = grid.compute(t, c0, c1, out=buffer)
            _count_before(dist, c0, q0, pos_ptr, pos_idx, pos_val, thresh, counts)

    # Removed items (same pid and camera) ranked before a true match do not count.
    pos_owner = np.repeat(np.arange(len(q_pids)), num_pos)
    rem_per_pos = np.diff(rem_ptr)[pos_owner]
    if rem_per_pos.sum() > 0:
        pair_pos = np.repeat(np.arange(len(pos_idx)), rem_per_pos)
        pair_rem = np.repeat(rem_ptr[pos_owner], rem_per_pos) + (
            np.arange(int(rem_per_pos.sum()))
            - np.repeat(np.cumsum(rem_per_pos) - rem_per_pos, rem_per_pos)
        )
        pv, rv = pos_val[pair_pos], rem_val[pair_rem]
        before = (rv < pv) | ((rv == pv) & (rem_idx[pair_rem] < pos_idx[pair_pos]))
        counts -= np.bincount(pair_pos, weights=before, minlength=len(pos_idx)).astype(np.int64)
    # Sort the ranks inside each query (they are distinct positions of the kept list).
    key = pos_owner * np.int64(grid.num_gallery + 1) + counts
    ranks = np.sort(key) % np.int64(grid.num_gallery + 1)
    return pos_ptr, ranks


def _scores(pos_ptr, ranks, num_gallery, max_rank):
    """Per-query AP, INP and first-match rank from the true matches' sorted 0-based ranks."""
    num_queries = len(pos_ptr) - 1
    num_pos = np.diff(pos_ptr)
    valid = num_pos > 0
    owner = np.repeat(np.arange(num_queries), num_pos)
    ordinal = np.arange(len(ranks)) - pos_ptr[owner] + 1  # i = 1..m inside each query
    precision = ordinal / (ranks + 1.0)
    query_ap = np.full(num_queries, np.nan)
    query_inp = np.full(num_queries, np.nan)
    first = np.full(num_queries, -1, np.int64)
    if valid.any():
        starts = pos_ptr[:-1][valid]
        query_ap[valid] = np.add.reduceat(precision, starts) / num_pos[valid]
        last = pos_ptr[1:][valid] - 1
        query_inp[valid] = num_pos[valid] / (ranks[last] + 1.0)
        first[valid] = ranks[starts] + 1
    length = min(int(max_rank), int(num_gallery))
    hits = np.bincount(np.minimum(first[valid] - 1, length), minlength=length + 1)[:length]
    num_valid = int(valid.sum())
    cmc = np.cumsum(hits) / max(num_valid, 1)
    return cmc, query_ap, query_inp, first, num_valid


def evaluate_ranking(
    query_features,
    gallery_features,
    query_pids,
    gallery_pids,
    query_camids,
    gallery_camids,
    metric="euclidean",
    max_rank=50,
    max_memory=DEFAULT_MAX_MEMORY,
    name=None,
):
    """Scores a re-identification ranking: CMC, mAP and mINP (Market-1501 / MARS protocol).

    Why it exists: published video re-ID numbers (MARS, DukeMTMC-VideoReID) come from
    torchreid / fast-reid / AGW's evaluation; this computes exactly the same quantities, with
    deterministic tie-breaking, in bounded memory and without sorting each gallery row. See the
    module docstring for the protocol and the tie rule.

    Args:
        query_features: `(Q, D)` finite numbers (one feature per query tracklet).
        gallery_features: `(G, D)` finite numbers, the same `D`.
        query_pids, gallery_pids: integer identities (`(Q,)`, `(G,)`); 0 marks a distractor,
            which is never a true match of a real identity.
        query_camids, gallery_camids: integer cameras (`(Q,)`, `(G,)`).
        metric: `"euclidean"` (squared Euclidean, as torchreid) or `"cosine"`.
        max_rank: length of the CMC curve (cut to the gallery size).
        max_memory: working-memory budget in bytes for the distance blocks. At least one tile
            of the fixed grid (<= 2048 queries x 4096 gallery items) is always held. When
            the distances of one query tile to the whole gallery do not fit, the gallery is
            processed in column blocks in two passes (twice the matrix products). `None`:
            no limit (every query tile against the whole gallery at once).
        name: optional label of the setup, carried into the result (e.g. `"mars/usual"`).

    Returns:
        A `RankingResult` (`cmc`, `mAP`, `mINP`, `num_valid_queries`, `rank(k)`, `to_dict()`).

    Raises:
        ValueError: mismatched lengths, NaN/inf features, no query, empty gallery, different
            feature dimensions, non-integer ids, an unknown metric, or no valid query.

    Example:

    >>> import numpy as np
    >>> q = np.array([[0.0], [10.0]]); g = np.array([[0.1], [9.0], [0.3]])
    >>> r = evaluate_ranking(q, g, [1, 2], [1, 2, 3], [0, 0], [1, 1, 1])
    >>> r.rank(1), r.mAP
    (1.0, 1.0)

    Reference: Zheng et al., "Scalable Person Re-identification: A Benchmark" (Market-1501
    protocol); Zheng et al., "MARS" (ECCV 2016); Ye et al., TPAMI 2021 (mINP). The ASA-Net
    paper (§IV-A) reports CMC and mAP under this protocol.
    """
    _check_metric(metric)
    qf = _check_features("query_features", query_features)
    gf = _check_features("gallery_features", gallery_features)
    _check_dims(qf, gf)
    q_pids = _check_ids("query_pids", query_pids, qf.shape[0], "query_features")
    g_pids = _check_ids("gallery_pids", gallery_pids, gf.shape[0], "gallery_features")
    q_camids = _check_ids("query_camids", query_camids, qf.shape[0], "query_features")
    g_camids = _check_ids("gallery_camids", gallery_camids, gf.shape[0], "gallery_features")
    if int(max_rank) < 1:
        raise ValueError(f"max_rank must be >= 1, got {max_rank}.")
    if max_memory is None:
        max_memory = float("inf")
    elif not max_memory > 0:
        raise ValueError(f"max_memory must be a positive number of bytes, got {max_memory}.")
    result = _evaluate(qf, gf, q_pids, g_pids, q_camids, g_camids, metric, max_rank, max_memory)
    _require_valid(result)
    result.name = name
    return result


def evaluate_distance_matrix(
    distmat,
    query_pids,
    gallery_pids,
    query_camids,
    gallery_camids,
    max_rank=50,
    name=None,
):
    """Scores a precomputed `(Q, G)` distance matrix (e.g. after k-reciprocal re-ranking)
    under the same protocol and tie rule as `evaluate_ranking`.

    Args:
        distmat: `(Q, G)` finite distances (smaller = more similar); a `numpy.memmap` works
            and is read one row block at a time.
        query_pids, gallery_pids, query_camids, gallery_camids: integer ids, as in
            `evaluate_ranking`.
        max_rank: CMC length (cut to `G`).
        name: optional label carried into the result.

    Returns:
        A `RankingResult` (`metric` is `"precomputed"`).

    Raises:
        ValueError: as `evaluate_ranking`, naming `distmat` for a bad matrix.
    """
    d = _check_features("distmat", distmat)
    if d.dtype.kind in "iu":
        d = d.astype(np.float64)
    q_pids = _check_ids("query_pids", query_pids, d.shape[0], "distmat")
    q_camids = _check_ids("query_camids", query_camids, d.shape[0], "distmat")
    g_pids = _check_ids("gallery_pids", gallery_pids, d.shape[1], "distmat (columns)")
    g_camids = _check_ids("gallery_camids", gallery_camids, d.shape[1], "distmat (columns)")
    if int(max_rank) < 1:
        raise ValueError(f"max_rank must be >= 1, got {max_rank}.")
    result = _score(_DistanceMatrix(d), q_pids, g_pids, q_camids, g_camids, max_rank, None)
    result.metric = "precomputed"
    _require_valid(result)
    result.name = name
    return result


def _require_valid(result):
    if result.num_valid_queries == 0:
        raise ValueError(
            f"None of the {result.num_queries} queries has a true match in the gallery (same "
            "pid, different camera); check query_pids/gallery_pids and the camera ids."
        )


def _evaluate(qf, gf, q_pids, g_pids, q_camids, g_camids, metric, max_rank, max_memory):
    """`evaluate_ranking` without validation; allows zero valid queries."""
    grid = _DistanceGrid(qf, gf, metric)
    result = _score(grid, q_pids, g_pids, q_camids, g_camids, max_rank, max_memory)
    result.metric = metric
    return result


def _score(grid, q_pids, g_pids, q_camids, g_camids, max_rank, max_memory):
    pos_ptr, ranks = _rank_matches(grid, q_pids, q_camids, g_pids, g_camids, max_memory)
    cmc, ap, inp, first, num_valid = _scores(pos_ptr, ranks, len(g_pids), max_rank)
    return RankingResult(
        cmc=cmc,
        mAP=float(np.nanmean(ap)) if num_valid else float("nan"),
        mINP=float(np.nanmean(inp)) if num_valid else float("nan"),
        num_valid_queries=num_valid,
        num_queries=len(q_pids),
        num_gallery=len(g_pids),
        metric="",
        max_rank=int(max_rank),
        query_ap=ap,
        query_inp=inp,
        query_first_rank=first,
    )
