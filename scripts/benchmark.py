"""Benchmarks, each printing one JSON line of figures measured against a reference in the same run.

Usage:
    python scripts/benchmark.py data [--root DIR] [--batches N] [--workers 1 2]
    python scripts/benchmark.py ranking [--skip-large]

`data`: clips/s of the training pipeline (restricted random sampling, decode, resize, clip
augmentation, targets) against bare JPEG decoding of the same number of frames of the same
tracklets, per worker count (threads, as `PyDataset(workers=N)` uses). Goal: ratio >= 0.7.

`ranking`: the blocked CMC/mAP/mINP evaluator against a full-argsort numpy reference on a
MARS-sized problem, and peak memory on a 1,000,000-item gallery.
"""

import argparse
import json
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _throughput(fn, items, workers):
    start = time.perf_counter()
    if workers == 1:
        for i in items:
            fn(i)
    else:
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(fn, items))
    return time.perf_counter() - start


def bench_data(args):
    import numpy as np

    from keras_asanet.data import Mars, make_synthetic_mars
    from keras_asanet.data.frame_sampling import evenly_spaced
    from keras_asanet.data.image_io import read_frame
    from keras_asanet.data.pipelines import TrainClipDataset

    tmp = None
    root = args.root
    if root is None:
        tmp = tempfile.TemporaryDirectory()
        root = os.path.join(tmp.name, "synthetic_256x128")
        make_synthetic_mars(root, num_identities=24, image_size=(256, 128), seed=0)
    dataset = Mars(root)
    height, width = args.image_size
    data = TrainClipDataset(
        dataset.train,
        dataset.attribute_schema,
        num_identities=args.batch[0],
        num_instances=args.batch[1],
        seq_len=args.seq_len,
        image_size=(height, width),
        seed=0,
    )
    batches = [i % len(data) for i in range(args.batches)]

    def bare(i):
        # The same tracklets and number of frames as pipeline batch i, decoding only.
        for t in data._batches[i]:
            tracklet = dataset.train[t]
            for f in evenly_spaced(tracklet.num_frames, data.seq_len):
                read_frame(tracklet.frames[f])

    clips = len(batches) * data.sampler.batch_size
    results = {
        "benchmark": "data",
        "image_size": [height, width],
        "seq_len": data.seq_len,
        "batch": list(args.batch),
        "batches": len(batches),
        "per_workers": {},
    }
    data[0], bare(0)  # warm the file cache for both
    for workers in args.workers:
        t_pipe = min(_throughput(data.__getitem__, batches, workers) for _ in range(args.repeats))
        t_bare = min(_throughput(bare, batches, workers) for _ in range(args.repeats))
        results["per_workers"][str(workers)] = {
            "pipeline_clips_per_s": round(clips / t_pipe, 2),
            "bare_decode_clips_per_s": round(clips / t_bare, 2),
            "ratio": round(t_bare / t_pipe, 3),
        }
    # Reference for the design choice: flip + pad-crop with Keras preprocessing layers on the
    # active backend (frames folded into channels) against the numpy clip augmentation.
    import keras

    clip_batch = np.stack([data[0][0]][0])
    b, t, h, w, c = clip_batch.shape
    folded = clip_batch.transpose(0, 2, 3, 1, 4).reshape(b, h, w, t * c)
    flip = keras.layers.RandomFlip("horizontal", seed=0)
    pad = np.pad(folded, ((0, 0), (10, 10), (10, 10), (0, 0)))
    crop = keras.layers.RandomCrop(h, w, seed=0)
    keras.ops.convert_to_numpy(crop(flip(pad)))
    start = time.perf_counter()
    for _ in range(5):
        keras.ops.convert_to_numpy(crop(flip(pad, training=True), training=True))
    keras_s = (time.perf_counter() - start) / 5
    rng = np.random.default_rng(0)
    start = time.perf_counter()
    for _ in range(5):
        for clip in clip_batch:
            data.augmentation(clip, rng)
    numpy_s = (time.perf_counter() - start) / 5
    results["augmentation_s_per_batch"] = {
        "keras_layers_flip_crop": round(keras_s, 4),
        "numpy_flip_crop_erase": round(numpy_s, 4),
        "backend": keras.backend.backend(),
    }
    results["goal"] = "pipeline >= 0.7x bare decode per worker count"
    results["met"] = all(v["ratio"] >= 0.7 for v in results["per_workers"].values())
    if tmp is not None:
        tmp.cleanup()
    return results


def bench_ranking(args):
    from keras_asanet.evaluation import ranking_benchmark

    return ranking_benchmark.run(skip_large=args.skip_large)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="which", required=True)
    p = sub.add_parser("data", help="training pipeline vs bare JPEG decoding")
    p.add_argument("--root", help="a MARS-layout dataset (default: a temporary synthetic one)")
    p.add_argument("--image-size", type=int, nargs=2, default=(256, 128))
    p.add_argument("--batch", type=int, nargs=2, default=(8, 4), metavar=("P", "K"))
    p.add_argument("--seq-len", type=int, default=6)
    p.add_argument("--batches", type=int, default=6)
    p.add_argument("--workers", type=int, nargs="+", default=(1, 2))
    p.add_argument("--repeats", type=int, default=3)
    p.set_defaults(fn=bench_data)
    p = sub.add_parser("ranking", help="blocked ranking vs full-argsort reference")
    p.add_argument("--skip-large", action="store_true", help="skip the 1,000,000 gallery run")
    p.set_defaults(fn=bench_ranking)
    args = parser.parse_args(argv)
    print(json.dumps(args.fn(args)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
