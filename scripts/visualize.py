"""Draws the figures of a trained model on a dataset's test split into a folder.

Usage:
    python scripts/visualize.py --weights runs/asanet/model.keras --dataset synthetic \
        --output runs/asanet/figures [--backend jax|torch|tensorflow]
    python scripts/visualize.py --weights model.keras --dataset mars --root PATH --output DIR

Writes `retrieval.png` (top-k retrieval, green / red borders for true / false matches),
`cmc.png` (beside the raw-pixels baseline), `tsne_pose.png` and `tsne_motion.png` (needs
scikit-learn: pip install "keras_asanet[vis]"), `attributes.png` (confusion per attribute),
`masks_<i>.png` (ASRE masks of both branches, ground-truth person outlined on synthetic data),
`grad_cam_<i>.png` (Grad-CAM of the identity score), `curves.png` (training curves, when the
run's checkpoints are beside the model) and `index.html`, which shows them and says which
figures were left out and why.

`--dataset synthetic` without `--root` builds (or reuses) the synthetic dataset of
`--synthetic-seed` (default 1000, a seed never used for training) at the model's training
size, as `scripts/evaluate.py` does. Frame size and clip length default to the training run's
(its `results.json` beside the checkpoint), else 256x128 and T = 6.

Exit code 2 with a message for: an unknown or uninstalled --backend, an unknown dataset name, a
missing dataset root, a missing or unreadable checkpoint, and an --output that is a file.
"""

from __future__ import annotations

import argparse
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
    p.add_argument("--weights", required=True, help="trained model, a .keras file")
    p.add_argument("--dataset", required=True, help="mars, duke or synthetic")
    p.add_argument("--output", required=True, help="folder for the PNGs and index.html")
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
        help="identities of the synthetic dataset built (default: the training run's)",
    )
    p.add_argument("--cache-dir", default=None, help="folder of the synthetic datasets")
    p.add_argument("--setup", choices=("usual", "mixing"), default="usual")
    cli.add_metric_argument(p)
    p.add_argument("--mode", choices=("dense", "sampled"), default="dense")
    cli.add_flip_test_argument(p, "what the training run's results.json says it used, else off")
    cli.add_data_arguments(
        p,
        seq_len_default="default: the training run's, else 6",
        image_size_default="default: the model's training size if found, else 256 128",
    )
    p.add_argument("--batch-size", type=cli.positive_int, default=32)
    p.add_argument("--queries", type=cli.positive_int, default=4, help="rows of the grid")
    p.add_argument("--top-k", type=cli.positive_int, default=5, help="gallery items per row")
    p.add_argument(
        "--tracklets",
        type=int,
        default=2,
        help="query tracklets drawn with their masks and Grad-CAM (0: none)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


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
    if os.path.exists(args.output) and not os.path.isdir(args.output):
        parser.error(f"--output {args.output!r} is a file; give a folder.")

    from keras_asanet.data import get_dataset
    from keras_asanet.evaluation import trained_model
    from keras_asanet.models.saving import load_model
    from keras_asanet.visualization.report import training_history, write_visual_report

    try:
        model = load_model(args.weights, compile=False)
    except Exception as err:  # noqa: BLE001 - any load failure is reported the same way
        parser.error(f"could not load checkpoint {args.weights!r}: {err}")
    run_config = trained_model.training_run_config(args.weights)
    if args.image_size:
        image_size = tuple(args.image_size)
    else:
        image_size, _ = trained_model.training_image_size(model, run_config)
    seq_len = trained_model.training_seq_len(run_config, args.seq_len)
    flip = trained_model.training_flip_test(run_config, args.flip_test)
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
        image_size = image_size or unseen.image_size
        print(unseen.describe())
        try:
            root = unseen.build()
        except (ValueError, OSError) as err:
            parser.error(f"could not build the synthetic dataset at {unseen.root!r}: {err}")
    try:
        dataset = get_dataset(reader_name, root)
    except (ValueError, FileNotFoundError, OSError) as err:
        parser.error(f"could not read {dataset_name} from {root!r}: {err}")

    report = write_visual_report(
        model,
        dataset,
        args.output,
        setup=args.setup,
        mode=args.mode,
        seq_len=seq_len,
        image_size=image_size,
        batch_size=args.batch_size,
        metric=args.metric,
        num_queries=args.queries,
        top_k=args.top_k,
        flip=flip,
        num_tracklets=args.tracklets,
        history=training_history(args.weights),
        verbose=not args.quiet,
        **({} if args.workers is None else {"num_workers": args.workers}),
    )
    for name, _ in report.figures:
        print(f"wrote {os.path.join(args.output, name)}")
    for note in report.notes:
        print(f"not drawn: {note}")
    print(f"open {report.index}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
