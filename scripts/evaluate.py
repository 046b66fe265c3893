"""Evaluates a trained checkpoint on MARS or DukeMTMC-VideoReID and prints the result table.

Usage:
    python scripts/evaluate.py --backend torch --dataset mars --root PATH --weights model.keras
        [--setup usual|mixing] [--metric euclidean|cosine] [--mode dense|sampled]
        [--trained-on duke] [--camera-pairs] [--output results.json]

Prints the protocol (which MARS setup, how many queries were scored), CMC rank-1/5/10/20, mAP,
mINP, attribute accuracy when the model outputs attribute logits, and the breakdown by the
queries' quality flags / pose / motion; `--output` writes the same as JSON.

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
    p.add_argument("--root", required=True, help="dataset root folder")
    p.add_argument("--weights", required=True, help="trained model, a .keras file")
    p.add_argument("--setup", choices=("usual", "mixing"), default="usual")
    p.add_argument("--metric", choices=("euclidean", "cosine"), default="euclidean")
    p.add_argument("--mode", choices=("dense", "sampled"), default="dense")
    p.add_argument("--seq-len", type=int, default=6)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--image-size", type=int, nargs=2, metavar=("H", "W"), default=None)
    p.add_argument("--max-rank", type=int, default=50)
    p.add_argument(
        "--trained-on",
        default=None,
        help="dataset the checkpoint was trained on, for a cross-dataset evaluation",
    )
    p.add_argument("--camera-pairs", action="store_true", help="add the camera-pair matrix")
    p.add_argument("--no-breakdown", action="store_true", help="skip the per-query breakdown")
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
    if not os.path.isdir(args.root):
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
    try:
        dataset = get_dataset(reader_name, args.root)
    except (ValueError, FileNotFoundError, OSError) as err:
        parser.error(f"could not read {dataset_name} from {args.root!r}: {err}")

    if hasattr(model, "set_inference_outputs"):  # ASANet: feature + attribute logits
        model.set_inference_outputs("dict")
    num_classes = _model_num_classes(model)
    train_ids = len({t.pid for t in getattr(dataset, "train", [])}) or TRAIN_IDENTITIES.get(
        dataset_name
    )
    if num_classes is not None and (trained_on in (None, dataset_name)):
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
        seq_len=args.seq_len,
        batch_size=args.batch_size,
        image_size=args.image_size,
        max_rank=args.max_rank,
        breakdown=not args.no_breakdown,
        camera_pairs=args.camera_pairs,
        num_workers=args.workers,
        verbose=not args.quiet,
    )
    print(report)
    if args.output:
        payload = report.to_dict()
        payload["checkpoint"] = os.path.abspath(args.weights)
        payload["backend"] = args.backend
        with open(args.output, "w") as f:
            json.dump(payload, f, indent=2)
        print(f"results written to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
