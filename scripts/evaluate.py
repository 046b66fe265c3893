"""Evaluates a trained checkpoint on MARS, DukeMTMC-VideoReID or a synthetic dataset.

Usage:
    python scripts/evaluate.py --backend torch --dataset mars --root PATH --weights model.keras
        [--setup usual|mixing] [--metric euclidean|cosine] [--mode dense|sampled]
        [--trained-on duke] [--camera-pairs] [--output results.json]
    python scripts/evaluate.py --weights runs/asanet/model.keras --dataset synthetic \
        --synthetic-seed 1000 [--identities N] [--image-size H W]

Prints the protocol (which MARS setup, how many queries were scored), CMC rank-1/5/10/20, mAP,
mINP, the raw-pixels baseline on the same protocol beside the model's numbers (`--no-baseline`
skips it), attribute accuracy when the model outputs attribute logits, the breakdown by the
queries' quality flags / pose / motion and, on synthetic data, the ASRE mask score against the
ground-truth person masks; `--output` writes the same as JSON.

`--dataset synthetic` without `--root` builds (or reuses) the synthetic dataset of
`--synthetic-seed` at `keras_asanet.data.default_synthetic_root(identities, image size, seed)`:
its test split is unseen identities in unseen scenes for a model trained on another seed.

Frame size and clip length default to the model's training ones when they can be found (the
run's `results.json` beside the checkpoint, else the size the model was built for), else
256x128 and T = 6.

Exit code 2 with a message for: an unknown or uninstalled --backend, an unknown dataset name, a
missing dataset root, a missing or unreadable checkpoint, and a checkpoint whose identity
classifier does not match the dataset (a checkpoint of another dataset: pass `--trained-on` for
a cross-dataset evaluation).
"""

from __future__ import annotations

import argparse
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from scripts._cli import cli  # noqa: E402  (keras_asanet/cli.py, loaded before Keras)

DEFAULT_SYNTHETIC_SEED = cli.DEFAULT_SYNTHETIC_SEED


def _parser():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    cli.add_backend_argument(p)
    p.add_argument(
        "--dataset",
        required=True,
        help="mars, duke or synthetic (a MARS-layout folder); its test split is evaluated",
    )
    p.add_argument(
        "--root",
        default=None,
        help="dataset root folder (optional for --dataset synthetic: see --synthetic-seed)",
    )
    p.add_argument(
        "--synthetic-seed",
        type=int,
        default=None,
        help="--dataset synthetic without --root: build or reuse the dataset of this seed "
        f"(default {DEFAULT_SYNTHETIC_SEED}, a seed never used for training)",
    )
    p.add_argument(
        "--identities",
        type=int,
        default=None,
        help="identities of the synthetic dataset built (default: the training run's, else "
        "the training default)",
    )
    p.add_argument(
        "--cache-dir",
        default=None,
        help="folder holding the synthetic datasets (default ~/.keras_asanet/synthetic)",
    )
    p.add_argument("--weights", required=True, help="trained model, a .keras file")
    p.add_argument("--setup", choices=("usual", "mixing"), default="usual")
    cli.add_metric_argument(p)
    p.add_argument("--mode", choices=("dense", "sampled"), default="dense")
    cli.add_flip_test_argument(p, "what the training run's results.json says it used, else off")
    p.add_argument(
        "--rerank",
        action="store_true",
        help="k-reciprocal re-ranking (Zhong et al. 2017) of the model's and the raw-pixels "
        "baseline's distances; off by default (see docs/results.md)",
    )
    p.add_argument("--rerank-k1", type=int, default=None, help="re-ranking k1 (default 20)")
    p.add_argument("--rerank-k2", type=int, default=None, help="re-ranking k2 (default 6)")
    p.add_argument(
        "--rerank-lambda", type=float, default=None, help="re-ranking lambda (default 0.3)"
    )
    cli.add_data_arguments(
        p,
        seq_len_default="default: the training run's, else 6",
        image_size_default="default: the model's training size if found, else 256 128; also "
        "the frame size of a synthetic dataset built here",
    )
    p.add_argument(
        "--batch-size",
        type=int,
        default=None,
        help="clips per extraction batch (default: the training run's, else 32)",
    )
    p.add_argument("--max-rank", type=int, default=50)
    p.add_argument(
        "--trained-on",
        default=None,
        help="dataset the checkpoint was trained on, for a cross-dataset evaluation",
    )
    p.add_argument("--camera-pairs", action="store_true", help="add the camera-pair matrix")
    p.add_argument("--no-breakdown", action="store_true", help="skip the per-query breakdown")
    p.add_argument("--no-baseline", action="store_true", help="skip the raw-pixels baseline")
    p.add_argument(
        "--mask-tracklets",
        type=int,
        default=64,
        help="test tracklets whose ASRE masks are scored on synthetic data (0: none)",
    )
    p.add_argument(
        "--mask-ties",
        choices=("average", "position"),
        default="average",
        help="positions a mask (or the centre prior) does not tell apart: left to chance "
        "(average, the default) or given to the upper cells (position, the rule of older "
        "results)",
    )
    p.add_argument(
        "--mask-cells",
        choices=("centred", "tiled"),
        default="centred",
        help="where a mask cell lies on the frame: the window centred on its feature "
        "(centred, the default; pixel (s*i, s*j) of a stride-s map) or an equal tile of the "
        "frame (tiled, the geometry of scores written before 2026-12-07)",
    )
    p.add_argument(
        "--feature-parts",
        action="store_true",
        help="also rank each part of an ASANet's test feature alone (identity features, "
        "attribute feature): which part carries the ranking",
    )
    p.add_argument("--output", default=None, help="write the results as JSON here")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def _rerank(parser, args):
    """`False`, or the re-ranking settings the flags give (checked before any model loads)."""
    from keras_asanet.evaluation.reranking import rerank_settings

    given = {
        key: value
        for key, value in (
            ("k1", args.rerank_k1),
            ("k2", args.rerank_k2),
            ("lambda_value", args.rerank_lambda),
        )
        if value is not None
    }
    if given and not args.rerank:
        parser.error("--rerank-k1 / --rerank-k2 / --rerank-lambda need --rerank.")
    if not args.rerank:
        return False
    # Named by their flags here; rerank_settings checks the same ranges for library callers.
    for key in ("k1", "k2"):
        if given.get(key, 1) < 1:
            parser.error(f"--rerank-{key} must be >= 1, got {given[key]}.")
    if not 0.0 <= given.get("lambda_value", 0.0) <= 1.0:
        parser.error(f"--rerank-lambda must be in [0, 1], got {given['lambda_value']}.")
    return rerank_settings(given)


def main(argv=None):
    parser = _parser()
    args = parser.parse_args(argv)
    try:  # before anything imports Keras
        cli.select_backend(args.backend)
    except cli.BackendError as err:
        parser.error(str(err))
    from keras_asanet.evaluation.protocols import canonical_dataset_name

    try:
        dataset_name = canonical_dataset_name(args.dataset)
        trained_on = None if args.trained_on is None else canonical_dataset_name(args.trained_on)
    except ValueError as err:
        parser.error(str(err))
    reader_name = "synthetic" if args.dataset.lower() == "synthetic" else dataset_name
    build_synthetic = reader_name == "synthetic" and args.root is None
    if args.root is None and not build_synthetic:
        parser.error(f"--dataset {args.dataset} needs --root PATH (the dataset folder).")
    if args.synthetic_seed is not None and not build_synthetic:
        parser.error("--synthetic-seed builds a synthetic dataset: use it without --root.")
    if args.root is not None and not os.path.isdir(args.root):
        parser.error(f"dataset root {args.root!r} does not exist or is not a folder.")
    if not os.path.isfile(args.weights):
        parser.error(f"checkpoint {args.weights!r} does not exist.")
    if not args.weights.endswith(".keras"):
        parser.error(
            f"checkpoint {args.weights!r} is not a .keras model file (the whole model saved "
            "with model.save('....keras') is needed)."
        )
    rerank = _rerank(parser, args)
    # Checked before the evaluation runs, not after it, when the results would be lost.
    if args.output:
        out_dir = os.path.dirname(os.path.abspath(args.output))
        if os.path.isdir(args.output):
            parser.error(f"--output {args.output!r} is a folder; give a file name (results.json).")
        if not os.path.isdir(out_dir):
            parser.error(f"--output {args.output!r}: the folder {out_dir!r} does not exist.")

    try:
        from keras_asanet.data import get_dataset
    except ImportError as err:
        parser.error(f"the dataset readers are not available in this installation: {err}")
    try:  # registers the library's classes so that the checkpoint can be deserialised
        import keras_asanet.models  # noqa: F401
    except ImportError:
        pass
    from keras_asanet.evaluation import evaluate_model, trained_model
    from keras_asanet.evaluation.asanet_evaluation import evaluate_asanet, is_asanet
    from keras_asanet.evaluation.mask_score import add_mask_score

    try:
        from keras_asanet.models.saving import load_model  # names a truncated file

        model = load_model(args.weights, compile=False)
    except Exception as err:  # noqa: BLE001 - any load failure is reported the same way
        parser.error(f"could not load checkpoint {args.weights!r}: {err}")
    run_config = trained_model.training_run_config(args.weights)
    if args.image_size:
        image_size, size_source = tuple(args.image_size), "--image-size"
    else:
        image_size, size_source = trained_model.training_image_size(model, run_config)
    seq_len = trained_model.training_seq_len(run_config, args.seq_len)
    flip = trained_model.training_flip_test(run_config, args.flip_test)
    try:
        batch_size = trained_model.training_eval_batch_size(run_config, args.batch_size)
    except ValueError as err:
        parser.error(f"--batch-size: {err}")
    if args.flip_test is None and flip:
        print("Flip test on (the training run's results.json; --no-flip-test turns it off).")
    root = args.root
    if build_synthetic:
        from keras_asanet.evaluation.unseen_synthetic import unseen_synthetic

        unseen = unseen_synthetic(
            run_config,
            seed=args.synthetic_seed,
            identities=args.identities,
            image_size=image_size,
            cache_dir=args.cache_dir,
        )
        if image_size is None:
            image_size, size_source = unseen.image_size, "the synthetic frames' size"
        print(unseen.describe())
        if unseen.warning:
            print(f"warning: {unseen.warning}")
        try:
            root = unseen.build()
        except (ValueError, OSError) as err:
            parser.error(f"could not build the synthetic dataset at {unseen.root!r}: {err}")
    try:
        dataset = get_dataset(reader_name, root)
    except (ValueError, FileNotFoundError, OSError) as err:
        parser.error(f"could not read {dataset_name} from {root!r}: {err}")
    if image_size is not None and size_source != "--image-size":
        print(f"Frames resized to {image_size[0]}x{image_size[1]} ({size_source}); T = {seq_len}.")

    # A synthetic dataset of another seed is never the training data: its training split's
    # size says nothing about the checkpoint.
    if trained_on in (None, dataset_name) and not build_synthetic:
        try:
            trained_model.check_identity_classes(model, dataset, dataset_name)
        except trained_model.ClassCountMismatch as err:
            parser.error(
                f"checkpoint {args.weights!r}: {err} For a cross-dataset evaluation pass "
                "--trained-on <dataset>."
            )

    # An ASANet is asked for its output dict (feature and attribute logits).
    if args.feature_parts and not is_asanet(model):
        parser.error("--feature-parts needs an ASANet checkpoint (its feature's parts are known).")
    extra = {"feature_parts": True} if args.feature_parts else {}
    evaluate = evaluate_asanet if is_asanet(model) else evaluate_model
    report = evaluate(
        model,
        dataset,
        setup=args.setup,
        trained_on=trained_on,
        metric=args.metric,
        mode=args.mode,
        seq_len=seq_len,
        batch_size=batch_size,
        image_size=image_size,
        max_rank=args.max_rank,
        breakdown=not args.no_breakdown,
        camera_pairs=args.camera_pairs,
        verbose=not args.quiet,
        baseline=not args.no_baseline,
        flip=flip,
        rerank=rerank,
        # Unset: evaluate_model's own default.
        **({} if args.workers is None else {"num_workers": args.workers}),
        **extra,
    )
    if reader_name == "synthetic" and args.mask_tracklets > 0:
        add_mask_score(
            report,
            model,
            [*dataset.query, *dataset.gallery],
            seq_len=seq_len,
            image_size=report.settings["image_size"],
            max_tracklets=args.mask_tracklets,
            ties=args.mask_ties,
            cell_layout=args.mask_cells,
        )
    print(report)
    if args.output:
        payload = report.to_dict()
        payload["checkpoint"] = os.path.abspath(args.weights)
        payload["backend"] = args.backend
        payload["dataset_root"] = os.path.abspath(root)
        with open(args.output, "w") as f:
            json.dump(payload, f, indent=2)
        print(f"results written to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
