"""Tracklets/s of dense test-time feature extraction per backend against plain PyTorch
(`benchmark.py infer`).

Dense extraction is what the evaluation runs: every frame of every tracklet, in clips of T,
clip features averaged per tracklet. The Keras side is `keras_asanet.evaluation.
extract_features(mode="dense")` (clips of all tracklets share batches; the next batch is
decoded by threads while the model runs). The reference is the same loop written for the
PyTorch model (`benchmarks/reference_torch.py`, eager, `torch.no_grad()`, channels-first)
with the same frame decoding and the same read-ahead of one batch, so the ratio is the
model's and the harness's, not the JPEG decoder's. Each backend runs in its own
subprocess on the same synthetic tracklets.

Memory: extraction runs twice, on the test tracklets and on a few long tracklets (all the
test frames joined into `long_tracklets` tracklets, hundreds of frames each); the RSS growth
during each (sampled every 5 ms) must not grow with the tracklet length: it is bounded by
the batch of clips.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import sys
import tempfile
import time

import numpy as np

from benchmarks import common


def _dataset(root, image_size, num_identities):
    from keras_asanet.data import Mars, make_synthetic_mars

    if not os.path.isdir(os.path.join(root, "info")):
        make_synthetic_mars(root, num_identities=num_identities, image_size=image_size, seed=0)
    return Mars(root)


def _long(tracklets, count):
    """`count` tracklets holding all frames of `tracklets` (hundreds of frames each)."""
    import dataclasses

    frames = [f for t in tracklets for f in t.frames]
    size = -(-len(frames) // count)
    return [
        dataclasses.replace(tracklets[i], frames=tuple(frames[i * size : (i + 1) * size]))
        for i in range(count)
    ]


def reference_extract(model, tracklets, seq_len, batch_size, image_size, workers=4):
    """Dense features with the PyTorch reference: the same plan and decoding as
    `extract_features`, one batch decoded ahead."""
    import torch

    from keras_asanet.data.image_io import read_frame
    from keras_asanet.evaluation.feature_extraction import clip_plan

    plan = list(clip_plan(tracklets, "dense", seq_len))
    batches = [plan[i : i + batch_size] for i in range(0, len(plan), batch_size)]
    pool = concurrent.futures.ThreadPoolExecutor(workers)

    def submit(batch):
        return [
            [pool.submit(read_frame, tracklets[i].frames[j], image_size) for j in idx]
            for i, idx in batch
        ]

    sums = None
    counts = np.zeros(len(tracklets))
    device = next(model.parameters()).device
    model.eval()
    try:
        pending = submit(batches[0])
        for b, batch in enumerate(batches):
            clips = np.zeros((batch_size, seq_len, *image_size, 3), np.float32)
            for r, futures in enumerate(pending):
                for t, fut in enumerate(futures):
                    clips[r, t] = fut.result()
            if b + 1 < len(batches):
                pending = submit(batches[b + 1])
            with torch.no_grad():
                x = torch.from_numpy(clips).permute(0, 1, 4, 2, 3).to(device)
                out = model(x).cpu().numpy()
            if sums is None:
                sums = np.zeros((len(tracklets), out.shape[1]))
            owners = np.array([i for i, _ in batch])
            np.add.at(sums, owners, out[: len(batch)])
            np.add.at(counts, owners, 1)
    finally:
        pool.shutdown()
    return (sums / counts[:, None]).astype(np.float32)


def worker(args):
    tracklets_sets = {}
    dataset = _dataset(args.root, tuple(args.image_size), args.num_identities)
    test = list(dataset.query) + list(dataset.gallery)
    tracklets_sets["test"] = test[: args.max_tracklets] if args.max_tracklets else test
    tracklets_sets["long"] = _long(tracklets_sets["test"], args.long_tracklets)
    if args.kind == "reference":
        import torch

        from benchmarks.reference_torch import ReferenceASANet, trainable_parameter_count

        torch.manual_seed(0)
        model = ReferenceASANet.from_preset(args.preset, args.num_identities)
        if torch.cuda.is_available():  # where the Keras backends run too
            model = model.cuda()
        params = trainable_parameter_count(model)

        def extract(tracklets):
            return reference_extract(
                model, tracklets, args.seq_len, args.batch_size, tuple(args.image_size)
            )
    else:
        import keras

        from keras_asanet.evaluation.feature_extraction import extract_features
        from keras_asanet.models import ASANet

        keras.utils.set_random_seed(0)
        model = ASANet.from_preset(args.preset, num_identities=args.num_identities)
        model.build_for_input((None, args.seq_len, *args.image_size, 3))
        model.compile(jit_compile="auto" if args.jit == "auto" else args.jit == "true")
        params = int(sum(np.prod(v.shape) for v in model.trainable_weights))

        def extract(tracklets):
            return extract_features(
                model,
                tracklets,
                mode="dense",
                seq_len=args.seq_len,
                batch_size=args.batch_size,
                image_size=tuple(args.image_size),
                verbose=False,
            ).features

    start = time.perf_counter()
    extract(tracklets_sets["test"][: max(1, args.batch_size // 4)])  # warm-up (and compile)
    first = time.perf_counter() - start
    out = {"params": params, "first_call_seconds": round(first, 2)}
    for name, tracklets in tracklets_sets.items():
        # The median of several passes: one pass of the default set takes under a second,
        # and single passes moved the ratios by about 0.1 between runs.
        passes = []
        with common.PeakRSS() as rss:
            for _ in range(args.repeats):
                start = time.perf_counter()
                extract(tracklets)
                passes.append(time.perf_counter() - start)
        seconds = float(np.median(passes))
        frames = sum(t.num_frames for t in tracklets)
        out[name] = {
            "tracklets": len(tracklets),
            "frames": frames,
            "longest_tracklet_frames": max(t.num_frames for t in tracklets),
            "passes": len(passes),
            "seconds": round(seconds, 3),
            "tracklets_per_s": round(len(tracklets) / seconds, 2),
            "frames_per_s": round(frames / seconds, 1),
            "rss_growth_bytes": int(rss.growth),
        }
    out["peak_rss_bytes"] = int(common.peak_rss_bytes())
    out["device_peak_bytes"] = (
        common.torch_device_peak_bytes() if args.kind == "reference" else common.device_peak_bytes()
    )
    return out


def run(
    preset="asanet_tiny",
    image_size=(128, 64),
    seq_len=4,
    batch_size=16,
    num_identities=12,
    max_tracklets=120,
    long_tracklets=2,
    repeats=5,
    backends=None,
    root=None,
    threads=None,
    timeout=900,
    modes=("auto",),
) -> dict:
    """Runs every backend and the reference in subprocesses on one synthetic dataset.

    Args:
        repeats: timed passes over each set of tracklets; the median pass is reported (the
            RSS growth is over all of them).
        modes: the `jit_compile` values the Keras model is compiled with, each a
            configuration of its own: `"auto"` (Keras' choice: XLA on JAX, eager on torch,
            on TensorFlow XLA with a GPU and a `tf.function` graph without one), `"true"`,
            `"false"` (a `tf.function` graph on TensorFlow, op by op on JAX).
            `extract_features` runs the model's own compiled predict function.
    """
    backends = list(backends or common.installed_backends())
    tmp = None
    if root is None:
        tmp = tempfile.TemporaryDirectory()
        root = os.path.join(tmp.name, "synthetic")
        _dataset(root, image_size, num_identities)  # built once, read by every worker
    base = [
        "--root", root, "--preset", preset, "--image-size", *image_size,
        "--seq-len", seq_len, "--batch-size", batch_size, "--num-identities", num_identities,
        "--max-tracklets", max_tracklets, "--long-tracklets", long_tracklets,
        "--repeats", repeats,
    ]  # fmt: skip
    try:
        result = {
            "benchmark": "infer",
            "preset": preset,
            "image_size": list(image_size),
            "seq_len": seq_len,
            "batch_size": batch_size,
            "repeats": repeats,
            "threads": threads or len(os.sched_getaffinity(0)),
            "machine": common.machine(),
            "reference": common.run_worker(
                "benchmarks.infer", None, [*base, "--kind", "reference"], timeout, threads
            ),
            "keras": {},
        }
        for backend in backends:
            for mode in modes:
                label = backend if tuple(modes) == ("auto",) else f"{backend} jit_compile={mode}"
                result["keras"][label] = common.run_worker(
                    "benchmarks.infer",
                    backend,
                    [*base, "--kind", "keras", "--jit", mode],
                    timeout,
                    threads,
                )
    finally:
        if tmp is not None:
            tmp.cleanup()
    ref = result["reference"]
    if "test" in ref:
        for v in result["keras"].values():
            if "test" in v:
                v["vs_reference"] = round(
                    v["test"]["tracklets_per_s"] / ref["test"]["tracklets_per_s"], 3
                )
        ratios = [v["vs_reference"] for v in result["keras"].values() if "vs_reference" in v]
        result["goals"] = {"best backend >= 1.5x reference": bool(ratios) and max(ratios) >= 1.5}
    return result


def table(result) -> str:
    h, w = result["image_size"]
    ref = result["reference"]
    test = ref.get("test", {})
    long = ref.get("long", {})
    lines = [
        f"`{result['preset']}`, {h}x{w}, dense clips of T = {result['seq_len']}, "
        f"{result['batch_size']} clips per batch; {test.get('tracklets', '?')} test tracklets "
        f"({test.get('frames', '?')} frames), then the same frames as "
        f"{long.get('tracklets', '?')} tracklets of up to {long.get('longest_tracklet_frames')}"
        f" frames; the median of {result.get('repeats', 1)} passes over each. Each "
        f"configuration in its own process on {result['threads']} CPU thread(s).",
    ]
    rows = [("reference: plain PyTorch, eager, channels-first", ref)]
    rows += [(f"keras_asanet {k} (`extract_features`)", v) for k, v in result["keras"].items()]
    # On a GPU: the peak device memory of each process over both passes.
    device = any(v.get("device_peak_bytes") is not None for _, v in rows)
    lines += [
        "",
        "| configuration | tracklets/s | vs reference | frames/s | RSS growth (test) | "
        "RSS growth (long tracklets) | first call (s) |" + (" device peak |" if device else ""),
        "|---|---|---|---|---|---|---|" + ("---|" if device else ""),
    ]
    for label, v in rows:
        if "error" in v:
            lines.append(f"| {label} | {v['error']} | | | | | |" + (" |" if device else ""))
            continue
        ratio = "1x" if v is ref else f"{v['vs_reference']:.2f}x"
        peak = v.get("device_peak_bytes")
        extra = (" - |" if peak is None else f" {peak / 2**30:.2f} GiB |") if device else ""
        lines.append(
            f"| {label} | {v['test']['tracklets_per_s']:.2f} | {ratio} | "
            f"{v['test']['frames_per_s']:.0f} | {v['test']['rss_growth_bytes'] / 2**20:.0f} MiB"
            f" | {v['long']['rss_growth_bytes'] / 2**20:.0f} MiB | {v['first_call_seconds']:.1f} |"
            + extra
        )
    return "\n".join(lines)


def worker_parser():
    """The arguments of one worker process (`run` passes them)."""
    p = argparse.ArgumentParser()
    p.add_argument("--worker", action="store_true")
    p.add_argument("--kind", choices=("keras", "reference"), required=True)
    p.add_argument("--jit", choices=("auto", "true", "false"), default="auto")
    p.add_argument("--root", required=True)
    p.add_argument("--preset", default="asanet_tiny")
    p.add_argument("--image-size", type=int, nargs=2, default=(128, 64))
    p.add_argument("--seq-len", type=int, default=4)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--num-identities", type=int, default=12)
    p.add_argument("--max-tracklets", type=int, default=120)
    p.add_argument("--long-tracklets", type=int, default=2)
    p.add_argument("--repeats", type=int, default=5)
    return p


def main(argv=None):
    print(json.dumps(worker(worker_parser().parse_args(argv))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
