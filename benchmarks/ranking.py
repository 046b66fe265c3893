"""Speed and memory of `evaluate_ranking` against torchreid's evaluators and plain numpy.

`scripts/benchmark.py ranking` calls `run()` and prints its dict as one JSON line, then
`table()`'s markdown. numpy (and torch for torchreid's distances) only.

Two problems are measured:

* MARS-sized: 1,980 queries x 9,330 gallery items, d = 1,024, random features with a MARS-like
  identity / camera structure (identities seen by 1-6 cameras, one query per identity and
  camera, 1+ gallery tracklets per identity and camera, pid-0 distractors filling the
  gallery, about 7% of queries without a cross-camera match). Features are identity centres
  plus camera bias plus tracklet noise, so that the ranking is that of a mid-quality model.
  Everything is timed end to end from the features, in the same run:
  - `evaluate_ranking` (this library);
  - torchreid's Cython evaluator `evaluate_cy` after torchreid's own distance matrix
    (`compute_distance_matrix`, torch), built from a checkout of KaiyangZhou/deep-person-reid
    given as `torchreid_src` (its `rank_cy.pyx` is not in the sdist on the package index);
    "not measured" without one;
  - torchreid's Python evaluator `eval_market1501` (from the same checkout), one run;
  - `reference_evaluate_ranking`: full distance matrix, stable `argsort` of every row, a
    vectorised per-query loop (the naive full-argsort numpy loop), and the per-rank Python
    loop most public code runs (`community_style_rank_distances`).
  The scores must agree: every evaluator is also run on one shared distance matrix
  (`pairwise_distance`), and the differences of mAP / CMC are reported (torchreid's Cython
  evaluator accumulates in float32, so it agrees to ~1e-7 only; the float64 ones to 1e-12).
  The same comparison is made on structure-free features (an untrained model), the worst
  case of the candidate pruning.
* large gallery: the same queries against 1,000,000 gallery items (the MARS-like gallery plus
  pid-0 distractors) at d = 256, run with the default `max_memory`. Its peak memory is reported
  two ways: `tracemalloc` (every numpy allocation made during the call) and the growth of the
  process's peak resident set size (`ru_maxrss`) over the call, plus the process peak itself.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import tracemalloc
import warnings

import numpy as np

from keras_asanet.evaluation.ranking import (
    evaluate_distance_matrix,
    evaluate_ranking,
    pairwise_distance,
)


def reference_evaluate_ranking(
    query_features,
    gallery_features,
    query_pids,
    gallery_pids,
    query_camids,
    gallery_camids,
    metric="euclidean",
    max_rank=50,
):
    """The straightforward evaluation: full distance matrix, stable argsort per row, a loop.

    Uses `pairwise_distance` so that both implementations rank the very same distances.

    Returns:
        dict with `cmc` (array), `mAP`, `mINP`, `num_valid_queries`.
    """
    dist = pairwise_distance(query_features, gallery_features, metric)
    return reference_rank_distances(
        dist, query_pids, gallery_pids, query_camids, gallery_camids, max_rank
    )


def reference_rank_distances(
    dist, query_pids, gallery_pids, query_camids, gallery_camids, max_rank=50
):
    """Full stable `argsort` of every row of `dist`, then a vectorised per-query loop."""
    q_pids, g_pids = np.asarray(query_pids), np.asarray(gallery_pids)
    q_cams, g_cams = np.asarray(query_camids), np.asarray(gallery_camids)
    order = np.argsort(dist, axis=1, kind="stable")
    length = min(max_rank, dist.shape[1])
    cmc_sum = np.zeros(length)
    aps, inps = [], []
    for i in range(dist.shape[0]):
        ranked_pids = g_pids[order[i]]
        ranked_cams = g_cams[order[i]]
        keep = ~((ranked_pids == q_pids[i]) & (ranked_cams == q_cams[i]))
        matches = ranked_pids[keep] == q_pids[i]
        if not matches.any():
            continue
        hits = np.cumsum(matches)
        positions = np.flatnonzero(matches)
        cmc = (hits >= 1).astype(np.float64)[:length]
        cmc_sum[: len(cmc)] += cmc
        cmc_sum[len(cmc) :] += 1.0
        aps.append(np.mean(hits[positions] / (positions + 1.0)))
        inps.append(hits[positions[-1]] / (positions[-1] + 1.0))
    n = len(aps)
    return {
        "cmc": cmc_sum / max(n, 1),
        "mAP": float(np.mean(aps)) if n else float("nan"),
        "mINP": float(np.mean(inps)) if n else float("nan"),
        "num_valid_queries": n,
    }


def community_style_rank_distances(
    dist, query_pids, gallery_pids, query_camids, gallery_camids, max_rank=50
):
    """The loop most video re-ID code runs today (the torchreid / AGW `eval_func` shape):
    numpy's default (unstable) argsort, a match matrix, and AP by a per-rank Python
    comprehension. Written here as a timing baseline; equal to the others without ties."""
    q_pids, g_pids = np.asarray(query_pids), np.asarray(gallery_pids)
    q_cams, g_cams = np.asarray(query_camids), np.asarray(gallery_camids)
    indices = np.argsort(dist, axis=1)
    matches = (g_pids[indices] == q_pids[:, None]).astype(np.int32)
    all_cmc, all_ap, all_inp = [], [], []
    length = min(max_rank, dist.shape[1])
    for i in range(dist.shape[0]):
        order = indices[i]
        keep = ~((g_pids[order] == q_pids[i]) & (g_cams[order] == q_cams[i]))
        raw = matches[i][keep]
        if not raw.any():
            continue
        cmc = raw.cumsum()
        last = np.where(raw == 1)[0].max()
        all_inp.append(cmc[last] / (last + 1.0))
        cmc[cmc > 1] = 1
        all_cmc.append(np.pad(cmc[:length], (0, max(0, length - len(cmc))), constant_values=1))
        precisions = [x / (k + 1.0) for k, x in enumerate(raw.cumsum())]
        all_ap.append(float((np.asarray(precisions) * raw).sum() / raw.sum()))
    return {
        "cmc": np.asarray(all_cmc, np.float64).mean(0),
        "mAP": float(np.mean(all_ap)),
        "mINP": float(np.mean(all_inp)),
        "num_valid_queries": len(all_ap),
    }


def mars_like_structure(num_query=1980, num_gallery=9330, num_cameras=6, seed=0):
    """Identity / camera ids shaped like MARS's test split.

    Returns:
        `(query_pids, query_camids, gallery_pids, gallery_camids)` int64 arrays; real
        identities are `1..N`, distractors are 0.
    """
    rng = np.random.default_rng(seed)
    q_pids, q_cams, g_pids, g_cams = [], [], [], []
    pid = 0
    camera_counts = np.arange(1, num_cameras + 1)
    weights = np.array([0.2, 0.22, 0.2, 0.17, 0.12, 0.09])[:num_cameras]
    weights = weights / weights.sum()
    while len(q_pids) < num_query:
        pid += 1
        cams = rng.choice(num_cameras, rng.choice(camera_counts, p=weights), replace=False)
        for cam in cams:
            if len(q_pids) == num_query:
                break
            q_pids.append(pid)
            q_cams.append(cam)
            n = 1 + rng.poisson(1.5)
            g_pids += [pid] * n
            g_cams += [int(cam)] * n
    g_pids, g_cams = np.array(g_pids[:num_gallery]), np.array(g_cams[:num_gallery])
    extra = num_gallery - len(g_pids)
    g_pids = np.concatenate([g_pids, np.zeros(extra, np.int64)])
    g_cams = np.concatenate([g_cams, rng.integers(0, num_cameras, extra)])
    perm = rng.permutation(num_gallery)
    return (
        np.array(q_pids, np.int64),
        np.array(q_cams, np.int64),
        g_pids[perm].astype(np.int64),
        g_cams[perm].astype(np.int64),
    )


def structured_features(pids, camids, dim, seed, noise=None, camera_bias=0.5, start=0):
    """float32 features: identity centre + camera bias + per-tracklet noise.

    Distractors (pid 0) each get their own random centre. Generated from `seed` and the
    position (`start` + row), so a large gallery can be built in chunks. The default noise
    (2.2 at d = 1,024, scaled by `(d / 1024) ** 0.25`) keeps the same separation in any
    dimension: mAP ~ 0.7, rank-1 ~ 0.9 on the MARS-sized problem.
    """
    if noise is None:
        noise = 2.2 * (dim / 1024) ** 0.25
    n = len(pids)
    out = np.empty((n, dim), np.float32)
    for i0 in range(0, n, 65536):
        i1 = min(i0 + 65536, n)
        rng = np.random.default_rng([seed, start + i0])
        out[i0:i1] = rng.standard_normal((i1 - i0, dim), dtype=np.float32) * noise
        ids = pids[i0:i1]
        real = ids > 0
        for pid in np.unique(ids[real]):
            centre = np.random.default_rng([seed, 1, int(pid)]).standard_normal(
                dim, dtype=np.float32
            )
            out[i0:i1][ids == pid] += centre
        out[i0:i1][~real] += rng.standard_normal((int((~real).sum()), dim), dtype=np.float32)
        for cam in np.unique(camids[i0:i1]):
            bias = np.random.default_rng([seed, 2, int(cam)]).standard_normal(dim, dtype=np.float32)
            out[i0:i1][camids[i0:i1] == cam] += camera_bias * bias
    return out


def mars_size_problem(num_query=1980, num_gallery=9330, dim=1024, seed=0):
    """The MARS-sized problem of `run`: `(query_features, gallery_features, query_pids,
    gallery_pids, query_camids, gallery_camids)`, the arguments of `evaluate_ranking`."""
    q_pids, q_cams, g_pids, g_cams = mars_like_structure(num_query, num_gallery, seed=seed)
    qf = structured_features(q_pids, q_cams, dim, seed)
    gf = structured_features(g_pids, g_cams, dim, seed, start=10**7)
    return qf, gf, q_pids, g_pids, q_cams, g_cams


def unstructured_problem(problem, seed=0):
    """`problem` with structure-free features (an untrained model), the same identities."""
    qf, gf, *ids = problem
    rng = np.random.default_rng(seed + 1)
    qf = rng.standard_normal(qf.shape, dtype=np.float32)
    gf = rng.standard_normal(gf.shape, dtype=np.float32)
    return (qf, gf, *ids)


def large_gallery_problem(
    num_query=1980, num_gallery=9330, large_gallery=1_000_000, dim=256, seed=0
):
    """The large-gallery problem of `run`: the MARS-like gallery plus pid-0 distractors up to
    `large_gallery` items, shuffled so that true matches are spread over the whole gallery
    (no block can be skipped); the arguments of `evaluate_ranking`."""
    q_pids, q_cams, g_pids, g_cams = mars_like_structure(num_query, num_gallery, seed=seed)
    extra = large_gallery - num_gallery
    rng = np.random.default_rng(seed + 2)
    perm = rng.permutation(large_gallery)
    big_pids = np.concatenate([g_pids, np.zeros(extra, np.int64)])[perm]
    big_cams = np.concatenate([g_cams, rng.integers(0, 6, extra)])[perm]
    qf = structured_features(q_pids, q_cams, dim, seed)
    gf = structured_features(big_pids, big_cams, dim, seed, start=10**7)
    return qf, gf, q_pids, big_pids, q_cams, big_cams


# ------------------------------------------------------------------------------ torchreid


class Torchreid:
    """torchreid's evaluators, loaded from a checkout of KaiyangZhou/deep-person-reid.

    `cython` is `evaluate_cy` from `torchreid/metrics/rank_cylib/rank_cy.pyx`, compiled with
    Cython into a cache folder outside the repository (once per source hash); `python` is
    `eval_market1501` of `torchreid/metrics/rank.py`; `distance` is
    `compute_distance_matrix` of `torchreid/metrics/distance.py` (torch). Nothing of
    torchreid is imported as a package or installed.
    """

    def __init__(self, src, build_dir=None):
        metrics = os.path.join(src, "torchreid", "metrics")
        pyx = os.path.join(metrics, "rank_cylib", "rank_cy.pyx")
        for path in (pyx, os.path.join(metrics, "rank.py"), os.path.join(metrics, "distance.py")):
            if not os.path.isfile(path):
                raise FileNotFoundError(
                    f"--torchreid-src {src!r}: {path} is missing; expected a checkout of "
                    "KaiyangZhou/deep-person-reid."
                )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # rank.py warns that its Cython is not importable
            rank = _load_file("torchreid_rank_py", os.path.join(metrics, "rank.py"))
        distance = _load_file("torchreid_distance_py", os.path.join(metrics, "distance.py"))
        self.python = rank.eval_market1501
        self.distance = distance.compute_distance_matrix
        self.cython = _build_rank_cy(pyx, build_dir).evaluate_cy

    def end_to_end(self, evaluator, qf, gf, q_pids, g_pids, q_camids, g_camids, max_rank=50):
        """torchreid's test-time path: torch distances, `.numpy()`, the evaluator."""
        import torch

        dist = self.distance(torch.from_numpy(qf), torch.from_numpy(gf)).numpy()
        return evaluator(dist, q_pids, g_pids, q_camids, g_camids, max_rank)


def _load_file(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _build_rank_cy(pyx, build_dir=None):
    """Compiles `rank_cy.pyx` (Cython + the C compiler) once per source hash and imports it."""
    with open(pyx, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()[:16]
    root = build_dir or os.path.join(tempfile.gettempdir(), "keras_asanet_benchmarks")
    folder = os.path.join(root, f"rank_cy_{digest}")
    built = (
        [n for n in os.listdir(folder) if n.endswith((".so", ".pyd"))]
        if os.path.isdir(folder)
        else []
    )
    if not built:
        os.makedirs(folder, exist_ok=True)
        shutil.copy(pyx, os.path.join(folder, "rank_cy.pyx"))
        script = (
            "import numpy\n"
            "from Cython.Build import cythonize\n"
            "from setuptools import Extension, setup\n"
            "ext = Extension('rank_cy', ['rank_cy.pyx'], include_dirs=[numpy.get_include()])\n"
            "setup(ext_modules=cythonize([ext], quiet=True, language_level=3),\n"
            "      script_args=['build_ext', '--inplace', '-q'])\n"
        )
        done = subprocess.run(
            [sys.executable, "-c", script], cwd=folder, capture_output=True, text=True
        )
        if done.returncode != 0:
            raise RuntimeError(
                "Building torchreid's rank_cy.pyx failed (pip install Cython, and a C "
                f"compiler is needed):\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
            )
        built = [n for n in os.listdir(folder) if n.endswith((".so", ".pyd"))]
    return _load_file("rank_cy", os.path.join(folder, built[0]))


# --------------------------------------------------------------------------------- timing


def _timed(fn, repeats):
    """Median of `repeats` runs (seconds) and the last value."""
    times, value = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        value = fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times)), value


def _as_dict(result):
    if isinstance(result, dict):
        return result
    if isinstance(result, tuple):  # torchreid: (cmc, mAP)
        return {"cmc": np.asarray(result[0], np.float64), "mAP": float(result[1])}
    return {
        "cmc": result.cmc,
        "mAP": result.mAP,
        "mINP": result.mINP,
        "num_valid_queries": result.num_valid_queries,
    }


def _differences(ours, other):
    """Largest |difference| of mAP, of the CMC (over the common length) and of mINP."""
    ours, other = _as_dict(ours), _as_dict(other)
    n = min(len(ours["cmc"]), len(other["cmc"]))
    out = {
        "mAP": abs(float(ours["mAP"]) - float(other["mAP"])),
        "cmc": float(np.max(np.abs(np.asarray(ours["cmc"][:n]) - other["cmc"][:n]))),
    }
    if "mINP" in other:
        out["mINP"] = abs(float(ours["mINP"]) - float(other["mINP"]))
    if "num_valid_queries" in other and ours["num_valid_queries"] != other["num_valid_queries"]:
        raise AssertionError(
            f"valid queries differ: {ours['num_valid_queries']} vs {other['num_valid_queries']}"
        )
    return out


def _check(diff, tolerance, what):
    worst = max(diff.values())
    if worst > tolerance:
        raise AssertionError(f"evaluate_ranking disagrees with {what} (max diff {worst}).")
    return worst


def _compare(args, repeats, community=False, torchreid=None):
    """End to end from features for every evaluator, and all of them on one shared matrix."""
    ids = args[2:]
    fast_s, fast = _timed(lambda: evaluate_ranking(*args), repeats)
    ref_s, ref = _timed(lambda: reference_evaluate_ranking(*args), repeats)
    dist_s, dist = _timed(lambda: pairwise_distance(args[0], args[1]), repeats)
    fast_rank_s, fast_rank = _timed(lambda: evaluate_distance_matrix(dist, *ids), repeats)
    ref_rank_s, ref_rank = _timed(lambda: reference_rank_distances(dist, *ids), repeats)
    out = {
        "fast_seconds": round(fast_s, 4),
        "reference_seconds": round(ref_s, 4),
        "speedup": round(ref_s / fast_s, 2),
        "max_abs_difference": max(
            _check(_differences(fast, ref), 1e-12, "the full-argsort reference"),
            _check(_differences(fast_rank, ref_rank), 1e-12, "the full-argsort reference"),
        ),
        "distance_matrix_seconds": round(dist_s, 4),
        "ranking_only_fast_seconds": round(fast_rank_s, 4),
        "ranking_only_reference_seconds": round(ref_rank_s, 4),
        "ranking_only_speedup": round(ref_rank_s / fast_rank_s, 2),
        "mAP": round(fast.mAP, 6),
        "rank1": round(fast.rank(1), 6),
        "mINP": round(fast.mINP, 6),
        "num_valid_queries": fast.num_valid_queries,
    }
    if community:
        loop_s, loop = _timed(lambda: community_style_rank_distances(dist, *ids), 1)
        out["community_loop_seconds_from_distances"] = round(loop_s, 4)
        out["community_loop_vs_fast_end_to_end"] = round((dist_s + loop_s) / fast_s, 2)
        out["community_loop_max_abs_difference"] = _check(
            _differences(fast, loop), 1e-12, "the per-rank loop"
        )
    if torchreid is None:
        return out
    if isinstance(torchreid, str):
        out["torchreid_cython"] = out["torchreid_python"] = torchreid
        return out
    for key, evaluator, runs in (
        ("torchreid_cython", torchreid.cython, repeats),
        ("torchreid_python", torchreid.python, 1),
    ):
        seconds, _ = _timed(lambda ev=evaluator: torchreid.end_to_end(ev, *args), runs)
        shared = evaluator(dist, *ids, 50)
        diff = _differences(fast, shared)
        out[key] = {
            "seconds_end_to_end": round(seconds, 4),
            "fast_speedup": round(seconds / fast_s, 2),
            "mAP_difference_on_shared_distances": diff["mAP"],
            "cmc_difference_on_shared_distances": diff["cmc"],
        }
    # torchreid's CMC is float32 in both evaluators and its Cython mAP too; its Python mAP is
    # float64 and must agree to 1e-12 (the same ranks of the same matches).
    _check({"mAP": out["torchreid_python"]["mAP_difference_on_shared_distances"]}, 1e-12,
           "torchreid's Python evaluator")  # fmt: skip
    return out


def _maxrss_bytes():
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss if sys.platform == "darwin" else rss * 1024


def run(
    num_query=1980,
    num_gallery=9330,
    dim=1024,
    large_gallery=1_000_000,
    large_dim=256,
    seed=0,
    skip_large=False,
    repeats=3,
    community_baseline=True,
    torchreid_src=None,
    build_dir=None,
) -> dict:
    """Runs the benchmark; returns a JSON-serialisable dict (seconds, speedups, memory).

    Timings are the median of `repeats` runs (torchreid's Python evaluator and the per-rank
    loop: one run). `speedup` is end to end from the features against the full-argsort
    numpy reference; `torchreid_cython.fast_speedup` against torchreid's test-time path
    (torch distances + `evaluate_cy`); `ranking_only_speedup` compares the ranking step alone
    on one shared distance matrix.

    Args:
        torchreid_src: a checkout of KaiyangZhou/deep-person-reid (see `Torchreid`); None:
            torchreid's evaluators are "not measured".
        build_dir: where `rank_cy` is compiled (default: a folder in the temp directory).
    """
    torchreid = Torchreid(torchreid_src, build_dir) if torchreid_src else None
    problem = mars_size_problem(num_query, num_gallery, dim, seed)
    result = {
        "benchmark": "ranking",
        "problem": {"num_query": num_query, "num_gallery": num_gallery, "dim": dim},
        "mars_size": _compare(
            problem, repeats, community_baseline, torchreid or "not measured (no --torchreid-src)"
        ),
    }
    result["mars_size_unstructured"] = _compare(unstructured_problem(problem, seed), 1)
    del problem
    if skip_large:
        return result

    qf, gf, q_pids, big_pids, q_cams, big_cams = large_gallery_problem(
        num_query, num_gallery, large_gallery, large_dim, seed
    )
    input_bytes = qf.nbytes + gf.nbytes + big_pids.nbytes + big_cams.nbytes
    rss_before = _maxrss_bytes()
    tracemalloc.start()
    start = time.perf_counter()
    res = evaluate_ranking(qf, gf, q_pids, big_pids, q_cams, big_cams)
    seconds = time.perf_counter() - start
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss_after = _maxrss_bytes()
    result["large_gallery"] = {
        "num_query": num_query,
        "num_gallery": large_gallery,
        "dim": large_dim,
        "seconds": round(seconds, 2),
        "input_bytes": int(input_bytes),
        "tracemalloc_peak_bytes_during_call": int(traced_peak),
        "ru_maxrss_growth_bytes_during_call": int(rss_after - rss_before),
        "process_peak_rss_bytes": int(rss_after),
        "under_4GB": bool(rss_after < 4 * 2**30),
        "mAP": round(res.mAP, 6),
        "rank1": round(res.rank(1), 6),
        "num_valid_queries": res.num_valid_queries,
    }
    return result


def table(result) -> str:
    """The markdown table of a `run()` result."""
    m = result["mars_size"]
    p = result["problem"]
    size = f"{p['num_query']:,} x {p['num_gallery']:,}, d {p['dim']:,}"
    rows = [
        "| evaluator (end to end from features) | seconds | evaluate_ranking is | max abs "
        "difference (shared distances) |",
        "|---|---|---|---|",
        f"| keras_asanet `evaluate_ranking` | {m['fast_seconds']:.3f} | 1x | - |",
    ]
    for key, label in (
        ("torchreid_cython", "torchreid Cython `evaluate_cy` + torch distances"),
        ("torchreid_python", "torchreid Python `eval_market1501` + torch distances"),
    ):
        t = m[key]
        if isinstance(t, str):
            rows.append(f"| {label} | {t} | - | - |")
        else:
            diff = max(
                t["mAP_difference_on_shared_distances"], t["cmc_difference_on_shared_distances"]
            )
            rows.append(
                f"| {label} | {t['seconds_end_to_end']:.3f} | {t['fast_speedup']:.2f}x faster "
                f"| {diff:.1e} (mAP {t['mAP_difference_on_shared_distances']:.1e}) |"
            )
    rows.append(
        f"| naive numpy: full stable argsort + per-query loop | {m['reference_seconds']:.3f} | "
        f"{m['speedup']:.2f}x faster | {m['max_abs_difference']:.1e} |"
    )
    if "community_loop_seconds_from_distances" in m:
        loop = m["distance_matrix_seconds"] + m["community_loop_seconds_from_distances"]
        rows.append(
            f"| per-rank Python loop (the common `eval_func` shape) | {loop:.3f} | "
            f"{m['community_loop_vs_fast_end_to_end']:.2f}x faster | "
            f"{m['community_loop_max_abs_difference']:.1e} |"
        )
    lines = [f"MARS-sized problem ({size}); mAP {m['mAP']:.4f}, rank-1 {m['rank1']:.4f}, "
             f"{m['num_valid_queries']} valid queries; distances alone "
             f"{m['distance_matrix_seconds']:.3f} s, ranking step alone "
             f"{m['ranking_only_fast_seconds']:.3f} s vs {m['ranking_only_reference_seconds']:.3f}"
             f" s ({m['ranking_only_speedup']:.1f}x).", "", *rows]  # fmt: skip
    u = result.get("mars_size_unstructured")
    if u:
        lines += [
            "",
            f"Structure-free features (an untrained model): {u['fast_seconds']:.3f} s vs "
            f"{u['reference_seconds']:.3f} s for the naive loop ({u['speedup']:.2f}x).",
        ]
    big = result.get("large_gallery")
    if big:
        lines += [
            "",
            "| large gallery | seconds | process peak RSS | RSS growth in the call | "
            "tracemalloc peak | input features |",
            "|---|---|---|---|---|---|",
            f"| {big['num_query']:,} x {big['num_gallery']:,}, d {big['dim']} | "
            f"{big['seconds']:.1f} | {big['process_peak_rss_bytes'] / 2**30:.2f} GiB | "
            f"{big['ru_maxrss_growth_bytes_during_call'] / 2**20:.0f} MiB | "
            f"{big['tracemalloc_peak_bytes_during_call'] / 2**20:.0f} MiB | "
            f"{big['input_bytes'] / 2**30:.2f} GiB |",
        ]
    return "\n".join(lines)
