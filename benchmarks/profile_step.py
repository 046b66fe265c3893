"""Where the time of one Keras training step goes (`python -m benchmarks.profile_step`).

Runs the `benchmark.py train` step (`model.train_on_batch`, `jit_compile=False`) under the
active backend's view of the work and prints a markdown table:

* torch: `torch.profiler`, self CPU time per aten operator, against the plain PyTorch
  reference's step profiled the same way (same batch, same thread count);
* jax / tensorflow: the compiled (`jit_compile=True`) step against the first convolution
  of the network alone (forward + backward, jitted), i.e. how much of the step is XLA's
  convolutions, against the same convolution in PyTorch.

`--layouts` (torch): the backbone's forward + backward computed channels-last against
channels-first (what the layers compute on torch-CPU since it was measured faster), both
taking channels-last frames.

Usage: KERAS_BACKEND=torch python -m benchmarks.profile_step [--image-size 128 64] ...
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np


def _steps(step, n):
    step()
    start = time.perf_counter()
    for _ in range(n):
        step()
    return (time.perf_counter() - start) / n


def torch_tables(args, rows=12):
    from torch.profiler import ProfilerActivity, profile

    from benchmarks import train

    tables = {}
    for kind in ("keras", "reference"):
        wargs = train.worker_parser().parse_args(
            ["--kind", kind, "--image-size", *map(str, args.image_size), "--seq-len",
             str(args.seq_len), "--batch", *map(str, args.batch), "--jit", "false"]
        )  # fmt: skip
        wargs.image_size, wargs.batch = tuple(wargs.image_size), tuple(wargs.batch)
        step = _step_function(kind, wargs)
        step()
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            for _ in range(args.steps):
                step()
        events = sorted(prof.key_averages(), key=lambda e: -e.self_cpu_time_total)
        total = sum(e.self_cpu_time_total for e in events)
        lines = [
            "| operator | self CPU ms / step | share | calls / step |",
            "|---|---|---|---|",
        ]
        for e in events[:rows]:
            lines.append(
                f"| `{e.key}` | {e.self_cpu_time_total / 1000 / args.steps:.1f} | "
                f"{100 * e.self_cpu_time_total / total:.1f}% | {e.count // args.steps} |"
            )
        tables[kind] = (total / 1000 / args.steps, "\n".join(lines))
    return tables


def _step_function(kind, wargs):
    import torch

    from benchmarks import train

    clips, targets = train.make_batch(wargs.batch, wargs.seq_len, wargs.image_size)
    if kind == "reference":
        from benchmarks.reference_torch import ReferenceASANet, ReferenceTrainer

        model = ReferenceASANet.from_preset(wargs.preset, wargs.num_identities)
        trainer = ReferenceTrainer(model)
        x = torch.from_numpy(clips).permute(0, 1, 4, 2, 3).contiguous()
        y = {k: torch.from_numpy(v) for k, v in targets.items()}
        return lambda: trainer.step(x, y)
    from keras_asanet.models import ASANet
    from keras_asanet.training.optimizers import make_optimizer

    model = ASANet.from_preset(wargs.preset, num_identities=wargs.num_identities)
    model.build_for_input((None, wargs.seq_len, *wargs.image_size, 3))
    model.compile(
        optimizer=make_optimizer(center_loss_weight=model.center_loss_weight),
        jit_compile=wargs.jit == "true",
    )
    return lambda: model.train_on_batch(clips, targets)


def xla_conv_share(args):
    """The compiled Keras step against its stem convolution alone, and that convolution in
    PyTorch: how far XLA:CPU's convolutions are from oneDNN's on this machine."""
    import keras
    import torch

    from benchmarks import train

    wargs = train.worker_parser().parse_args(
        ["--kind", "keras", "--image-size", *map(str, args.image_size), "--seq-len",
         str(args.seq_len), "--batch", *map(str, args.batch), "--jit", "true"]
    )  # fmt: skip
    wargs.image_size, wargs.batch = tuple(wargs.image_size), tuple(wargs.batch)
    step_s = _steps(_step_function("keras", wargs), args.steps)
    frames = wargs.batch[0] * wargs.batch[1] * wargs.seq_len
    h, w = wargs.image_size
    rows = []
    for cin, cout, k, stride, size in ((3, 8, 7, 2, (h, w)), (64, 64, 3, 1, (h // 8, w // 8))):
        x = np.random.default_rng(0).standard_normal((frames, *size, cin), dtype=np.float32)
        conv = keras.layers.Conv2D(cout, k, strides=stride, padding="same")
        conv.build(x.shape)
        fn = _keras_conv_grad(conv, x)
        keras_s = _steps(fn, args.steps)
        tconv = torch.nn.Conv2d(cin, cout, k, stride, k // 2)
        tx = torch.from_numpy(x).permute(0, 3, 1, 2).contiguous().requires_grad_()

        def torch_fn(tconv=tconv, tx=tx):
            tconv(tx).square().mean().backward()

        torch_s = _steps(torch_fn, args.steps)
        rows.append(
            f"| {k}x{k} conv {cin}->{cout}, stride {stride}, {frames} frames of "
            f"{size[0]}x{size[1]} | {1000 * keras_s:.1f} | {1000 * torch_s:.1f} | "
            f"{keras_s / torch_s:.1f}x |"
        )
    backend = keras.backend.backend()
    return step_s, "\n".join(
        [
            f"| forward + backward | {backend} (XLA, jitted) ms | PyTorch eager ms | ratio |",
            "|---|---|---|---|",
            *rows,
        ]
    )


def _keras_conv_grad(conv, x):
    import keras

    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        def loss(kernel, bias, x):
            y = conv.convolution_op(x, kernel) + bias
            return (y * y).mean()

        grad = jax.jit(jax.grad(loss, argnums=(0, 1, 2)))
        kernel, bias = conv.kernel.value, conv.bias.value
        xj = jax.numpy.asarray(x)
        return lambda: jax.block_until_ready(grad(kernel, bias, xj))
    import tensorflow as tf

    xt = tf.constant(x)

    @tf.function(jit_compile=True)
    def grad():
        with tf.GradientTape() as tape:
            tape.watch(xt)
            y = conv(xt)
            loss = tf.reduce_mean(y * y)
        return tape.gradient(loss, [xt, *conv.trainable_variables])

    return lambda: [g.numpy() for g in grad()]


def layout_comparison(args, repeats=8):
    """The backbone's forward + backward on the torch backend, computed channels-last (Keras'
    convolutions then transpose around every operator) against channels-first (one
    transpose at the backbone's boundary, what `compute_data_format` picks on torch-CPU),
    interleaved. Both backbones take and return channels-last maps.

    Returns:
        `({compute format: median seconds}, max abs difference of the two layer4 maps)`: both
        backbones start from the same seed, so they compute the same function.
    """
    import keras
    import torch

    from keras_asanet.backbones import AGWResNet
    from keras_asanet.layers import data_format as df
    from keras_asanet.models.asanet_presets import ASANET_PRESETS

    frames = args.batch[0] * args.batch[1] * args.seq_len
    clips = np.random.default_rng(0).uniform(0, 255, (frames, *args.image_size, 3))
    x = torch.tensor(clips, dtype=torch.float32)
    backbone_config = dict(ASANET_PRESETS["asanet_tiny"]["config"]["backbone"], last_stride=1)
    runs, outputs = {}, {}
    rule = df.channels_last_computes_channels_first
    for compute_format in ("channels_last", "channels_first"):
        keras.utils.set_random_seed(0)
        # The compute format is chosen when a layer is created: pin it for this backbone.
        df.channels_last_computes_channels_first = lambda f=compute_format: f == "channels_first"
        try:
            backbone = AGWResNet(data_format="channels_last", **backbone_config)
        finally:
            df.channels_last_computes_channels_first = rule
        if backbone._compute_format != compute_format:
            raise RuntimeError(
                f"the backbone computes {backbone._compute_format}, not {compute_format}"
            )
        outputs[compute_format] = keras.ops.convert_to_numpy(backbone(x)["layer4"])
        weights = [v.value for v in backbone.trainable_weights]

        def step(backbone=backbone, weights=weights):
            loss = keras.ops.mean(backbone(x, training=True)["layer4"] ** 2)
            torch.autograd.grad(loss, weights)

        step()
        runs[compute_format] = step
    times = {k: [] for k in runs}
    for _ in range(repeats):
        for k, step in runs.items():
            start = time.perf_counter()
            step()
            times[k].append(time.perf_counter() - start)
    difference = float(np.max(np.abs(outputs["channels_last"] - outputs["channels_first"])))
    return {k: float(np.median(v)) for k, v in times.items()}, difference


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--image-size", type=int, nargs=2, default=(128, 64))
    p.add_argument("--seq-len", type=int, default=4)
    p.add_argument("--batch", type=int, nargs=2, default=(4, 2))
    p.add_argument("--steps", type=int, default=3)
    p.add_argument(
        "--layouts",
        action="store_true",
        help="torch only: the backbone channels-last against channels-first",
    )
    args = p.parse_args(argv)
    import keras

    backend = keras.backend.backend()
    print(f"backend {backend}, {len(os.sched_getaffinity(0))} CPU(s)\n")
    if args.layouts:
        if backend != "torch":
            p.error("--layouts compares layouts on the torch backend (KERAS_BACKEND=torch)")
        times, difference = layout_comparison(args)
        frames = args.batch[0] * args.batch[1] * args.seq_len
        h, w = args.image_size
        print(
            f"backbone (asanet_tiny) forward + backward, {frames} frames of {h}x{w}, median "
            "of 8 interleaved repeats:\n\n| compute format | seconds |\n|---|---|"
        )
        for k, v in times.items():
            print(f"| {k} | {v:.3f} |")
        last, first = times["channels_last"], times["channels_first"]
        print(
            f"\nchannels-first is {last / first:.2f}x channels-last (speed); layer4 maps "
            f"equal to {difference:.1e}"
        )
        return 0
    if backend == "torch":
        tables = torch_tables(args)
        for kind, label in (("keras", "keras_asanet, torch backend"), ("reference", "reference")):
            seconds, table = tables[kind]
            print(f"{label}: {seconds:.0f} ms of operator CPU time per step\n\n{table}\n")
    else:
        step_s, table = xla_conv_share(args)
        print(f"keras_asanet {backend} jit_compile=True step: {1000 * step_s:.0f} ms\n\n{table}")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    sys.exit(main())
