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
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from scripts._cli import cli  # noqa: E402  (keras_asanet/cli.py, loaded before Keras)

# The shared flags and their mapping to a RunConfig (importable from here, as before).
add_run_arguments = cli.add_run_arguments
config_from_args = cli.config_from_args


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    cli.add_run_arguments(p)
    return p.parse_args(argv)


def main(argv=None):
    try:
        args = parse_args(argv)
    except SystemExit as exit_:  # argparse printed the usage error (or --help)
        return exit_.code
    try:
        cli.select_backend(args.backend)
    except cli.BackendError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from keras_asanet.data.image_io import FrameError
    from keras_asanet.training.checkpoint import CheckpointError
    from keras_asanet.training.runner import UsageError, train

    config = cli.config_from_args(args)
    if config.resume:  # the settings not typed are the checkpoint's
        from keras_asanet.training.runner import with_saved_settings

        typed = cli.typed_fields(sys.argv[1:] if argv is None else argv)
        config = with_saved_settings(config, explicit=typed)
    try:
        train(config)
    except (UsageError, CheckpointError, FileNotFoundError, FrameError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except FloatingPointError as err:
        print(f"error: {err}", file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
