"""The flags the scripts share, and the backend choice that has to come before Keras.

`scripts/fit.py`, `scripts/ablation.py` and `scripts/evaluate.py` take `--backend`,
`--workers`, `--seq-len` and `--image-size` from here, so the three agree on their names,
defaults and checks; the training flags of fit and ablation and their mapping to a
`RunConfig` are here too. The scripts only parse flags and call library functions.

This module imports nothing but the standard library when it is loaded: `select_backend` must
run before anything imports Keras, and `import keras_asanet` does (it registers the library's
classes). The scripts therefore load this file by its path (`load_cli` in each script) rather
than as `keras_asanet.cli`; both give the same functions.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys

#: --backend name -> (module that must be importable, pip extra that installs it)
BACKEND_PACKAGES = {
    "jax": ("jax", "jax"),
    "torch": ("torch", "torch"),
    "tensorflow": ("tensorflow", "tensorflow"),
}
DEFAULT_BACKEND = "jax"


#: The synthetic seed that evaluate.py and visualize.py draw by default, for --help (Keras is
#: not imported yet): the training runs' held-out seed, `RunConfig.heldout_seed`
#: (tests/cli_test.py keeps them equal).
DEFAULT_SYNTHETIC_SEED = 1000


#: The distance a trained model's features are ranked with, wherever a model is evaluated
#: (training runs, evaluate.py, visualize.py, `evaluate_model`): cosine, as AGW ranks its
#: BN-neck features. Measured, not assumed: on the unseen synthetic seeds it beat Euclidean
#: on every one of the nine models compared (docs/results.md, "Ranking distance"). The
#: ranking functions themselves (`evaluate_ranking`) keep torchreid's Euclidean default.
DEFAULT_METRIC = "cosine"


class BackendError(ValueError):
    """An unknown, missing or too-late `--backend` (the scripts exit with code 2)."""


def positive_int(text):
    """argparse type: an int >= 1 (0 frames or 0 workers is refused, not read as "unset")."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def attribute_channels(text):
    """argparse type of `--attribute-channels`: `"paper"` (C/2, kept as the string) or a
    positive multiple of 4."""
    if text == "paper":
        return text
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected 'paper' or a multiple of 4, got {text!r}"
        ) from None
    if value < 4 or value % 4:
        raise argparse.ArgumentTypeError(f"must be a positive multiple of 4, got {value}")
    return value


def add_backend_argument(parser):
    """`--backend`, default `$KERAS_BACKEND` or jax (the same in every script)."""
    parser.add_argument(
        "--backend",
        default=os.environ.get("KERAS_BACKEND", DEFAULT_BACKEND),
        help=f"{', '.join(BACKEND_PACKAGES)}; chosen before Keras is imported "
        f"(default: $KERAS_BACKEND or {DEFAULT_BACKEND})",
    )
    return parser


def select_backend(name):
    """Sets `KERAS_BACKEND` to `name` before Keras is imported.

    Why a function: Keras fixes its backend when it is first imported, so a script must check
    and set it first, and say clearly what is wrong instead of failing inside an import.

    Raises:
        BackendError: `name` is not a backend, its package is not installed, or Keras was
            already imported with another backend.
    """
    if name not in BACKEND_PACKAGES:
        raise BackendError(
            f"unknown --backend {name!r}; expected one of {sorted(BACKEND_PACKAGES)}."
        )
    module, extra = BACKEND_PACKAGES[name]
    if importlib.util.find_spec(module) is None:
        raise BackendError(
            f"--backend {name} needs the {module!r} package, which is not installed; "
            f'install it with: pip install -e ".[{extra}]"'
        )
    if "keras" in sys.modules:
        import keras

        if keras.backend.backend() != name:
            raise BackendError(
                f"Keras was already imported with the {keras.backend.backend()} backend; "
                f"--backend {name} must be chosen before Keras is imported."
            )
    os.environ["KERAS_BACKEND"] = name


def add_data_arguments(parser, seq_len_default, image_size_default):
    """`--seq-len`, `--image-size` and `--workers`.

    Each defaults to `None`, resolved by the library (the dataset's or the training run's
    clip length and frame size; `RunConfig.workers` while training, `extract_features`'s for
    evaluation), so no script carries its own number. A value below 1 is refused.

    Args:
        parser: the `argparse.ArgumentParser`.
        seq_len_default: how this script resolves an unset `--seq-len` (help text).
        image_size_default: how this script resolves an unset `--image-size` (help text).
    """
    parser.add_argument(
        "--seq-len", type=positive_int, default=None, help=f"T, frames per clip ({seq_len_default})"
    )
    parser.add_argument(
        "--image-size",
        type=positive_int,
        nargs=2,
        metavar=("H", "W"),
        default=None,
        help=f"frame size ({image_size_default})",
    )
    parser.add_argument(
        "--workers",
        type=positive_int,
        default=None,
        help="threads reading frames (default: 1 for the training batches, 4 for the "
        "evaluation's frame decoding)",
    )
    return parser


def add_metric_argument(parser):
    """`--metric`: the distance features are ranked by (training runs, evaluate.py,
    visualize.py), `DEFAULT_METRIC` unless given."""
    parser.add_argument(
        "--metric",
        choices=("cosine", "euclidean"),
        default=DEFAULT_METRIC,
        help=f"distance between features (default {DEFAULT_METRIC}, measured best)",
    )


def add_flip_test_argument(parser, default_help):
    """`--flip-test` / `--no-flip-test` (`None` when neither is given, so that the library
    resolves the default: the dataset's for a training run, the training run's for a saved
    model).

    Args:
        parser: the `argparse.ArgumentParser`.
        default_help: how this script resolves an unset flag (help text).
    """
    parser.add_argument(
        "--flip-test",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="average each test clip's feature with that of the clip mirrored left-right "
        f"(default: {default_help})",
    )


def add_run_arguments(p, ablation=False):
    """The flags of a training run (shared by scripts/fit.py and scripts/ablation.py)."""
    add_backend_argument(p)
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
        help="default: 40 on synthetic, 700 (the paper) otherwise",
    )
    p.add_argument(
        "--batch",
        type=int,
        nargs=2,
        metavar=("P", "K"),
        default=(8, 4),
        help="identities x tracklets per batch (default 8 4, the paper)",
    )
    add_data_arguments(
        p,
        seq_len_default="default 4 on synthetic, 6 (the paper) otherwise",
        image_size_default="default 64 32 on synthetic, 256 128 (the paper) otherwise",
    )
    p.add_argument(
        "--lr",
        type=float,
        default=None,
        help="Adam learning rate (default: 3e-4, the paper, for ImageNet-initialised "
        "ResNet-50; 3e-3 on synthetic, where asanet_tiny starts from scratch)",
    )
    p.add_argument(
        "--weight-decay",
        type=float,
        default=None,
        help="Adam's L2 weight decay (default: 5e-4, the paper, on MARS / Duke; the synthetic "
        "default is RunConfig's, see docs/results.md)",
    )
    p.add_argument(
        "--attribute-head-decay",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="whether the attribute heads get the weight decay too (the paper's Adam decays "
        "every weight; default: on for MARS / Duke, RunConfig's on synthetic)",
    )
    p.add_argument(
        "--asre-attention-decay",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="whether ASRE's query / key convolutions get the weight decay too (default: on "
        "for MARS / Duke, off on synthetic, whose strong decay collapses them and flattens "
        "every mask; see docs/results.md)",
    )
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
        "--bce-weight",
        type=float,
        default=None,
        help="lambda_BCE, overriding the --loss-weights reading's (default: 15 on synthetic, "
        "see docs/results.md; the reading's on MARS / Duke)",
    )
    p.add_argument(
        "--asre-softmax-over",
        choices=("attribute_positions", "identity_positions"),
        default=None,
        help="the axis of ASRE's attention softmax, Eq. 8 (default: identity_positions on "
        "synthetic, see docs/results.md; attribute_positions on MARS / Duke)",
    )
    p.add_argument(
        "--attribute-channels",
        type=attribute_channels,
        default=None,
        help="channels of the two attribute maps, a multiple of 4, or 'paper' for the "
        "paper's C/2 (default: 128 = C on synthetic, see docs/results.md; paper on MARS / "
        "Duke)",
    )
    p.add_argument(
        "--attribute-loss-weighting",
        choices=("none", "positive_ratio"),
        default=None,
        help="the attribute BCE as Eq. 18 (none, the default) or weighted by each slot's "
        "positive ratio in the training split, so rare attributes such as a hat weigh more "
        "(positive_ratio, DeepMAR's weighting; see docs/results.md)",
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
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in --output; every setting not typed is the checkpoint's",
    )
    p.add_argument(
        "--resume-override",
        action="store_true",
        help="with --resume: continue even where typed settings differ from the checkpoint's "
        "(each difference is logged)",
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an earlier run in --output (removes only the files the library writes "
        "there: checkpoints/, model.keras, results.json, curves.png, cmc.png)",
    )
    p.add_argument(
        "--check-frames",
        action="store_true",
        help="decode every frame of the dataset once before training; report all bad files",
    )
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
    add_metric_argument(p)
    add_flip_test_argument(
        p,
        "on for synthetic, see docs/results.md; off for MARS / Duke, as the paper does not "
        "say that it flips",
    )
    p.add_argument(
        "--identities",
        type=int,
        default=None,
        help="synthetic dataset identities, half of them for training (default: "
        "RunConfig.synthetic_identities)",
    )
    p.add_argument(
        "--heldout-seed",
        type=int,
        default=1000,
        help="synthetic only: after training, also evaluate on the test split of the synthetic "
        "dataset of this seed (unseen identities and scenes; default 1000)",
    )
    p.add_argument(
        "--heldout-identities",
        type=int,
        default=None,
        help="synthetic only: identities of that held-out dataset (default: "
        "RunConfig.heldout_identities, whatever --identities is, so runs that train on more "
        "identities meet the same test)",
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
        "--clip-dtype",
        choices=("uint8", "float32"),
        default="uint8",
        help="dtype of the training clips the loader yields (default uint8: a quarter of the "
        "bytes to write and move; the model casts and normalises inside; the augmented pixels "
        "differ from float32 clips by rounding only)",
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
    p.add_argument(
        "--prefetch",
        type=int,
        choices=(0, 1),
        default=None,
        help="1: build the next training batch in a background thread while the model trains "
        "on this one (the same batches either way); default: RunConfig.prefetch",
    )
    p.add_argument(
        "--no-retain-freed-memory",
        action="store_true",
        help="leave glibc's malloc settings as they are (by default the run keeps the memory "
        "a training step frees instead of returning it to the kernel after every step: "
        "keras_asanet.training.freed_memory; the same weights either way)",
    )
    p.add_argument("--quiet", action="store_true")
    return p


#: The `RunConfig` fields a flag sets where the names differ (see `config_from_args`).
FLAG_FIELDS = {
    "backend": (),
    "lr": ("learning_rate",),
    "no_pmi": ("pmi",),
    "no_attributes": ("attributes",),
    "identities": ("synthetic_identities",),
    "no_heldout_eval": ("heldout_seed",),
    "untrained_eval": ("eval_untrained",),
    "no_untrained_eval": ("eval_untrained",),
    "quiet": ("verbose",),
    "no_retain_freed_memory": ("retain_freed_memory",),
}


def typed_fields(argv, ablation=False):
    """The `RunConfig` fields set by flags present in `argv` (typed, not defaulted).

    Why: `--resume` takes every other setting from the checkpoint
    (`keras_asanet.training.runner.with_saved_settings`), so a changed default never makes a
    plain `--resume` differ from the saved run.
    """
    parser = argparse.ArgumentParser(add_help=False)
    add_run_arguments(parser, ablation=ablation)
    for action in parser._actions:
        # On the actions, not with set_defaults: argparse would then parse the SUPPRESS
        # string of an absent flag with the flag's type.
        action.default = argparse.SUPPRESS
    known, _ = parser.parse_known_args(argv)
    fields = set()
    for dest in vars(known):
        fields.update(FLAG_FIELDS.get(dest, (dest,)))
    return fields


def config_from_args(args):
    """The `RunConfig` of parsed `add_run_arguments` flags; unset flags take the dataset's
    defaults (`keras_asanet.training.runner.dataset_defaults`). Imports Keras: call it after
    `select_backend`."""
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
        "weight_decay": args.weight_decay,
        "attribute_head_decay": args.attribute_head_decay,
        "asre_attention_decay": args.asre_attention_decay,
        "bce_weight": args.bce_weight,
        "asre_softmax_over": args.asre_softmax_over,
        "attribute_loss_weighting": args.attribute_loss_weighting,
        "attribute_channels": args.attribute_channels,
        "flip_test": args.flip_test,
    }
    settings = dataset_defaults(args.dataset)
    if args.loss_weights != "swapped":
        # A typed reading means its own lambda_BCE, not the synthetic recipe's 15.
        settings["bce_weight"] = None
    settings.update({k: v for k, v in given.items() if v is not None})
    if settings.get("attribute_channels") == "paper":
        settings["attribute_channels"] = None
    if args.workers is not None:
        settings["workers"] = args.workers
    # Flags whose unset value is the RunConfig default (one place holds the number).
    for flag, field in (
        ("prefetch", "prefetch"),
        ("identities", "synthetic_identities"),
        ("heldout_identities", "heldout_identities"),
    ):
        if getattr(args, flag) is not None:
            settings[field] = getattr(args, flag)
    return RunConfig(
        dataset=args.dataset,
        root=args.root,
        batch=tuple(args.batch),
        pmi=False if args.no_pmi else None,
        attributes=not args.no_attributes,
        pretrained=args.pretrained,
        mixed_precision=args.mixed_precision,
        jit_compile=args.jit_compile,
        resume=args.resume,
        resume_override=args.resume_override,
        overwrite=args.overwrite,
        check_frames=args.check_frames,
        output=args.output,
        seed=args.seed,
        eval_every=args.eval_every,
        eval_mode=args.eval_mode,
        metric=args.metric,
        eval_untrained=args.untrained_eval and not args.no_untrained_eval,
        dataset_seed=args.dataset_seed,
        clip_dtype=args.clip_dtype,
        heldout_seed=None
        if args.no_heldout_eval or args.dataset != "synthetic"
        else (args.heldout_seed),
        loss_weights=args.loss_weights,
        retain_freed_memory=not args.no_retain_freed_memory,
        verbose=0 if args.quiet else 1,
        **settings,
    )
