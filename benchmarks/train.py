"""Clips/s of a full ASA-Net training step per backend against plain PyTorch (`benchmark.py
train`).

A step is what `model.fit` runs per batch: forward in training mode, the five losses of
Eq. 19, the gradients, Adam (L2 weight decay) on the network and SGD on the centres. Each
Keras backend runs in its own subprocess (`KERAS_BACKEND` is fixed at import), twice: with
`jit_compile=False` (torch: eager; JAX: op by op; TensorFlow: a `tf.function` graph) and
`jit_compile=True` (XLA on JAX / TensorFlow, `torch.compile` on torch), through
`model.train_on_batch`; the reference (`benchmarks/reference_torch.py`, eager PyTorch,
channels-first) runs in another. All use the same random batch (uint8 pixels given as
float32, P x K identities, attribute targets), the same preset and the same thread count,
in the same run. Reported per configuration: the time to the first step (tracing and
compiling included), the median of `steps` timed steps after `warmup` more, clips/s, the
process's peak RSS and its growth over the steps (CPU), device peak memory where the
backend reports one (GPU). The parameter counts of every Keras model and the reference
are checked equal.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

from benchmarks import common

MODES = ("jit_compile=False", "jit_compile=True")


def make_batch(batch, seq_len, image_size, num_re=32, num_ir=11, seed=0):
    """A training batch: uint8-valued float32 clips `(B, T, H, W, 3)` and the targets."""
    p, k = batch
    rng = np.random.default_rng(seed)
    clips = rng.integers(0, 256, (p * k, seq_len, *image_size, 3), dtype=np.uint8)
    targets = {
        "pid": np.repeat(np.arange(p, dtype=np.int32), k),
        "re_attr": rng.integers(0, 2, (p * k, num_re)).astype(np.float32),
        "ir_attr": rng.integers(0, 2, (p * k, num_ir)).astype(np.float32),
        "attr_mask": np.ones((p * k,), np.float32),
    }
    return clips.astype(np.float32), targets


def keras_worker(args):
    import keras

    from keras_asanet.models import ASANet
    from keras_asanet.training.optimizers import make_optimizer

    keras.utils.set_random_seed(0)
    extra = {"dtype": "mixed_float16"} if args.mixed_precision else {}
    model = ASANet.from_preset(args.preset, num_identities=args.num_identities, **extra)
    model.build_for_input((None, args.seq_len, *args.image_size, 3))
    model.compile(
        optimizer=make_optimizer(center_loss_weight=model.center_loss_weight),
        jit_compile=args.jit == "true",
    )
    clips, targets = make_batch(args.batch, args.seq_len, args.image_size)
    params = int(sum(np.prod(v.shape) for v in model.trainable_weights))
    return _time_steps(lambda: model.train_on_batch(clips, targets), args, params)


def reference_worker(args):
    import torch

    from benchmarks.reference_torch import (
        ReferenceASANet,
        ReferenceTrainer,
        trainable_parameter_count,
    )

    torch.manual_seed(0)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = ReferenceASANet.from_preset(args.preset, args.num_identities).to(device)
    trainer = ReferenceTrainer(model)
    clips, targets = make_batch(args.batch, args.seq_len, args.image_size)
    x = torch.from_numpy(clips).permute(0, 1, 4, 2, 3).contiguous().to(device)
    y = {k: torch.from_numpy(v).to(device) for k, v in targets.items()}
    autocast = args.mixed_precision and device == "cuda"

    def step():
        with torch.autocast(device, dtype=torch.float16, enabled=autocast):
            return float(trainer.step(x, y)["total"])

    out = _time_steps(step, args, trainable_parameter_count(model))
    out["step_flops"] = step_flops(step)
    return out


def step_flops(step):
    """The floating-point operations of one call of `step` that torch's `FlopCounterMode`
    counts: convolutions and matrix products, forward and backward (the optimisers'
    elementwise updates are not counted).

    Counted on the reference, the number is the model's FLOPs per training step (same
    layers, widths and parameter count as the Keras model), so every configuration's
    achieved model TFLOP/s and MFU are measured against the same work, however each
    backend computes it.
    """
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        step()
    return int(counter.get_total_flops())


def _time_steps(step, args, params):
    start = time.perf_counter()
    step()
    first = time.perf_counter() - start
    for _ in range(args.warmup):
        step()
    times = []
    with common.PeakRSS() as rss:
        for _ in range(args.steps):
            start = time.perf_counter()
            step()
            times.append(time.perf_counter() - start)
    seconds = common.median(times)
    clips = args.batch[0] * args.batch[1]
    return {
        "params": params,
        "first_step_seconds": round(first, 3),
        "step_seconds_median": round(seconds, 4),
        "step_seconds_all": [round(t, 4) for t in times],
        "clips_per_s": round(clips / seconds, 2),
        "peak_rss_bytes": int(common.peak_rss_bytes()),
        "rss_growth_bytes_during_steps": int(rss.growth),
        "device_peak_bytes": (
            common.device_peak_bytes() if args.kind == "keras" else common.torch_device_peak_bytes()
        ),
    }


def run(
    preset="asanet_tiny",
    image_size=(128, 64),
    seq_len=4,
    batch=(4, 2),
    steps=5,
    warmup=2,
    num_identities=625,
    backends=None,
    modes=MODES,
    mixed_precision=False,
    threads=None,
    timeout=900,
    peak_tflops=None,
) -> dict:
    """Runs every configuration in its own subprocess; returns the JSON-serialisable dict.
    `peak_tflops`: the device's peak TFLOP/s for the step's precision (e.g. from the GPU's
    data sheet); with it every configuration gets its model FLOPs utilisation (`mfu`)."""
    backends = list(backends or common.installed_backends())
    base = [
        "--preset", preset, "--image-size", *image_size, "--seq-len", seq_len,
        "--batch", *batch, "--steps", steps, "--warmup", warmup,
        "--num-identities", num_identities,
    ]  # fmt: skip
    if mixed_precision:
        base.append("--mixed-precision")
    result = {
        "benchmark": "train",
        "preset": preset,
        "image_size": list(image_size),
        "seq_len": seq_len,
        "batch": list(batch),
        "steps": steps,
        "warmup": warmup,
        "num_identities": num_identities,
        "mixed_precision": mixed_precision,
        "peak_tflops": peak_tflops,
        "threads": threads or len(os.sched_getaffinity(0)),
        "machine": common.machine(),
        "reference": common.run_worker(
            "benchmarks.train", None, [*base, "--kind", "reference"], timeout, threads
        ),
        "keras": {},
    }
    for backend in backends:
        for mode in modes:
            jit = "true" if mode.endswith("True") else "false"
            result["keras"][f"{backend} {mode}"] = common.run_worker(
                "benchmarks.train",
                backend,
                [*base, "--kind", "keras", "--jit", jit],
                timeout,
                threads,
            )
    _ratios(result)
    return result


def _ratios(result):
    ref = result["reference"]
    ok = {k: v for k, v in result["keras"].items() if "clips_per_s" in v}
    if "clips_per_s" not in ref:
        return
    for value in ok.values():
        value["vs_reference"] = round(value["clips_per_s"] / ref["clips_per_s"], 3)
    if ref.get("step_flops"):
        clips_per_step = result["batch"][0] * result["batch"][1]
        peak = result.get("peak_tflops")
        for value in [ref, *ok.values()]:
            tflops = ref["step_flops"] * value["clips_per_s"] / clips_per_step / 1e12
            value["model_tflops_per_s"] = float(f"{tflops:.4g}")
            if peak:
                value["mfu"] = float(f"{tflops / float(peak):.4g}")
    result["params_equal"] = all(v["params"] == ref["params"] for v in ok.values())
    if not result["params_equal"]:
        raise AssertionError(
            "parameter counts differ: reference "
            f"{ref['params']}, keras { ({k: v['params'] for k, v in ok.items()}) }"
        )
    compiled = [v["vs_reference"] for k, v in ok.items() if k.endswith("True")]
    torch_eager = ok.get("torch jit_compile=False", {}).get("vs_reference")
    result["goals"] = {
        "best compiled >= 1.2x reference": bool(compiled) and max(compiled) >= 1.2,
        "torch jit_compile=False >= 0.9x reference": torch_eager is not None and torch_eager >= 0.9,
        "below 0.7x (need a profile)": [k for k, v in ok.items() if v["vs_reference"] < 0.7],
    }


def table(result) -> str:
    h, w = result["image_size"]
    p, k = result["batch"]
    ref = result["reference"]
    lines = [
        f"`{result['preset']}`, {h}x{w}, T = {result['seq_len']}, {p}x{k} clips per step, "
        f"{result['num_identities']} identities; median of {result['steps']} steps after "
        f"{result['warmup'] + 1} warm-up steps"
        + (", mixed precision" if result.get("mixed_precision") else "")
        + f"; parameters {ref.get('params', '?'):,}"
        + (" (equal everywhere)" if result.get("params_equal") else "")
        + ".",
        f"Each configuration in its own process on {result['threads']} CPU thread(s).",
    ]
    flops = ref.get("step_flops")
    peak = result.get("peak_tflops")
    if flops:
        lines.append(
            f"Model FLOPs per step: {flops / 1e9:.2f} GFLOP (the reference's forward and "
            "backward convolutions and matrix products, torch's FlopCounterMode)"
            + (f"; MFU against a peak of {peak:g} TFLOP/s." if peak else ".")
        )
    rows = [("reference: plain PyTorch, eager, channels-first", ref)]
    rows += [(f"keras_asanet {k}", v) for k, v in result["keras"].items()]
    device = any(v.get("device_peak_bytes") is not None for _, v in rows)  # on a GPU
    flop_head = (
        (" device peak |" if device else "")
        + (" model TFLOP/s |" if flops else "")
        + (" MFU |" if flops and peak else "")
    )
    lines += [
        "",
        "| configuration | clips/s | vs reference | step (s) | first step (s) | "
        f"RSS growth over the steps | peak RSS |{flop_head}",
        "|---|---|---|---|---|---|---|" + "---|" * flop_head.count("|"),
    ]
    for label, v in rows:
        if "error" in v:
            lines.append(f"| {label} | {v['error']} | | | | | |" + " |" * flop_head.count("|"))
            continue
        ratio = "1x" if v is ref else f"{v['vs_reference']:.2f}x"
        extra = ""
        if device:
            peak_bytes = v.get("device_peak_bytes")
            extra += " - |" if peak_bytes is None else f" {peak_bytes / 2**30:.2f} GiB |"
        if flops:
            extra += f" {v['model_tflops_per_s']:.3g} |"
        if flops and peak:
            extra += f" {100 * v['mfu']:.1f} % |"
        lines.append(
            f"| {label} | {v['clips_per_s']:.2f} | {ratio} | {v['step_seconds_median']:.3f} | "
            f"{v['first_step_seconds']:.1f} | {v['rss_growth_bytes_during_steps'] / 2**20:.0f}"
            f" MiB | {v['peak_rss_bytes'] / 2**30:.2f} GiB |{extra}"
        )
    return "\n".join(lines)


def worker_parser():
    p = argparse.ArgumentParser()
    p.add_argument("--worker", action="store_true")
    p.add_argument("--kind", choices=("keras", "reference"), required=True)
    p.add_argument("--jit", choices=("true", "false"), default="false")
    p.add_argument("--preset", default="asanet_tiny")
    p.add_argument("--image-size", type=int, nargs=2, default=(128, 64))
    p.add_argument("--seq-len", type=int, default=4)
    p.add_argument("--batch", type=int, nargs=2, default=(4, 2))
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--num-identities", type=int, default=625)
    p.add_argument("--mixed-precision", action="store_true")
    return p


def main(argv=None):
    args = worker_parser().parse_args(argv)
    args.image_size, args.batch = tuple(args.image_size), tuple(args.batch)
    out = keras_worker(args) if args.kind == "keras" else reference_worker(args)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    sys.exit(main())
