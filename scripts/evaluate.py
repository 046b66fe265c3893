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

Exit code 2 with a message for: an unknown dataset name, a missing dataset root, a missing or
unreadable checkpoint, and a checkpoint whose identity classifier does not match the dataset
(a checkpoint of another dataset: pass `--trained-on` for a cross-dataset evaluation).
"""

from __future__ import annotations

import argparse
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BACKENDS = ("jax", "torch", "tensorflow")
#: Training identities of the public datasets (the classifier width of their checkpoints).
TRAIN_IDENTITIES = {"mars": 625, "duke": 702}
#: The synthetic seed evaluated by default: training runs use seed 0.
DEFAULT_SYNTHETIC_SEED = 1000


def _parser():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--backend",
        choices=BACKENDS,
        default=os.environ.get("KERAS_BACKEND", "torch"),
        help="Keras backend (set before Keras is imported); default $KERAS_BACKEND or torch",
    )
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
    p.add_argument("--metric", choices=("euclidean", "cosine"), default="euclidean")
    p.add_argument("--mode", choices=("dense", "sampled"), default="dense")
    p.add_argument(
        "--seq-len", type=int, default=None, help="T (default: the training run's, else 6)"
    )
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument(
        "--image-size",
        type=int,
        nargs=2,
        metavar=("H", "W"),
        default=None,
        help="frame size (default: the model's training size if found, else 256 128); also "
        "the frame size of a synthetic dataset built here",
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
    p.add_argument("--workers", type=int, default=4, help="frame decoding threads")
    p.add_argument("--output", default=None, help="write the results as JSON here")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def _model_num_classes(model):
    for attr in ("num_classes", "num_identities"):
        value = getattr(model, attr, None)
        if isinstance(value, int) and value > 0:
            return value
    try:
        config = model.get_config()
    except Exception:  # noqa: BLE001 - a model without a usable config
        return None
    for key in ("num_classes", "num_identities"):
        if isinstance(config.get(key), int) and config[key] > 0:
            return config[key]
    return None


def _run_config(weights):
    """The `config` of the training run's `results.json` beside the checkpoint, or `{}`."""
    path = os.path.join(os.path.dirname(os.path.abspath(weights)), "results.json")
    try:
        with open(path) as f:
            config = json.load(f).get("config") or {}
    except (OSError, ValueError, AttributeError):
        return {}
    return config if isinstance(config, dict) else {}


def _size(value):
    if isinstance(value, (list, tuple)) and len(value) == 2:
        if all(isinstance(v, int) and v > 0 for v in value):
            return (int(value[0]), int(value[1]))
    return None


def _training_image_size(model, run_config):
    """`(size, where it came from)`: the model's fixed input size, else the training run's
    (`results.json`), else the size the model was built for, else `(None, None)`."""
    from keras_asanet.evaluation.feature_extraction import _infer_image_size

    fixed = _infer_image_size(model)
    if fixed:
        return fixed, "the model's input size"
    size = _size(run_config.get("image_size"))
    if size:
        return size, "the training run's results.json"
    try:
        shape = (model.get_build_config() or {}).get("input_shape")
    except Exception:  # noqa: BLE001 - best effort
        shape = None
    if isinstance(shape, (list, tuple)) and len(shape) == 5:
        size = _size(list(shape[2:4]))
        if size:
            return size, "the size the model was built for"
    return None, None


def main(argv=None):
    parser = _parser()
    args = parser.parse_args(argv)
    # The backend must be fixed before anything imports Keras.
    os.environ["KERAS_BACKEND"] = args.backend
    if ROOT not in sys.path:
        sys.path.insert(0, ROOT)
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

    import keras

    try:
        from keras_asanet.data import get_dataset
    except ImportError as err:
        parser.error(f"the dataset readers are not available in this installation: {err}")
    try:  # registers the library's classes so that the checkpoint can be deserialised
        import keras_asanet.models  # noqa: F401
    except ImportError:
        pass
    from keras_asanet.evaluation import evaluate_model

    try:
        model = keras.saving.load_model(args.weights, compile=False)
    except Exception as err:  # noqa: BLE001 - any load failure is reported the same way
        parser.error(f"could not load checkpoint {args.weights!r}: {err}")
    run_config = _run_config(args.weights)
    if args.image_size:
        image_size, size_source = tuple(args.image_size), "--image-size"
    else:
        image_size, size_source = _training_image_size(model, run_config)
    seq_len = args.seq_len or run_config.get("seq_len") or 6
    root = args.root
    if build_synthetic:
        from keras_asanet.data import default_synthetic_root, make_synthetic_mars
        from keras_asanet.training.runner import RunConfig

        seed = DEFAULT_SYNTHETIC_SEED if args.synthetic_seed is None else args.synthetic_seed
        identities = (
            args.identities
            or run_config.get("synthetic_identities")
            or RunConfig.synthetic_identities
        )
        frame_size = image_size or tuple(RunConfig.image_size)
        if image_size is None:
            image_size, size_source = frame_size, "the synthetic frames' size"
        root = default_synthetic_root(identities, frame_size, seed, base=args.cache_dir)
        print(
            f"Synthetic dataset of seed {seed} ({identities} identities, "
            f"{frame_size[0]}x{frame_size[1]}) at {root}: its test split is unseen identities "
            "in unseen scenes for a model trained on another seed."
        )
        if run_config.get("dataset") == "synthetic":
            trained_seed = run_config.get("dataset_seed", run_config.get("seed"))
            if trained_seed == seed:
                print(
                    f"warning: the checkpoint's run trained on synthetic seed {seed}: these "
                    "identities are unseen but the scenes are not; pick another seed."
                )
        try:
            make_synthetic_mars(root, num_identities=identities, image_size=frame_size, seed=seed)
        except (ValueError, OSError) as err:
            parser.error(f"could not build the synthetic dataset at {root!r}: {err}")
    try:
        dataset = get_dataset(reader_name, root)
    except (ValueError, FileNotFoundError, OSError) as err:
        parser.error(f"could not read {dataset_name} from {root!r}: {err}")
    if image_size is not None and size_source != "--image-size":
        print(f"Frames resized to {image_size[0]}x{image_size[1]} ({size_source}); T = {seq_len}.")

    if hasattr(model, "set_inference_outputs"):  # ASANet: feature + attribute logits
        model.set_inference_outputs("dict")
    num_classes = _model_num_classes(model)
    train_ids = len({t.pid for t in getattr(dataset, "train", [])}) or TRAIN_IDENTITIES.get(
        dataset_name
    )
    # A synthetic dataset of another seed is never the training data: its training split's
    # size says nothing about the checkpoint.
    if num_classes is not None and trained_on in (None, dataset_name) and not build_synthetic:
        if train_ids and num_classes != train_ids:
            others = [n for n, c in TRAIN_IDENTITIES.items() if c == num_classes]
            hint = f" (that is the class count of {others[0]})" if others else ""
            parser.error(
                f"checkpoint {args.weights!r} has {num_classes} identity classes{hint} but the "
                f"{dataset_name} training split has {train_ids} identities: it was not trained "
                f"on {dataset_name}. For a cross-dataset evaluation pass --trained-on <dataset>."
            )

    report = evaluate_model(
        model,
        dataset,
        setup=args.setup,
        trained_on=trained_on,
        metric=args.metric,
        mode=args.mode,
        seq_len=seq_len,
        batch_size=args.batch_size,
        image_size=image_size,
        max_rank=args.max_rank,
        breakdown=not args.no_breakdown,
        camera_pairs=args.camera_pairs,
        num_workers=args.workers,
        verbose=not args.quiet,
        baseline=not args.no_baseline,
    )
    if reader_name == "synthetic" and args.mask_tracklets > 0:
        from keras_asanet.evaluation import mask_score

        if not hasattr(model, "set_inference_outputs"):
            report.notes.append("mask score not computed: the model is not an ASANet.")
        else:
            try:
                report.mask_score = mask_score(
                    model,
                    [*dataset.query, *dataset.gallery],
                    seq_len=seq_len,
                    image_size=report.settings["image_size"],
                    max_tracklets=args.mask_tracklets,
                )
            except ValueError as err:
                report.notes.append(f"mask score not computed: {err}")
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
