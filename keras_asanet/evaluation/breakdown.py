"""Where a model fails: rank-1 / mAP split by the query's quality flags, pose and motion, and
by camera pair (as the original MARS MATLAB evaluation prints). numpy-only."""

from __future__ import annotations

import dataclasses

import numpy as np

from keras_asanet.evaluation import ranking


def _stats(result, select):
    valid = select & result.valid_mask
    n_valid = int(valid.sum())
    return {
        "num_queries": int(select.sum()),
        "num_valid_queries": n_valid,
        "rank1": float(np.mean(result.query_first_rank[valid] == 1)) if n_valid else None,
        "mAP": float(np.mean(result.query_ap[valid])) if n_valid else None,
    }


def _fmt(value):
    return "   -  " if value is None else f"{100 * value:6.2f}"


@dataclasses.dataclass
class QueryBreakdown:
    """Rank-1 and mAP of query subsets.

    Attributes:
        groups: `{category: {value: stats}}` with categories `"quality"` (keys
            `"<flag>=1"` / `"<flag>=0"`), `"pose"`, `"motion"` (class names) and `"all"`;
            `stats` = `{"num_queries", "num_valid_queries", "rank1", "mAP"}` (`rank1`/`mAP`
            are `None` for a subset without a valid query). Queries without an annotation
            row are counted under `"unannotated"` in `"all"`.
    """

    groups: dict

    def to_dict(self) -> dict:
        return self.groups

    def __str__(self) -> str:
        lines = ["  subset                        | queries | scored | rank-1 |   mAP"]
        for category, entries in self.groups.items():
            for key, s in entries.items():
                label = f"{category}:{key}"
                lines.append(
                    f"  {label:<29} | {s['num_queries']:7d} | {s['num_valid_queries']:6d} | "
                    f"{_fmt(s['rank1'])} | {_fmt(s['mAP'])}"
                )
        return "\n".join(lines)


def breakdown_by_query(result, query_tracklets, schema=None) -> QueryBreakdown:
    """Splits a ranking result by the queries' annotation: quality flags, pose and motion.

    Args:
        result: the `RankingResult` of these queries (its per-query arrays are used).
        query_tracklets: the queries' `Tracklet`s, in the order they were ranked.
        schema: optional `AttributeSchema` to name pose / motion classes (else `class_<k>`).

    Returns:
        A `QueryBreakdown`.
    """
    query_tracklets = list(query_tracklets)
    if len(query_tracklets) != result.num_queries:
        raise ValueError(
            f"query_tracklets has {len(query_tracklets)} entries but the result scored "
            f"{result.num_queries} queries."
        )
    n = len(query_tracklets)
    annotated = np.array(
        [t.quality is not None or t.attributes is not None for t in query_tracklets]
    )
    groups = {
        "all": {
            "all": _stats(result, np.ones(n, bool)),
            "annotated": _stats(result, annotated),
            "unannotated": _stats(result, ~annotated),
        }
    }
    flags = sorted({k for t in query_tracklets if t.quality for k in t.quality})
    if flags:
        groups["quality"] = {}
        for flag in flags:
            values = np.array([(t.quality or {}).get(flag, -1) for t in query_tracklets])
            for v in (1, 0):
                groups["quality"][f"{flag}={v}"] = _stats(result, values == v)
    for name in ("pose", "motion"):
        values = np.array(
            [
                -1 if t.attributes is None or t.attributes.get(name) is None else t.attributes[name]
                for t in query_tracklets
            ]
        )
        classes = sorted(set(values[values >= 0].tolist()))
        if not classes:
            continue
        names = schema[name].class_names if schema is not None and name in schema else None
        groups[name] = {
            (names[c] if names and c < len(names) else f"class_{c}"): _stats(result, values == c)
            for c in classes
        }
    return QueryBreakdown(groups)


@dataclasses.dataclass
class CameraPairBreakdown:
    """Rank-1 / mAP for each (query camera, gallery camera) pair.

    Attributes:
        query_cameras, gallery_cameras: the camera ids of the rows / columns.
        rank1, mAP: `(len(query_cameras), len(gallery_cameras))` float arrays, NaN where no
            query of that camera has a true match in that gallery camera (e.g. the diagonal,
            where the same-camera rule removes every true match).
        num_valid_queries: int array of the same shape.
    """

    query_cameras: np.ndarray
    gallery_cameras: np.ndarray
    rank1: np.ndarray
    mAP: np.ndarray
    num_valid_queries: np.ndarray

    def to_dict(self) -> dict:
        def clean(m):
            return [[None if np.isnan(v) else float(v) for v in row] for row in m]

        return {
            "query_cameras": self.query_cameras.tolist(),
            "gallery_cameras": self.gallery_cameras.tolist(),
            "rank1": clean(self.rank1),
            "mAP": clean(self.mAP),
            "num_valid_queries": self.num_valid_queries.tolist(),
        }

    def __str__(self) -> str:
        head = "  q\\g " + "".join(f"  cam{c:<4d}" for c in self.gallery_cameras)
        lines = ["rank-1 / mAP (%) per query camera (rows) and gallery camera (columns)", head]
        for i, qc in enumerate(self.query_cameras):
            cells = []
            for j in range(len(self.gallery_cameras)):
                r, m = self.rank1[i, j], self.mAP[i, j]
                cells.append("     -   " if np.isnan(r) else f" {100 * r:3.0f}/{100 * m:3.0f} ")
            lines.append(f"  cam{qc:<2d}" + "".join(cells))
        return "\n".join(lines)


def camera_pair_breakdown(
    query_features,
    gallery_features,
    query_pids,
    gallery_pids,
    query_camids,
    gallery_camids,
    metric="euclidean",
    max_memory=ranking.DEFAULT_MAX_MEMORY,
) -> CameraPairBreakdown:
    """The camera-pair matrix of the original MARS evaluation: each query is ranked against
    the gallery items of one camera at a time (same protocol as `evaluate_ranking`). The
    total work equals one full evaluation.

    Args: as `evaluate_ranking`.

    Returns:
        A `CameraPairBreakdown`.
    """
    ranking._check_metric(metric)
    qf = ranking._check_features("query_features", query_features)
    gf = ranking._check_features("gallery_features", gallery_features)
    ranking._check_dims(qf, gf)
    q_pids = ranking._check_ids("query_pids", query_pids, qf.shape[0], "query_features")
    g_pids = ranking._check_ids("gallery_pids", gallery_pids, gf.shape[0], "gallery_features")
    q_cams = ranking._check_ids("query_camids", query_camids, qf.shape[0], "query_features")
    g_cams = ranking._check_ids("gallery_camids", gallery_camids, gf.shape[0], "gallery_features")
    query_cameras = np.unique(q_cams)
    gallery_cameras = np.unique(g_cams)
    shape = (len(query_cameras), len(gallery_cameras))
    rank1, mean_ap = np.full(shape, np.nan), np.full(shape, np.nan)
    valid = np.zeros(shape, np.int64)
    for j, cam in enumerate(gallery_cameras):
        sel = g_cams == cam
        res = ranking._evaluate(
            qf, gf[sel], q_pids, g_pids[sel], q_cams, g_cams[sel], metric, 1, max_memory
        )
        for i, qcam in enumerate(query_cameras):
            rows = (q_cams == qcam) & res.valid_mask
            valid[i, j] = int(rows.sum())
            if valid[i, j]:
                rank1[i, j] = float(np.mean(res.query_first_rank[rows] == 1))
                mean_ap[i, j] = float(np.mean(res.query_ap[rows]))
    return CameraPairBreakdown(query_cameras, gallery_cameras, rank1, mean_ap, valid)
