"""Writes the synthetic MARS-layout video re-ID dataset and prints its summary.

Usage:
    python scripts/make_synthetic.py [--root DIR] [--identities N] [--image-size H W] [--seed S]
                                     [--contact-sheet PNG]
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from keras_asanet.data import Mars, default_synthetic_root, make_synthetic_mars  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--root",
        default=None,
        help="output folder (default: the cache folder the training run uses for these "
        "parameters, ~/.keras_asanet/synthetic/v<version>-n<identities>-<H>x<W>-seed<seed>)",
    )
    parser.add_argument("--identities", type=int, default=300)
    parser.add_argument("--image-size", type=int, nargs=2, default=(64, 32), metavar=("H", "W"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--frames", type=int, nargs=2, default=(8, 24), metavar=("MIN", "MAX"))
    parser.add_argument("--overwrite", action="store_true")
    parser.add_argument("--contact-sheet", help="also write a PNG of a few tracklets here")
    args = parser.parse_args(argv)
    if args.root is None:
        args.root = default_synthetic_root(args.identities, args.image_size, args.seed)
    start = time.time()
    try:
        make_synthetic_mars(
            args.root,
            num_identities=args.identities,
            image_size=tuple(args.image_size),
            seed=args.seed,
            frames_per_tracklet=tuple(args.frames),
            overwrite=args.overwrite,
        )
    except (ValueError, FileExistsError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"synthetic dataset ready at {args.root} ({time.time() - start:.1f} s)")
    dataset = Mars(args.root, verbose=True)
    if args.contact_sheet:
        from keras_asanet.visualization import tracklet_contact_sheet

        shown, seen = [], set()
        for t in dataset.train:
            if t.pid not in seen and t.attributes is not None:
                seen.add(t.pid)
                shown += [u for u in dataset.train if u.pid == t.pid][:2]
            if len(shown) >= 8:
                break
        tracklet_contact_sheet(shown[:8], args.contact_sheet, with_masks=True, scale=3)
        print(f"contact sheet written to {args.contact_sheet}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
