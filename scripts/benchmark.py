"""Benchmarks against references measured in the same run; each prints one JSON line and a
markdown table.

Usage:
    python scripts/benchmark.py train [--preset P] [--image-size H W] [--seq-len T]
                                      [--batch P K] [--steps N] [--backends ...]
                                      [--mixed-precision] [--peak-tflops F]
    python scripts/benchmark.py infer [--preset P] [--image-size H W] [--batch-size N]
                                      [--repeats N]
    python scripts/benchmark.py data [--root DIR] [--batches N] [--workers 1 2]
    python scripts/benchmark.py ranking [--torchreid-src DIR] [--skip-large]
    python scripts/benchmark.py all [--torchreid-src DIR]

`train`: clips/s of a full training step (forward, the five losses, Adam + centre SGD) per
installed backend, `jit_compile=False` and `True`, each in its own subprocess, against the
plain PyTorch ASA-Net of `benchmarks/reference_torch.py` (same parameter count, asserted);
time to the first step, memory, and the model TFLOP/s achieved (the reference's step FLOPs
per second; with `--peak-tflops`, the model FLOPs utilisation). CPU defaults are small;
the paper's GPU setting is `--preset asanet_b --image-size 256 128 --seq-len 6 --batch 8 4`.

`infer`: tracklets/s of dense feature extraction per backend against the reference (the
median of `--repeats` passes), and the RSS growth on short and on long tracklets (bounded by
the batch).

`data`: the training loader (float32 and uint8 clips) against bare JPEG decoding of the same
frames, per worker count (goal >= 0.7x).

`ranking`: `evaluate_ranking` against torchreid's Cython evaluator (built from the checkout
of KaiyangZhou/deep-person-reid given by `--torchreid-src`; "not measured" without one), its
Python evaluator and naive numpy loops at MARS size, and a 1,000,000-item gallery with its
peak memory.

The code lives in `benchmarks/`; docs/performance.md holds the latest tables.
"""

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks import common  # noqa: E402


def bench_train(args):
    from benchmarks import train

    result = train.run(
        preset=args.preset,
        image_size=tuple(args.image_size),
        seq_len=args.seq_len,
        batch=tuple(args.batch),
        steps=args.steps,
        warmup=args.warmup,
        num_identities=args.num_identities,
        backends=args.backends,
        modes=[m for m in train.MODES if args.modes is None or m.split("=")[1] in args.modes],
        mixed_precision=args.mixed_precision,
        threads=args.threads,
        timeout=args.timeout,
        peak_tflops=args.peak_tflops,
    )
    return result, train.table(result)


def bench_infer(args):
    from benchmarks import infer

    result = infer.run(
        preset=args.preset,
        image_size=tuple(args.image_size),
        seq_len=args.seq_len,
        batch_size=args.batch_size,
        max_tracklets=args.max_tracklets,
        repeats=args.repeats,
        backends=args.backends,
        threads=args.threads,
        timeout=args.timeout,
        modes=tuple(m.lower() for m in args.modes) if args.modes else ("auto",),
    )
    return result, infer.table(result)


def bench_data(args):
    from benchmarks import data

    result = data.run(
        root=args.root,
        image_size=tuple(args.image_size),
        batch=tuple(args.batch),
        seq_len=args.seq_len,
        batches=args.batches,
        workers=tuple(args.workers),
        repeats=args.repeats,
    )
    result["machine"] = common.machine()
    return result, data.table(result)


def bench_ranking(args):
    from benchmarks import ranking

    result = ranking.run(
        skip_large=args.skip_large,
        torchreid_src=args.torchreid_src,
        community_baseline=args.torchreid_src is None,
    )
    result["machine"] = common.machine()
    return result, ranking.table(result)


def bench_all(args):
    tables, results = [], {}
    for name, fn, defaults in (
        ("train", bench_train, _TRAIN_DEFAULTS),
        ("infer", bench_infer, _INFER_DEFAULTS),
        ("data", bench_data, _DATA_DEFAULTS),
        ("ranking", bench_ranking, {}),
    ):
        sub = argparse.Namespace(**{**defaults, **vars(args)})
        results[name], table = fn(sub)
        print(json.dumps(results[name]), flush=True)
        tables.append(f"### {name}\n\n{table}")
    train_best = max(
        (v["clips_per_s"] for v in results["train"]["keras"].values() if "clips_per_s" in v),
        default=None,
    )
    loader = results["data"]["per_workers"].get("1", {})
    summary = {
        "benchmark": "all",
        "fastest_training_step_clips_per_s": train_best,
        "loader_default_workers_clips_per_s": {
            k: loader.get(f"pipeline_{k}_clips_per_s") for k in ("float32", "uint8")
        },
        "note": "the train and data sub-commands ran at their own default sizes",
    }
    return summary, "\n\n".join(tables)


_TRAIN_DEFAULTS = dict(
    preset="asanet_tiny", image_size=(128, 64), seq_len=4, batch=(4, 2), steps=5, warmup=2,
    num_identities=625, backends=None, modes=None, mixed_precision=False, threads=None,
    timeout=300, peak_tflops=None,
)  # fmt: skip
_INFER_DEFAULTS = dict(
    preset="asanet_tiny", image_size=(128, 64), seq_len=4, batch_size=16, max_tracklets=120,
    repeats=5, backends=None, threads=None, timeout=300, modes=None,
)  # fmt: skip
_DATA_DEFAULTS = dict(
    root=None, image_size=(256, 128), batch=(8, 4), seq_len=6, batches=6, workers=(1, 2),
    repeats=3,
)  # fmt: skip


def _add(p, defaults, *names):
    flags = {
        "preset": dict(help="an ASANet preset (asanet_tiny, asanet_b, ...)"),
        "image_size": dict(type=int, nargs=2, metavar=("H", "W")),
        "seq_len": dict(type=int),
        "batch": dict(type=int, nargs=2, metavar=("P", "K")),
        "steps": dict(type=int, help="timed steps (median reported)"),
        "warmup": dict(type=int, help="untimed steps after the first"),
        "num_identities": dict(type=int),
        "backends": dict(nargs="+", choices=common.BACKENDS),
        "modes": dict(nargs="+", choices=("False", "True"), help="jit_compile values"),
        "mixed_precision": dict(action="store_true"),
        "peak_tflops": dict(
            type=float,
            help="the device's peak TFLOP/s at the step's precision (its data sheet): adds "
            "each configuration's model FLOPs utilisation (MFU)",
        ),
        "batch_size": dict(type=int),
        "max_tracklets": dict(type=int),
        "root": dict(help="a MARS-layout dataset (default: a temporary synthetic one)"),
        "batches": dict(type=int),
        "workers": dict(type=int, nargs="+"),
        "repeats": dict(type=int),
        "timeout": dict(
            type=int, help="seconds per configuration before it is reported as timed out"
        ),
        "threads": dict(
            type=int,
            help="pin every worker to this many CPUs (default: all); 1 gives steady numbers "
            "on a machine shared with other jobs",
        ),
    }
    for name in names:
        kwargs = dict(flags[name])
        if kwargs.get("action") != "store_true":
            kwargs["default"] = defaults[name]
        p.add_argument("--" + name.replace("_", "-"), **kwargs)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="which", required=True)
    p = sub.add_parser("train", help="training step clips/s per backend vs plain PyTorch")
    _add(p, _TRAIN_DEFAULTS, *_TRAIN_DEFAULTS)
    p.set_defaults(fn=bench_train)
    p = sub.add_parser("infer", help="dense feature extraction per backend vs plain PyTorch")
    _add(p, _INFER_DEFAULTS, *_INFER_DEFAULTS)
    p.set_defaults(fn=bench_infer)
    p = sub.add_parser("data", help="training loader vs bare JPEG decoding")
    _add(p, _DATA_DEFAULTS, *_DATA_DEFAULTS)
    p.set_defaults(fn=bench_data)
    for name, fn, text in (
        ("ranking", bench_ranking, "evaluate_ranking vs torchreid and numpy"),
        ("all", bench_all, "every benchmark at its defaults"),
    ):
        p = sub.add_parser(name, help=text)
        p.add_argument("--torchreid-src", help="a checkout of KaiyangZhou/deep-person-reid")
        p.add_argument("--skip-large", action="store_true", help="skip the 1,000,000 gallery")
        p.set_defaults(fn=fn)
    args = parser.parse_args(argv)
    result, table = args.fn(args)
    print(json.dumps(result))
    print()
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
