"""Seeded ablation of ASA-Net on unseen identities in unseen scenes; writes docs/results.md.

Each row (see `keras_asanet.training.ablation.ABLATION_ROWS`) is the README's main job with one
part of the method switched, trained once per seed on the synthetic dataset of that seed and
evaluated on the synthetic dataset of `--heldout-seed`, which no run trains or tunes on. The
table gives mean ± std over the seeds of mAP and rank-1, the raw-pixels baseline, attribute
accuracy beside the majority-class predictor and the ASRE mask score beside a centre prior.
Finished runs in --output are reused, so an interrupted ablation continues where it stopped.

Examples:
    python scripts/ablation.py --backend jax                       # every row, seeds 0 1 2
    python scripts/ablation.py --backend jax --rows "+pmi (ASANet-a)" no_attributes --seeds 0
"""

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from scripts._cli import cli  # noqa: E402  (keras_asanet/cli.py, loaded before Keras)


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    cli.add_run_arguments(p, ablation=True)
    p.add_argument("--rows", nargs="+", default=None, help="rows to run (default: all)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="training seeds")
    p.add_argument(
        "--reuse-only",
        action="store_true",
        help="tabulate the finished runs in --output only; train nothing",
    )
    p.add_argument(
        "--measures-from",
        default=None,
        help="a results JSON of an earlier ablation (e.g. docs/results.json): a (row, seed) "
        "with no run folder in --output takes its recorded measure instead of being trained",
    )
    p.add_argument(
        "--results",
        default="docs/results.md",
        help="markdown file to write (default docs/results.md; '' to skip)",
    )
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    try:
        cli.select_backend(args.backend)
    except cli.BackendError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from keras_asanet.training import ablation

    rows = args.rows or list(ablation.ABLATION_ROWS)
    unknown = [r for r in rows if r not in ablation.ABLATION_ROWS]
    if unknown:
        print(
            f"error: unknown --rows {unknown}; expected some of {list(ablation.ABLATION_ROWS)}",
            file=sys.stderr,
        )
        return 2
    base = cli.config_from_args(args)
    command = "python scripts/ablation.py " + " ".join(
        a if " " not in a else repr(a) for a in (argv if argv is not None else sys.argv[1:])
    )
    output = args.output

    def save(measures):
        os.makedirs(output, exist_ok=True)
        with open(os.path.join(output, "measures.json"), "w") as f:
            json.dump([m.to_dict() for m in measures], f, indent=1)

    recorded = {}
    if args.measures_from:
        try:
            recorded = ablation.recorded_measures(args.measures_from)
        except (OSError, ValueError) as err:
            print(f"error: --measures-from: {err}", file=sys.stderr)
            return 2
    start = time.time()
    measures, summary, seconds = ablation.run_ablation(
        rows,
        args.seeds,
        base,
        output,
        args.heldout_seed,
        on_measure=save,
        reuse_only=args.reuse_only,
        recorded=recorded,
        typed=cli.typed_fields(argv if argv is not None else sys.argv[1:], ablation=True),
    )
    env = ablation.environment()
    table = ablation.markdown_table(summary)
    header = (
        f"Command: `{command.strip()}`  \n"
        f"Backend {env['backend']} {env.get('backend_version', '')}, Keras {env['keras']}, "
        f"Python {env['python']}, {env['machine']}; {len(args.seeds)} training seeds "
        f"({', '.join(map(str, args.seeds))}; a row lists the seeds it has), evaluated on the "
        "synthetic dataset of seed "
        f"{args.heldout_seed} ({base.heldout_identities} identities, half in its test split: "
        "unseen identities and scenes); the runs trained for "
        f"{sum(m.train_seconds for m in measures) / 60:.0f} min in all (measured with up to "
        "three runs sharing the 2 cores, so a single idle run is faster); this command took "
        f"{(time.time() - start) / 60:.1f} min."
    )
    reused = sum(1 for m in measures if recorded.get((m.row, m.seed)) is m)
    if reused:
        header += (
            f"  \n{reused} of the {len(measures)} runs are the measures recorded in "
            f"`{args.measures_from}` (trained earlier; their run folders are not on the machine "
            "that wrote this table)."
        )
    print(header)
    print(table)
    if args.results:
        repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        # The README's block is the project's table: only a run that writes the project's
        # docs/results.md updates it (a results file elsewhere leaves the README alone).
        readme = None
        if os.path.abspath(args.results) == os.path.join(repo, "docs", "results.md"):
            readme = os.path.join(repo, "README.md")
        ablation.write_results(args.results, header, table, summary, measures, readme=readme)
        print(f"Wrote {args.results}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
