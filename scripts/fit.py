"""Trains and evaluates ASA-Net: the main job of keras_asanet.

With no dataset flags it builds the synthetic MARS-layout dataset once (cached under
~/.keras_asanet) and trains the CPU-sized `asanet_tiny` preset, then prints rank-1/5/10,
mAP, mINP and attribute accuracy and writes results.json, model.keras, curves.png and cmc.png
into --output. With `--dataset mars --root PATH` (or duke) and `--preset asanet_b` it runs the
paper's recipe (8x4 PK, T = 6, 256x128, 700 epochs, lr x0.1 at 100/250/350) on a GPU machine.

Examples:
    python scripts/fit.py --backend jax
    python scripts/fit.py --backend torch --dataset mars --root /data/MARS --preset asanet_b \\
        --epochs 700 --batch 8 4 --seq-len 6 --image-size 256 128 --pretrained resnet50.pth
"""

import argparse
import importlib.util
import os
import sys

BACKEND_PACKAGES = {
    "jax": ("jax", "jax"),
    "torch": ("torch", "torch"),
    "tensorflow": ("tensorflow", "tensorflow"),
}


def add_run_arguments(p, ablation=False):
    """The flags of a training run (shared by scripts/fit.py and scripts/ablation.py)."""
    p.add_argument(
        "--backend",
        default=os.environ.get("KERAS_BACKEND", "jax"),
        help="jax, torch or tensorflow (default: $KERAS_BACKEND or jax)",
    )
    p.add_argument("--dataset", default="synthetic", help="synthetic (default), mars or duke")
    p.add_argument("--root", help="dataset folder (for synthetic: where to build/cache it)")
    p.add_argument(
        "--preset",
        default=None,
        help="asanet_b, asanet_a, asanet_b_pmi, asanet_a_pmi or asanet_tiny "
        "(default: asanet_tiny on synthetic, asanet_b otherwise)",
    )
    p.add_argument(
        "--epochs",
        type=int,
        default=None,
        help="default: 120 on synthetic, 700 (the paper) otherwise",
    )
    p.add_argument(
        "--batch",
        type=int,
        nargs=2,
        metavar=("P", "K"),
        default=(8, 4),
        help="identities x tracklets per batch (default 8 4, the paper)",
    )
    p.add_argument("--seq-len", type=int, default=None, help="T (default 4 synthetic, 6 paper)")
    p.add_argument(
        "--image-size",
        type=int,
        nargs=2,
        metavar=("H", "W"),
        default=None,
        help="default 64 32 synthetic, 256 128 paper",
    )
    p.add_argument(
        "--lr",
        type=float,
        default=None,
        help="Adam learning rate (default: 3e-4, the paper, for ImageNet-initialised "
        "ResNet-50; 3e-3 on synthetic, where asanet_tiny starts from scratch)",
    )
    p.add_argument("--weight-decay", type=float, default=5e-4)
    p.add_argument(
        "--decay-epochs",
        type=int,
        nargs="+",
        default=None,
        help="epochs of the x0.1 steps (default: 100 250 350 scaled to --epochs/700)",
    )
    p.add_argument("--no-pmi", action="store_true", help="disable the PMI triplet loss")
    p.add_argument(
        "--loss-weights",
        choices=("swapped", "printed"),
        default="swapped",
        help="reading of the paper's lambda_cent / lambda_BCE: swapped = 0.0005 / 1.5 "
        "(default, wins the ablation in docs/results.md), printed = 1.5 / 0.0005",
    )
    p.add_argument(
        "--identity-pooling",
        choices=("avg", "gem"),
        default=None,
        help="spatial pooling of the signed identity maps (default: the preset's, avg)",
    )
    p.add_argument(
        "--no-attributes",
        action="store_true",
        help="no attribute supervision (and no PMI): the baseline of Table VII",
    )
    p.add_argument("--pretrained", help="local ImageNet ResNet-50 weights (.pth/.safetensors/.h5)")
    p.add_argument(
        "--mixed-precision",
        nargs="?",
        const="mixed_float16",
        default=None,
        help="mixed_float16 (default when given) or mixed_bfloat16",
    )
    p.add_argument("--jit-compile", choices=("auto", "true", "false"), default="auto")
    p.add_argument("--resume", action="store_true", help="continue the run in --output")
    default_output = "runs/ablation" if ablation else "runs/asanet"
    p.add_argument(
        "--output", default=default_output, help=f"output folder (default {default_output})"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--eval-every",
        type=int,
        default=0,
        help="evaluate every N epochs (default: only at the end)",
    )
    p.add_argument("--eval-mode", choices=("dense", "sampled"), default="dense")
    p.add_argument("--workers", type=int, default=1, help="data-loading threads")
    p.add_argument(
        "--identities", type=int, default=300, help="synthetic dataset identities (half train)"
    )
    p.add_argument(
        "--heldout-seed",
        type=int,
        default=1000,
        help="synthetic only: after training, also evaluate on the test split of the synthetic "
        "dataset of this seed (unseen identities and scenes; default 1000)",
    )
    p.add_argument(
        "--no-heldout-eval", action="store_true", help="skip that unseen-scenes evaluation"
    )
    p.add_argument(
        "--random-erasing",
        type=float,
        default=None,
        help="random-erasing probability of the training clips (default: 0.5, the paper's, on "
        "MARS / Duke; 0 on synthetic, see docs/results.md)",
    )
    p.add_argument(
        "--color-jitter",
        type=float,
        default=None,
        help="per-clip lighting change of the training clips: brightness x [1-j, 1+j] and a "
        "per-channel tint x [1-j/2, 1+j/2] (default: 0.4 on synthetic, 0 on MARS / Duke)",
    )
    p.add_argument(
        "--dataset-seed",
        type=int,
        default=0,
        help="seed of the synthetic dataset (independent of --seed, the training seed)",
    )
    p.add_argument(
        "--untrained-eval",
        action="store_true",
        help="also evaluate the untrained model first (the raw-pixels baseline printed beside "
        "every evaluation is the usual reference)",
    )
    # Kept so older command lines still run; the untrained evaluation is now off by default.
    p.add_argument("--no-untrained-eval", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--quiet", action="store_true")
    return p


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_run_arguments(p)
    return p.parse_args(argv)


def select_backend(name):
    """Sets KERAS_BACKEND before Keras is imported; errors clearly if it is not installed."""
    if name not in BACKEND_PACKAGES:
        raise SystemExit(
            f"error: unknown --backend {name!r}; expected one of {sorted(BACKEND_PACKAGES)}."
        )
    module, extra = BACKEND_PACKAGES[name]
    if importlib.util.find_spec(module) is None:
        raise SystemExit(
            f"error: --backend {name} needs the {module!r} package, which is not installed; "
            f'install it with: pip install -e ".[{extra}]"'
        )
    if "keras" in sys.modules:
        import keras

        if keras.backend.backend() != name:
            raise SystemExit(
                f"error: Keras was already imported with the {keras.backend.backend()} backend; "
                f"--backend {name} must be chosen before Keras is imported."
            )
    os.environ["KERAS_BACKEND"] = name


def config_from_args(args):
    """The `RunConfig` of parsed flags; unset flags take the dataset's defaults
    (`keras_asanet.training.runner.dataset_defaults`)."""
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from keras_asanet.training.runner import RunConfig, dataset_defaults

    given = {
        "preset": args.preset,
        "epochs": args.epochs,
        "seq_len": args.seq_len,
        "image_size": None if args.image_size is None else tuple(args.image_size),
        "learning_rate": args.lr,
        "decay_epochs": None if args.decay_epochs is None else tuple(args.decay_epochs),
        "identity_pooling": args.identity_pooling,
        "random_erasing": args.random_erasing,
        "color_jitter": args.color_jitter,
    }
    settings = dataset_defaults(args.dataset)
    settings.update({k: v for k, v in given.items() if v is not None})
    return RunConfig(
        dataset=args.dataset,
        root=args.root,
        batch=tuple(args.batch),
        weight_decay=args.weight_decay,
        pmi=False if args.no_pmi else None,
        attributes=not args.no_attributes,
        pretrained=args.pretrained,
        mixed_precision=args.mixed_precision,
        jit_compile=args.jit_compile,
        resume=args.resume,
        output=args.output,
        seed=args.seed,
        eval_every=args.eval_every,
        eval_mode=args.eval_mode,
        eval_untrained=args.untrained_eval and not args.no_untrained_eval,
        workers=args.workers,
        synthetic_identities=args.identities,
        dataset_seed=args.dataset_seed,
        heldout_seed=None
        if args.no_heldout_eval or args.dataset != "synthetic"
        else (args.heldout_seed),
        loss_weights=args.loss_weights,
        verbose=0 if args.quiet else 1,
        **settings,
    )


def main(argv=None):
    args = parse_args(argv)
    try:
        select_backend(args.backend)
    except SystemExit as exit_:
        print(exit_.code, file=sys.stderr)
        return 2
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from keras_asanet.training.checkpoint import CheckpointError
    from keras_asanet.training.runner import UsageError, train

    config = config_from_args(args)
    try:
        train(config)
    except (UsageError, CheckpointError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except FloatingPointError as err:
        print(f"error: {err}", file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
