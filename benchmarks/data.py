"""The training loader against bare JPEG decoding of the same frames (`benchmark.py data`).

`run()` times, per worker count, in the same run:

* bare decode: the same tracklets and number of frames as each pipeline batch, decoded and
  resized only (`read_frame`), nothing written anywhere, the clips of a batch spread over
  `N` threads;
* the pipeline yielding float32 clips (`TrainClipDataset`, the default `clip_dtype`):
  restricted random sampling, decode, flip, pad-crop, random erasing, targets, NaN check;
* the same pipeline yielding uint8 clips (`clip_dtype="uint8"`; `ASANet` casts and
  normalises inside its graph).

"Workers" are what `scripts/fit.py --workers N` gives the loader: `TrainClipDataset(workers=N)`
decodes the clips of one batch in `N` threads, one batch after the other (Keras itself is
handed one worker; see `TrainClipDataset`). Both sides use the same threads the same way.

Each ratio is bare-decode seconds / pipeline seconds (1.0 = the loader costs nothing beyond
decoding); goal >= 0.7. Timings are the median of `repeats` passes over `batches` batches,
after one warm-up batch that fills the file cache. A reference for a design choice is also
printed: flip + pad-crop with Keras preprocessing layers on the active backend against the
numpy clip augmentation.
"""

from __future__ import annotations

import os
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np


def _seconds(fn, items):
    start = time.perf_counter()
    for i in items:
        fn(i)
    return time.perf_counter() - start


def run(
    root=None,
    image_size=(256, 128),
    batch=(8, 4),
    seq_len=6,
    batches=6,
    workers=(1, 2),
    repeats=3,
    num_identities=24,
    keras_reference=True,
) -> dict:
    """Runs the benchmark; returns a JSON-serialisable dict (clips/s and ratios).

    Args:
        root: a MARS-layout dataset; None builds a temporary synthetic one (`num_identities`
            identities at `image_size`).
    """
    from keras_asanet.data import Mars, make_synthetic_mars
    from keras_asanet.data.frame_sampling import evenly_spaced
    from keras_asanet.data.image_io import read_frame
    from keras_asanet.data.pipelines import TrainClipDataset

    tmp = None
    height, width = image_size
    if root is None:
        tmp = tempfile.TemporaryDirectory()
        root = os.path.join(tmp.name, f"synthetic_{height}x{width}")
        make_synthetic_mars(root, num_identities=num_identities, image_size=(height, width), seed=0)
    try:
        dataset = Mars(root)

        def pipeline(clip_dtype, n):
            return TrainClipDataset(
                dataset.train,
                dataset.attribute_schema,
                num_identities=batch[0],
                num_instances=batch[1],
                seq_len=seq_len,
                image_size=(height, width),
                seed=0,
                clip_dtype=clip_dtype,
                workers=n,
            )

        reference = pipeline("float32", 1)
        items = [i % len(reference) for i in range(batches)]

        def decode_clip(t):
            tracklet = dataset.train[t]
            for f in evenly_spaced(tracklet.num_frames, reference.seq_len):
                read_frame(tracklet.frames[f], (height, width))

        def bare_with(pool):
            def bare(i):
                # The same tracklets and number of frames as pipeline batch i, decoding
                # only, the clips spread over the pool's threads as the pipeline spreads them.
                if pool is None:
                    for t in reference._batches[i]:
                        decode_clip(t)
                else:
                    list(pool.map(decode_clip, reference._batches[i]))

            return bare

        clips = len(items) * reference.sampler.batch_size
        result = {
            "benchmark": "data",
            "image_size": [height, width],
            "seq_len": reference.seq_len,
            "batch": list(batch),
            "batches": len(items),
            "clips_per_pass": clips,
            "per_workers": {},
        }
        for n in workers:
            pool = ThreadPoolExecutor(n) if n > 1 else None
            try:
                data = {d: pipeline(d, n) for d in ("float32", "uint8")}
                fns = {"bare": bare_with(pool), **{k: d.__getitem__ for k, d in data.items()}}
                for fn in fns.values():
                    fn(0)  # warm the file cache, the code paths and the threads
                # Interleaved (bare, float32, uint8, bare, ...): a load that comes and goes
                # on a shared machine slows every variant alike instead of one of them.
                times = {k: [] for k in fns}
                for _ in range(repeats):
                    for k, fn in fns.items():
                        times[k].append(_seconds(fn, items))
            finally:
                if pool is not None:
                    pool.shutdown()
            t_bare = float(np.median(times["bare"]))
            row = {"bare_decode_clips_per_s": round(clips / t_bare, 2)}
            for dtype in data:
                t = float(np.median(times[dtype]))
                row[f"pipeline_{dtype}_clips_per_s"] = round(clips / t, 2)
                row[f"ratio_{dtype}"] = round(t_bare / t, 3)
            result["per_workers"][str(n)] = row
        first = reference[0][0]
        same = pipeline("uint8", 1)[0][0]
        # With N decode threads a batch is the same batch (`TrainClipDataset`).
        result["batches_equal_across_workers"] = bool(np.array_equal(data["uint8"][0][0], same))
        # The uint8 batch is the float32 batch rounded (erasing fill and gain included).
        result["uint8_vs_float32_max_pixel_difference"] = float(
            np.max(np.abs(first - same.astype(np.float32)))
        )
        if keras_reference:
            result["augmentation_s_per_batch"] = _keras_layers_reference(reference, first)
        result["goal"] = "pipeline >= 0.7x bare decode per worker count"
        result["met_float32"] = all(
            v["ratio_float32"] >= 0.7 for v in result["per_workers"].values()
        )
        result["met_uint8"] = all(v["ratio_uint8"] >= 0.7 for v in result["per_workers"].values())
        return result
    finally:
        if tmp is not None:
            tmp.cleanup()


def _keras_layers_reference(data, clip_batch):
    """Flip + pad-crop with Keras preprocessing layers (frames folded into channels) against
    the numpy clip augmentation, seconds per batch."""
    import keras

    b, t, h, w, c = clip_batch.shape
    folded = clip_batch.transpose(0, 2, 3, 1, 4).reshape(b, h, w, t * c)
    flip = keras.layers.RandomFlip("horizontal", seed=0)
    pad = np.pad(folded, ((0, 0), (10, 10), (10, 10), (0, 0)))
    crop = keras.layers.RandomCrop(h, w, seed=0)
    keras.ops.convert_to_numpy(crop(flip(pad)))
    start = time.perf_counter()
    for _ in range(3):
        keras.ops.convert_to_numpy(crop(flip(pad, training=True), training=True))
    keras_s = (time.perf_counter() - start) / 3
    rng = np.random.default_rng(0)
    start = time.perf_counter()
    for _ in range(3):
        for clip in clip_batch:
            data.augmentation(clip, rng)
    numpy_s = (time.perf_counter() - start) / 3
    return {
        "keras_layers_flip_crop": round(keras_s, 4),
        "numpy_flip_crop_erase": round(numpy_s, 4),
        "backend": keras.backend.backend(),
    }


def table(result) -> str:
    """The markdown table of a `run()` result."""
    h, w = result["image_size"]
    p, k = result["batch"]
    lines = [
        f"{h}x{w}, T = {result['seq_len']}, {p}x{k} batches, {result['batches']} batches per "
        "pass; ratio = bare-decode time / pipeline time (goal >= 0.7).",
        "",
        "| workers | bare decode clips/s | float32 clips/s | ratio | uint8 clips/s | ratio |",
        "|---|---|---|---|---|---|",
    ]
    for n, row in result["per_workers"].items():
        lines.append(
            f"| {n} | {row['bare_decode_clips_per_s']:.1f} | "
            f"{row['pipeline_float32_clips_per_s']:.1f} | {row['ratio_float32']:.2f} | "
            f"{row['pipeline_uint8_clips_per_s']:.1f} | {row['ratio_uint8']:.2f} |"
        )
    aug = result.get("augmentation_s_per_batch")
    if aug:
        lines += [
            "",
            f"Flip + pad-crop of one batch: Keras `RandomFlip` / `RandomCrop` on "
            f"{aug['backend']} {aug['keras_layers_flip_crop']:.3f} s, the numpy clip "
            f"augmentation (with erasing) {aug['numpy_flip_crop_erase']:.3f} s.",
        ]
    return "\n".join(lines)
