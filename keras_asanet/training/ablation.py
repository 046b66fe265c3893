"""The seeded ablation behind `scripts/ablation.py` and `docs/results.md`.

Every row is a variant of the README's main job (same data size, schedule and evaluation),
trained once per seed on the synthetic dataset of that seed and judged on a synthetic
dataset of a held-out seed: identities *and* camera scenes it has never seen. A raw-pixels
baseline and a majority-class attribute predictor are measured on the same held-out set, so
a reader sees what learning, and each part of the method, added.

The rows follow the paper's ablations (Tables V and VII) as far as the synthetic benchmark can
test them, plus the two readings of the loss weights and the pooling choice (DESIGN.md §3).
All rows but the two colour-jitter ones train without colour jitter, as the main job did when
they were measured; colour jitter is the main job's default since (docs/results.md), and the
no-attribute row with it is the baseline the main job's model has to beat.
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import time

import numpy as np

from keras_asanet.training.runner import LEGACY_SETTINGS

#: The main job's settings when the first rows were measured, under every row's overrides:
#: a row trains as it did when its numbers were written, whatever the main job's defaults
#: have become since (they moved to 600 identities and a weight decay of 1e-2 that spares
#: the attribute heads, then to 1,000 identities for 24 epochs; the rows measured on those
#: recipes say so themselves). A flag the user typed wins over these (`row_config`'s
#: `typed`), never over a row's own overrides.
#: Settings added after the rows were measured take the values every run had before they
#: existed (`LEGACY_SETTINGS`, the same values a resumed old run gets).
MEASURED_RECIPE = {
    "synthetic_identities": 300,
    "epochs": 40,
    "weight_decay": 5e-4,
    "attribute_head_decay": True,
    **LEGACY_SETTINGS,
}

#: The main job's recipe of session 8: 600 identities, decay 1e-2 sparing the heads (and,
#: from MEASURED_RECIPE, the swapped reading's lambda_BCE 1.5 and the attribute-positions
#: softmax; the two newest rows set those in their model overrides).
RECIPE_600 = {
    "color_jitter": 0.4,
    "synthetic_identities": 600,
    "weight_decay": 1e-2,
    "attribute_head_decay": False,
}

#: name -> (description, RunConfig overrides, ASANet overrides)
ABLATION_ROWS = {
    "no_attributes": (
        "identity branches only: no attribute supervision, ASRE, fusion or PMI (Table VII)",
        {"color_jitter": 0.0, "attributes": False},
        {"use_asre": False, "fuse_attribute_features": False},
    ),
    "+bce": (
        "+ attribute branches, heads and BCE; attribute feature fused; no ASRE, no PMI",
        {"color_jitter": 0.0, "pmi": False},
        {"use_asre": False},
    ),
    "+asre": (
        "+ ASRE on the re / ir identity maps (ASANet-a without PMI)",
        {"color_jitter": 0.0, "pmi": False},
        {},
    ),
    "+pmi (ASANet-a)": (
        "+ PMI triplet loss: the full ASANet-a (the main job's model, without colour jitter)",
        {"color_jitter": 0.0},
        {},
    ),
    "ASANet-b": (
        "the full model with fusion strategy (b)",
        {"color_jitter": 0.0},
        {"fusion": "b"},
    ),
    "ASANet-a, printed weights": (
        "the full ASANet-a with lambda_cent 1.5, lambda_BCE 0.0005 as printed",
        {"color_jitter": 0.0, "loss_weights": "printed"},
        {},
    ),
    "ASANet-a, lambda_BCE 15": (
        "the full ASANet-a with a 10x stronger attribute loss (lambda_BCE 15 on the joint mean)",
        {"color_jitter": 0.0},
        {"bce_weight": 15.0},
    ),
    "ASANet-a, colour jitter 0.4": (
        "the full ASANet-a with per-clip lighting jitter: the main job since this ablation",
        {"color_jitter": 0.4},
        {},
    ),
    "no_attributes, colour jitter 0.4": (
        "the Table VII baseline (identity branches only) with the main job's colour jitter: "
        "what the attribute parts add to the main job's recipe",
        {"color_jitter": 0.4, "attributes": False},
        {"use_asre": False, "fuse_attribute_features": False},
    ),
    "ASANet-a, colour jitter 0.4, IBN": (
        "the main job's model with IBN-a in the backbone (half the channels of the first norm "
        "of each stage 1-3 block instance-normalised): camera-style invariance",
        {"color_jitter": 0.4},
        {"backbone": {"ibn": True}},
    ),
    "ASANet-a, colour jitter 0.4, sigmoid mask": (
        "the main job's model with both ASRE masks through a sigmoid (in (0, 1)) instead of "
        "the paper's linear mask: it localised better on tutorial 02's toy task",
        {"color_jitter": 0.4},
        {"asre_mask_activation": "sigmoid"},
    ),
    "ASANet-a, colour jitter 0.4, motion std": (
        "the main job's model with the ID-irrelevant attribute feature pooled over time as "
        'mean and standard deviation (`ir_attr_temporal="mean_std"`): a temporal mean '
        "cannot show motion",
        {"color_jitter": 0.4},
        {"ir_attr_temporal": "mean_std"},
    ),
    "ASANet-a, colour jitter 0.4, 600 identities": (
        "the main job's model trained on 600 synthetic identities (300 for training) instead "
        "of 300: twice the identities and steps, the same held-out set",
        {"color_jitter": 0.4, "synthetic_identities": 600},
        {},
    ),
    "no_attributes, colour jitter 0.4, 600 identities": (
        "the Table VII baseline with the main job's colour jitter, on 600 identities",
        {"color_jitter": 0.4, "attributes": False, "synthetic_identities": 600},
        {"use_asre": False, "fuse_attribute_features": False},
    ),
    "ASANet-a, colour jitter 0.4, 600 identities, weight decay 5e-3": (
        "the 600-identity run with 10x the weight decay (5e-3): against memorising identities",
        {"color_jitter": 0.4, "synthetic_identities": 600, "weight_decay": 5e-3},
        {},
    ),
    "no_attributes, colour jitter 0.4, 600 identities, weight decay 5e-3": (
        "the Table VII baseline on that recipe (600 identities, weight decay 5e-3)",
        {
            "color_jitter": 0.4,
            "attributes": False,
            "synthetic_identities": 600,
            "weight_decay": 5e-3,
        },
        {"use_asre": False, "fuse_attribute_features": False},
    ),
    "ASANet-a, colour jitter 0.4, 600 identities, weight decay 1e-2, heads undecayed": (
        "the 600-identity run with 20x the weight decay (1e-2) on every weight but the two "
        "attribute heads' (`--no-attribute-head-decay`): that decay alone drives the heads "
        "to the majority class",
        RECIPE_600,
        {},
    ),
    "no_attributes, colour jitter 0.4, 600 identities, weight decay 1e-2": (
        "the Table VII baseline on that recipe (600 identities, weight decay 1e-2)",
        {
            "color_jitter": 0.4,
            "attributes": False,
            "synthetic_identities": 600,
            "weight_decay": 1e-2,
        },
        {"use_asre": False, "fuse_attribute_features": False},
    ),
    "ASANet-a, GeM pooling": (
        "the full ASANet-a with GeM (clamped) pooling of the signed identity maps",
        {"color_jitter": 0.0, "identity_pooling": "gem"},
        {},
    ),
    "ASANet-a, colour jitter 0.4, 600 identities, weight decay 1e-2, heads undecayed, "
    "lambda_BCE 15": (
        "that run with a 10x stronger attribute loss (lambda_BCE 15 on the joint mean of the "
        "43 slots; Eq. 18's sum over the slots with lambda_BCE 1.5 would be 64.5)",
        RECIPE_600,
        {"bce_weight": 15.0},
    ),
    "ASANet-a, colour jitter 0.4, 600 identities, weight decay 1e-2, heads undecayed, "
    "lambda_BCE 15, softmax over identity positions": (
        "that run with both ASREs' attention softmax over the identity positions "
        '(`asre_softmax_over="identity_positions"`): under the default axis the masks are '
        "constant within a frame",
        RECIPE_600,
        {"bce_weight": 15.0, "asre_softmax_over": "identity_positions"},
    ),
    "ASANet-a, colour jitter 0.4, 600 identities, weight decay 1e-2, heads undecayed, "
    "lambda_BCE 15, softmax over identity positions, flip test": (
        "that run (the main job) with each test clip's feature averaged with its mirror's "
        "(`--flip-test`): the same model, scored on both orientations",
        {**RECIPE_600, "flip_test": True},
        {"bce_weight": 15.0, "asre_softmax_over": "identity_positions"},
    ),
    "no_attributes, colour jitter 0.4, 600 identities, weight decay 5e-3, flip test": (
        "the best Table VII baseline (600 identities, weight decay 5e-3) scored with the "
        "same flip test",
        {
            "color_jitter": 0.4,
            "attributes": False,
            "synthetic_identities": 600,
            "weight_decay": 5e-3,
            "flip_test": True,
        },
        {"use_asre": False, "fuse_attribute_features": False},
    ),
    "ASANet-a, the main job's recipe on 1000 identities, 24 epochs": (
        "the main job's model and recipe (the row above the baseline) on 1,000 synthetic "
        "identities (500 for training) for 24 epochs: the same 1,500 steps over more people",
        {**RECIPE_600, "flip_test": True, "synthetic_identities": 1000, "epochs": 24},
        {"bce_weight": 15.0, "asre_softmax_over": "identity_positions"},
    ),
    "ASANet-a, the main job's recipe on 1000 identities, 24 epochs, attribute maps of 128 "
    "channels": (
        "that run with attribute branches as wide as the backbone map (`attribute_channels="
        "128`, C; the paper's C/2 is 64 for asanet_tiny): the main job until the row below",
        {
            **RECIPE_600,
            "flip_test": True,
            "synthetic_identities": 1000,
            "epochs": 24,
            "attribute_channels": 128,
        },
        {"bce_weight": 15.0, "asre_softmax_over": "identity_positions"},
    ),
    "ASANet-a, the main job's recipe on 1000 identities, 24 epochs, attribute maps of 128 "
    "channels, ASRE query / key undecayed": (
        "that run with the weight decay kept off both ASREs' query and key convolutions "
        "(`--no-asre-attention-decay`; with the decay they collapse to zero, the attention "
        "turns uniform and every mask is flat): today's main job",
        {
            **RECIPE_600,
            "flip_test": True,
            "synthetic_identities": 1000,
            "epochs": 24,
            "attribute_channels": 128,
            "asre_attention_decay": False,
        },
        {"bce_weight": 15.0, "asre_softmax_over": "identity_positions"},
    ),
    "no_attributes, the main job's recipe on 1000 identities, 24 epochs, weight decay 5e-3": (
        "the best Table VII baseline's recipe (weight decay 5e-3, flip test) on the same "
        "1,000 identities for 24 epochs",
        {
            "color_jitter": 0.4,
            "attributes": False,
            "synthetic_identities": 1000,
            "epochs": 24,
            "weight_decay": 5e-3,
            "flip_test": True,
        },
        {"use_asre": False, "fuse_attribute_features": False},
    ),
}


@dataclasses.dataclass
class RunMeasure:
    """What one (row, seed) run measured on the held-out set."""

    row: str
    seed: int
    mAP: float
    rank1: float
    baseline_mAP: float
    baseline_rank1: float
    attr_re: float | None
    attr_ir: float | None
    majority_re: float | None
    majority_ir: float | None
    mask_iou: float | None
    centre_prior_iou: float | None
    seen_mAP: float
    train_seconds: float
    #: How the mask IoUs broke ties (`keras_asanet.evaluation.mask_score`'s `ties`): runs
    #: recorded before the rule existed were scored by position.
    mask_ties: str | None = None
    #: Where the mask cells lie on the frame (`mask_score`'s `cell_layout`): runs recorded
    #: before the layout existed were scored on equal tiles, half a cell off the features.
    mask_cells: str | None = None
    #: The masks region by region, as `mask_score` scored them on the held-out set:
    #: `{"person" | "top" | "bottom" | ...: {"re_iou", "ir_iou", "centre_iou", "best_iou",
    #: "num_frames"}}`; `None` for runs recorded without it (see `mask_region_table`).
    mask_regions: dict | None = None

    def to_dict(self):
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, record):
        """The measure as `to_dict` wrote it (e.g. a run of `docs/results.json`)."""
        record = dict(record)
        if "mask_ties" not in record:
            record["mask_ties"] = None if record.get("mask_iou") is None else "position"
        if "mask_cells" not in record:
            record["mask_cells"] = None if record.get("mask_iou") is None else "tiled"
        record.setdefault("mask_regions", None)
        names = [f.name for f in dataclasses.fields(cls)]
        missing = [n for n in names if n not in record]
        if missing:
            raise ValueError(f"A recorded run lacks {missing}: {record!r}")
        return cls(**{n: record[n] for n in names})


def recorded_measures(path):
    """`{(row, seed): RunMeasure}` of a results JSON written by `write_results`: the runs of
    an earlier ablation whose folders are not on this machine (run folders are not committed;
    `docs/results.json` keeps what each measured)."""
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"{path!r} does not exist: expected a results JSON written by scripts/ablation.py "
            "(e.g. docs/results.json)."
        )
    with open(path) as f:
        data = json.load(f)
    if not isinstance(data, dict) or not isinstance(data.get("runs"), list):
        raise ValueError(f"{path!r} is not a results JSON of scripts/ablation.py (no 'runs' list).")
    measures = [RunMeasure.from_dict(r) for r in data["runs"]]
    return {(m.row, m.seed): m for m in measures}


def row_config(row, seed, base_config, output, heldout_seed, typed=()):
    """The `RunConfig` of one ablation run (training seed = dataset seed = `seed`).

    `typed`: the `RunConfig` fields the user set by a flag (`keras_asanet.cli.typed_fields`),
    which keep `base_config`'s value instead of `MEASURED_RECIPE`'s (a row's own overrides
    still win: they are what the row measures)."""
    if row not in ABLATION_ROWS:
        raise ValueError(f"Unknown ablation row {row!r}; expected one of {list(ABLATION_ROWS)}.")
    _, run_overrides, model_overrides = ABLATION_ROWS[row]
    recipe = {k: v for k, v in MEASURED_RECIPE.items() if k not in set(typed)}
    return dataclasses.replace(
        base_config,
        seed=int(seed),
        dataset_seed=int(seed),
        heldout_seed=int(heldout_seed),
        output=output,
        eval_untrained=False,
        model_overrides={**base_config.model_overrides, **model_overrides},
        **{**recipe, **run_overrides},
    )


def run_one(row, seed, base_config, output, heldout_seed, log=print, typed=()):
    """Trains one row for one seed (or reuses a finished run in `output`) and returns what it
    measured on the held-out seed's dataset (the run's own `results["unseen"]`). `typed` as
    in `row_config`."""
    from keras_asanet.training.runner import rescore, rescore_masks, scored_heldout_set, train

    config = row_config(row, seed, base_config, output, heldout_seed, typed)
    results_path = os.path.join(output, "results.json")
    results = None
    if os.path.isfile(results_path):
        with open(results_path) as f:
            results = json.load(f)
        # Runs scored before the distance was recorded ranked by Euclidean distance.
        scored_with = results.get("unseen", {}).get("metric") or "euclidean"
        scored_seed, scored_on = scored_heldout_set(results)
        if scored_seed != int(heldout_seed):
            results = None
        elif scored_on != config.heldout_identities:
            log(
                f"[{row} / seed {seed}] scoring the finished run on {config.heldout_identities} "
                "held-out identities"
            )
            results = rescore(config, log=lambda *_: None)
        elif scored_with != config.metric:
            log(f"[{row} / seed {seed}] re-scoring the finished run with {config.metric}")
            results = rescore(config, log=lambda *_: None)
        elif bool(results["unseen"].get("flip", False)) != config.flip_test:
            log(f"[{row} / seed {seed}] re-scoring the finished run, flip test {config.flip_test}")
            results = rescore(config, log=lambda *_: None)
        else:
            log(f"[{row} / seed {seed}] reusing the finished run in {output}")
    if results is None:
        if os.path.isdir(os.path.join(output, "checkpoints")):
            config = dataclasses.replace(config, resume=True)
        results = train(config, log=log if base_config.verbose else (lambda *_: None))
    stale_masks = results["unseen"].get("mask_score") or {}
    if stale_masks and stale_masks.get("cell_layout", "tiled") != "centred":
        log(f"[{row} / seed {seed}] scoring the finished run's masks on centred cells")
        results = rescore_masks(config, log=lambda *_: None)
    unseen = results["unseen"]
    groups = unseen.get("attribute_groups") or {}
    floor = unseen.get("majority_groups") or {}
    mask = unseen.get("mask_score")
    mask_iou = None
    if mask is not None:
        values = [v for v in (mask.get("re_iou"), mask.get("ir_iou")) if v is not None]
        mask_iou = max(values) if values else None
    return RunMeasure(
        row=row,
        seed=int(seed),
        mAP=float(unseen["mAP"]),
        rank1=float(unseen["rank1"]),
        baseline_mAP=float(unseen["baseline_mAP"]),
        baseline_rank1=float(unseen["baseline_rank1"]),
        attr_re=groups.get("id_relevant"),
        attr_ir=groups.get("id_irrelevant"),
        majority_re=floor.get("id_relevant"),
        majority_ir=floor.get("id_irrelevant"),
        mask_iou=mask_iou,
        centre_prior_iou=None if mask is None else float(mask["centre_iou"]),
        seen_mAP=float(results["final"]["mAP"]),
        train_seconds=float(results.get("train_seconds", float("nan"))),
        mask_ties=None if mask is None else mask.get("ties", "position"),
        mask_cells=None if mask is None else mask.get("cell_layout", "tiled"),
        mask_regions=_mask_regions(mask),
    )


def _mask_regions(mask):
    """The person and every region of a `MaskScore.to_dict()`, keyed by region."""
    if mask is None:
        return None
    keys = ("re_iou", "ir_iou", "centre_iou", "best_iou", "num_frames")
    regions = {"person": {k: mask.get(k) for k in keys}}
    for name, region in (mask.get("regions") or {}).items():
        regions[name] = {k: region.get(k) for k in keys}
    return regions


def _mean_std(values):
    values = [v for v in values if v is not None]
    if not values:
        return None
    return float(np.mean(values)), float(np.std(values))


def summarise(measures):
    """Mean and std over seeds per row, in `ABLATION_ROWS` order."""
    rows = {}
    for m in measures:
        rows.setdefault(m.row, []).append(m)
    out = []
    order = [r for r in ABLATION_ROWS if r in rows] + [r for r in rows if r not in ABLATION_ROWS]
    for row in order:
        ms = rows[row]
        stats = {"row": row, "seeds": sorted(m.seed for m in ms)}
        for key in (
            "mAP",
            "rank1",
            "baseline_mAP",
            "attr_re",
            "attr_ir",
            "majority_re",
            "majority_ir",
            "mask_iou",
            "centre_prior_iou",
            "seen_mAP",
            "train_seconds",
        ):
            stats[key] = _mean_std([getattr(m, key) for m in ms])
        for key in ("mask_ties", "mask_cells"):  # how the row's mask IoUs were scored
            rules = {getattr(m, key) for m in ms if m.mask_iou is not None}
            stats[key] = rules.pop() if len(rules) == 1 else ("mixed" if rules else None)
        out.append(stats)
    return out


def _fmt(stat, scale=100.0, digits=1):
    if stat is None:
        return "-"
    mean, std = stat
    return f"{scale * mean:.{digits}f} ± {scale * std:.{digits}f}"


def markdown_table(summary):
    """The results table of `docs/results.md` and the README."""
    lines = [
        "| row | mAP (unseen) | rank-1 (unseen) | raw pixels mAP | ID-rel. attr. acc. "
        "(majority) | ID-irr. attr. acc. (majority) | ASRE mask IoU (centre prior) "
        "| mAP (seen scenes) | seeds |",
        "|---|---|---|---|---|---|---|---|---|",
    ]

    def with_ref(s, value, ref):
        if s[value] is None:
            return "-"
        return f"{_fmt(s[value])} ({_fmt(s[ref])})"

    def mask(s):
        cell = with_ref(s, "mask_iou", "centre_prior_iou")
        if s.get("mask_ties") not in (None, "average"):
            cell += " †"
        if s.get("mask_cells") not in (None, "centred"):
            cell += " ‡"
        return cell

    for s in summary:
        lines.append(
            f"| {s['row']} | {_fmt(s['mAP'])} | {_fmt(s['rank1'])} | {_fmt(s['baseline_mAP'])} "
            f"| {with_ref(s, 'attr_re', 'majority_re')} "
            f"| {with_ref(s, 'attr_ir', 'majority_ir')} "
            f"| {mask(s)} | {_fmt(s['seen_mAP'])} "
            f"| {', '.join(map(str, s['seeds']))} |"
        )
    if any(s.get("mask_ties") not in (None, "average") for s in summary):
        lines += [
            "",
            '† mask IoUs scored before ties were averaged (`mask_score(ties="position")`): '
            "positions a mask or the centre prior does not tell apart went to the lower "
            "index, which on the 4x2 grid puts the centre prior on the torso; with ties "
            'averaged its IoU is about half that (docs/results.md, "Ties in the mask score").',
        ]
    if any(s.get("mask_cells") not in (None, "centred") for s in summary):
        lines += [
            "",
            '‡ mask IoUs scored on equal tiles of the frame (`mask_score(cell_layout="tiled")`),'
            " half a cell down and right of where the features lie; their run folders are "
            "not on the machine that wrote this table, so they were not scored again. On "
            "the centred cells of the other rows the centre prior scores about twice as high "
            "(70.0 against 34.3 on seed 1000), a flat mask about the same (chance) and the "
            "spatial masks of the rows that have them higher, by 20 points and more "
            '(docs/results.md, "Where a mask cell lies on the frame").',
        ]
    return "\n".join(lines)


def environment():
    """Versions and machine, printed with every table."""
    import keras

    info = {
        "keras": keras.__version__,
        "backend": keras.backend.backend(),
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
    }
    try:
        import importlib.metadata as md

        info["backend_version"] = md.version(
            {"jax": "jax", "torch": "torch", "tensorflow": "tensorflow-cpu"}[info["backend"]]
        )
    except Exception:  # noqa: BLE001 - a version we cannot read is not worth failing for
        pass
    return info


def run_ablation(
    rows,
    seeds,
    base_config,
    output,
    heldout_seed,
    log=print,
    on_measure=None,
    reuse_only=False,
    recorded=None,
    typed=(),
):
    """Runs every (row, seed), returns `(measures, summary, seconds)`. With `reuse_only`, a
    (row, seed) without a finished run in `output` is skipped instead of trained (to tabulate
    what exists, e.g. a row measured on fewer seeds). `recorded` (`recorded_measures`) gives
    the measures of runs trained earlier whose folders are gone: a (row, seed) without a
    finished run in `output` takes its recorded measure instead of training (a finished run
    in `output` wins). `typed`: the fields the user set by a flag (see `row_config`)."""
    recorded = recorded or {}
    if heldout_seed in seeds:
        raise ValueError(
            f"The held-out seed {heldout_seed} is also a training seed: the evaluation must "
            "use identities and scenes no run trained on."
        )
    start = time.time()
    measures = []
    for row in rows:
        for seed in seeds:
            slug = "".join(c if c.isalnum() else "_" for c in row).strip("_")
            finished = os.path.join(output, slug, f"seed{seed}", "results.json")
            if not os.path.isfile(finished) and (row, int(seed)) in recorded:
                log(f"[{row} / seed {seed}] no run folder in {output}: its recorded measure")
                measures.append(recorded[(row, int(seed))])
                if on_measure is not None:
                    on_measure(measures)
                continue
            if reuse_only and not os.path.isfile(finished):
                log(f"[{row} / seed {seed}] no finished run in {output}: skipped (--reuse-only)")
                continue
            measure = run_one(
                row, seed, base_config, os.path.join(output, slug, f"seed{seed}"), heldout_seed,
                log, typed,
            )  # fmt: skip
            measures.append(measure)
            log(
                f"[{row} / seed {seed}] unseen mAP {100 * measure.mAP:.1f} rank-1 "
                f"{100 * measure.rank1:.1f} (raw pixels {100 * measure.baseline_mAP:.1f}); "
                f"seen-scenes mAP {100 * measure.seen_mAP:.1f}"
            )
            if on_measure is not None:
                on_measure(measures)
    return measures, summarise(measures), time.time() - start


GENERATED_START = "<!-- ablation:start (generated by scripts/ablation.py; do not edit) -->"
GENERATED_END = "<!-- ablation:end -->"


def replace_generated_block(text, block):
    """`text` with the part between the generated-block markers replaced by `block` (the
    markers are appended if the text has none)."""
    body = f"{GENERATED_START}\n{block.strip()}\n{GENERATED_END}"
    if GENERATED_START in text and GENERATED_END in text:
        head = text.split(GENERATED_START)[0]
        tail = text.split(GENERATED_END, 1)[1]
        return head + body + tail
    return text.rstrip() + "\n\n" + body + "\n"


def _pct(value):
    """A fraction as a percentage with one decimal, or "-" for None."""
    return "-" if value is None else f"{100 * value:.1f}"


def per_run_table(measures):
    """One line per (row, seed): the raw material of the summary."""
    lines = [
        "| row | seed | mAP | rank-1 | raw pixels mAP | ID-rel. attr. | ID-irr. attr. "
        "| mask IoU | train s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]

    for m in measures:
        lines.append(
            f"| {m.row} | {m.seed} | {_pct(m.mAP)} | {_pct(m.rank1)} | {_pct(m.baseline_mAP)} "
            f"| {_pct(m.attr_re)} | {_pct(m.attr_ir)} | {_pct(m.mask_iou)}"
            f"{' †' if m.mask_ties not in (None, 'average') else ''} "
            f"| {m.train_seconds:.0f} |"
        )
    return "\n".join(lines)


#: The regions of `mask_region_table`: the clothing regions a 4x2 grid holds in most frames.
TABLE_REGIONS = ("person", "top", "bottom")


def mask_region_table(measures, regions=TABLE_REGIONS):
    """One line per (row, seed) whose run recorded its masks region by region: the IoU of
    each ASRE mask's top-k cells with the person and with the clothing regions, beside the
    centre prior and the best any k cells reach.

    Why: one number per run (the table's best mask on the whole person) hides which part of
    the body each mask prefers, which the paper's Fig. 8 describes (the ID-irrelevant mask on
    the legs), and a region the centre prior misses. An empty string when no run has them.
    """
    scored = [m for m in measures if m.mask_regions]
    if not scored:
        return ""
    head = " | ".join(f"{r}: re / ir (centre prior; best)" for r in regions)
    lines = [f"| row | seed | {head} |", "|---|---|" + "---|" * len(regions)]

    for m in scored:
        cells = []
        for name in regions:
            r = m.mask_regions.get(name) or {}
            if not r.get("num_frames"):
                cells.append("-")
                continue
            cells.append(
                f"{_pct(r.get('re_iou'))} / {_pct(r.get('ir_iou'))} "
                f"({_pct(r.get('centre_iou'))}; {_pct(r.get('best_iou'))})"
            )
        lines.append(f"| {m.row} | {m.seed} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _read_text(path):
    with open(path) as f:
        return f.read()


def write_results(path, header, table, summary, measures, readme=None):
    """Writes the generated block of `path` (docs/results.md) and of the README's results
    section, leaving the prose around the markers as it is."""
    legend = "\n".join(
        f"- **{s['row']}**: {ABLATION_ROWS[s['row']][0]}"
        for s in summary
        if s["row"] in ABLATION_ROWS
    )
    block = f"{header}\n\n{table}\n\nRows:\n\n{legend}\n\n<details><summary>Every run</summary>\n\n"
    block += per_run_table(measures) + "\n\n</details>"
    regions = mask_region_table(measures)
    if regions:
        block += (
            "\n\n<details><summary>Where each run's masks point: the person, the upper and "
            "the lower clothing (IoU x 100 on the held-out set; runs recorded without it are "
            "left out)</summary>\n\n" + regions + "\n\n</details>"
        )
    text = _read_text(path) if os.path.isfile(path) else "# Results\n"
    with open(path, "w") as f:
        f.write(replace_generated_block(text, block))
    json_path = os.path.splitext(path)[0] + ".json"
    with open(json_path, "w") as f:
        json.dump({"summary": summary, "runs": [m.to_dict() for m in measures]}, f, indent=1)
    if readme and os.path.isfile(readme):
        text = _read_text(readme)
        if GENERATED_START in text:
            with open(readme, "w") as f:
                f.write(replace_generated_block(text, f"{header}\n\n{table}"))
