"""One call from a trained model and a dataset to the full report: protocol, extraction,
ranking, attribute accuracy, per-query breakdowns and the raw-pixels baseline."""

from __future__ import annotations

import dataclasses
import json
import os

import numpy as np

from keras_asanet.cli import DEFAULT_METRIC
from keras_asanet.evaluation.attribute_accuracy import attribute_accuracy
from keras_asanet.evaluation.breakdown import breakdown_by_query, camera_pair_breakdown
from keras_asanet.evaluation.feature_extraction import extract_features, resolve_image_size
from keras_asanet.evaluation.feature_parts import score_feature_parts
from keras_asanet.evaluation.protocols import get_protocol
from keras_asanet.evaluation.ranking import DEFAULT_MAX_MEMORY
from keras_asanet.evaluation.raw_pixels import DEFAULT_BASELINE_IMAGE_SIZE, RawPixelSums
from keras_asanet.evaluation.reranking import describe as describe_rerank
from keras_asanet.evaluation.reranking import rerank_settings

#: Raw-pixel baselines already computed in this process, keyed by protocol and settings
#: (the baseline is a function of the frames only, so re-evaluating a model during training
#: never recomputes it).
_BASELINE_CACHE = {}
_BASELINE_CACHE_SIZE = 4


@dataclasses.dataclass
class EvaluationReport:
    """Everything `evaluate_model` measured.

    Attributes:
        protocol: the protocol's one-line description.
        ranking: the `RankingResult` (CMC, mAP, mINP, scored query count).
        attributes: an `AttributeAccuracy`, or `None` (no attribute outputs / annotations).
        query_breakdown: a `QueryBreakdown` by quality flags, pose and motion, or `None`.
        camera_pairs: a `CameraPairBreakdown`, or `None`.
        settings: how features were computed (mode, seq_len, metric, image size, ...).
        notes: anything skipped and why.
        baseline: the raw-pixels `RankingResult` on the same protocol and frames
            (`keras_asanet.evaluation.raw_pixel_baseline`), or `None`.
        mask_score: a `MaskScore` of the model's ASRE masks against ground-truth person
            masks (`keras_asanet.evaluation.mask_score`; set by the caller on data with label
            maps), or `None`.
        feature_parts: a `FeaturePartScores` (each part of the feature ranked alone), or
            `None` (`feature_parts` not asked for).
    """

    protocol: str
    ranking: object
    attributes: object = None
    query_breakdown: object = None
    camera_pairs: object = None
    settings: dict = dataclasses.field(default_factory=dict)
    notes: list = dataclasses.field(default_factory=list)
    baseline: object = None
    mask_score: object = None
    feature_parts: object = None

    def baseline_line(self) -> str | None:
        """`raw-pixels baseline: mAP 12.3 rank-1 8.0 (model: mAP 34.7, 2.8x)`, or `None`."""
        if self.baseline is None:
            return None
        b, m = self.baseline, self.ranking
        ratio = f"{m.mAP / b.mAP:.1f}x" if b.mAP > 0 else "baseline mAP 0"
        return (
            f"raw-pixels baseline: mAP {100 * b.mAP:.1f} rank-1 {100 * b.rank(1):.1f} "
            f"(model: mAP {100 * m.mAP:.1f} rank-1 {100 * m.rank(1):.1f}, {ratio})"
        )

    def to_dict(self) -> dict:
        return {
            "protocol": self.protocol,
            "settings": self.settings,
            "ranking": self.ranking.to_dict(),
            "attributes": None if self.attributes is None else self.attributes.to_dict(),
            "query_breakdown": (
                None if self.query_breakdown is None else self.query_breakdown.to_dict()
            ),
            "camera_pairs": None if self.camera_pairs is None else self.camera_pairs.to_dict(),
            "notes": list(self.notes),
            "baseline": None if self.baseline is None else self.baseline.to_dict(),
            "mask_score": None if self.mask_score is None else self.mask_score.to_dict(),
            "feature_parts": (None if self.feature_parts is None else self.feature_parts.to_dict()),
        }

    def __str__(self) -> str:
        parts = [self.protocol, str(self.ranking)]
        if self.baseline is not None:
            parts.append(self.baseline_line())
        if self.mask_score is not None:
            parts.append(str(self.mask_score))
        if self.feature_parts is not None:
            parts.append(str(self.feature_parts))
        if self.attributes is not None:
            parts.append(str(self.attributes))
        if self.query_breakdown is not None:
            parts.append("Breakdown by query annotation:\n" + str(self.query_breakdown))
        if self.camera_pairs is not None:
            parts.append(str(self.camera_pairs))
        parts += [f"note: {n}" for n in self.notes]
        return "\n".join(parts)


def _pick(outputs, key, what):
    if key not in outputs:
        raise ValueError(
            f"The model returns a dict without {what} key {key!r}; its keys are "
            f"{sorted(outputs)}. Pass the right key to evaluate_model."
        )
    return outputs[key]


def evaluate_model(
    model,
    dataset,
    setup="usual",
    trained_on=None,
    metric=DEFAULT_METRIC,
    mode="dense",
    seq_len=6,
    batch_size=32,
    image_size=None,
    max_rank=50,
    max_memory=DEFAULT_MAX_MEMORY,
    feature_key="feature",
    id_relevant_key="re_attr_logits",
    id_irrelevant_key="ir_attr_logits",
    breakdown=True,
    camera_pairs=False,
    num_workers=4,
    verbose=True,
    baseline=True,
    baseline_image_size=DEFAULT_BASELINE_IMAGE_SIZE,
    call_kwargs=None,
    feature_parts=None,
    flip=False,
    rerank=False,
) -> EvaluationReport:
    """Evaluates a model on a dataset's test split and returns the full report.

    Args:
        model: a model mapping clips `(B, T, H, W, 3)` in [0, 255] to features `(B, D)`, or
            to a dict holding the feature under `feature_key` and, optionally, attribute
            logits under `id_relevant_key` / `id_irrelevant_key` (reported beside re-ID).
            For an `ASANet`, `evaluate_asanet` asks for its output dict (whose keys are the
            defaults here) through `call_kwargs`.
        dataset: an object with `.name`, `.query`, `.gallery` and `.attribute_schema`
            (`keras_asanet.data.get_dataset(name, root)`).
        setup: `"usual"` or `"mixing"` (see `keras_asanet.evaluation.protocols`).
        trained_on: the training dataset's name for a cross-dataset evaluation (the model's
            identity classifier is ignored; ID-relevant attributes, whose schema differs,
            are not scored).
        metric: `"cosine"` (the default, `keras_asanet.cli.DEFAULT_METRIC`: measured best
            for ASA-Net's features) or `"euclidean"`.
        mode, seq_len, batch_size, image_size, num_workers: see `extract_features`.
        max_rank, max_memory: see `evaluate_ranking`.
        breakdown: add rank-1 / mAP by the queries' quality flags, pose and motion.
        camera_pairs: add the camera-pair matrix.
        verbose: progress bar.
        baseline: also rank the same protocol by raw pixels (`raw_pixel_baseline`, the same
            frames as the model: `mode`, `seq_len`), reported beside the model's numbers so
            that what learning added is visible. Computed once per protocol and settings in a
            process (a cache), so evaluating during training does not repeat it, and from the
            frames the model's extraction decodes (`RawPixelSums`), so the files are read once.
        baseline_image_size: the baseline's frame size (default 16 x 8).
        call_kwargs: keyword arguments of every model call (see `extract_features`), e.g.
            `{"return_dict": True}` for an `ASANet`'s feature and attribute logits.
        feature_parts: `{name: (start, stop)}` column ranges of the feature, each also
            ranked alone (`keras_asanet.evaluation.feature_parts`; for an `ASANet`,
            `evaluate_asanet(..., feature_parts=True)` finds them); default `None`: none.
        flip: average every clip's outputs with those of the clip mirrored left-right
            (see `extract_features`); the raw-pixels baseline is not flipped.
        rerank: k-reciprocal re-ranking of the query x gallery distances
            (`keras_asanet.evaluation.k_reciprocal_distance` on `metric`): `True` for the
            paper's k1 20, k2 6, lambda 0.3, or a dict of `k1`, `k2`, `lambda_value`; for
            the model and the raw-pixels baseline alike (the feature parts and the camera
            pairs are ranked without it).

    Returns:
        An `EvaluationReport`.

    Example:

    >>> report = evaluate_model(model, Mars(root), setup="usual")  # doctest: +SKIP
    >>> print(report)  # the ranking, then the raw-pixels line  # doctest: +SKIP
    """
    protocol = get_protocol(dataset, setup, trained_on=trained_on)
    image_size = resolve_image_size(model, image_size)
    rerank = rerank_settings(rerank) or False
    baseline_settings = dict(
        image_size=tuple(int(s) for s in baseline_image_size),
        mode=mode,
        seq_len=int(seq_len),
        metric=metric,
        max_rank=max_rank,
        rerank=rerank,
    )
    baseline_key = _baseline_key(protocol, baseline_settings) if baseline else None
    # A baseline not computed yet is described from the frames the extraction decodes.
    pixel_sums = None
    if baseline and baseline_key not in _BASELINE_CACHE:
        pixel_sums = RawPixelSums(len(protocol.tracklets), baseline_settings["image_size"])
    features, pids, camids = extract_features(
        model,
        protocol.tracklets,
        mode=mode,
        seq_len=seq_len,
        batch_size=batch_size,
        image_size=image_size,
        num_workers=num_workers,
        verbose=verbose,
        call_kwargs=call_kwargs,
        flip=flip,
        raw_pixels=pixel_sums,
    )
    notes = ["flip test: each clip's outputs averaged with its mirror image's."] if flip else []
    if rerank:
        notes.append(f"{describe_rerank(rerank)} of the model's and the baseline's distances.")
    re_logits = ir_logits = None
    if isinstance(features, dict):
        outputs = features
        features = _pick(outputs, feature_key, "feature")
        re_logits = outputs.get(id_relevant_key)
        ir_logits = outputs.get(id_irrelevant_key)
    result = protocol.evaluate(
        features,
        pids,
        camids,
        metric=metric,
        max_rank=max_rank,
        max_memory=max_memory,
        rerank=rerank,
    )
    report = EvaluationReport(
        protocol=protocol.describe(),
        ranking=result,
        settings={
            "dataset": protocol.dataset,
            "setup": protocol.setup,
            "trained_on": protocol.trained_on,
            "metric": metric,
            "mode": mode,
            "seq_len": int(seq_len),
            "image_size": list(image_size),
            "feature_dim": int(np.asarray(features).shape[1]),
            "flip": bool(flip),
            "rerank": rerank,
        },
        notes=notes,
    )
    schema = getattr(dataset, "attribute_schema", None)
    if protocol.cross_dataset and re_logits is not None:
        re_logits = None
        notes.append("ID-relevant attributes not scored: the model's head uses another schema.")
    if re_logits is None and ir_logits is None:
        notes.append("attribute accuracy not computed: the model returns no attribute logits.")
    elif schema is None:
        notes.append("attribute accuracy not computed: the dataset has no attribute schema.")
    elif not any(t.attributes is not None for t in protocol.tracklets):
        notes.append("attribute accuracy not computed: no test tracklet is annotated.")
    else:
        report.attributes = attribute_accuracy(schema, re_logits, ir_logits, protocol.tracklets)
    if feature_parts:
        report.feature_parts = score_feature_parts(
            protocol,
            features,
            pids,
            camids,
            feature_parts,
            metric=metric,
            max_rank=max_rank,
            max_memory=max_memory,
        )
    if breakdown:
        report.query_breakdown = breakdown_by_query(result, protocol.query_tracklets, schema)
    if camera_pairs:
        report.camera_pairs = camera_pair_breakdown(
            *protocol.split(features, pids, camids), metric=metric, max_memory=max_memory
        )
    if baseline:
        if pixel_sums is not None:
            _remember_baseline(
                baseline_key,
                protocol.evaluate(
                    pixel_sums.features(),
                    metric=metric,
                    max_rank=max_rank,
                    max_memory=max_memory,
                    rerank=rerank,
                ),
            )
        report.baseline = _BASELINE_CACHE[baseline_key]
        report.settings["baseline_image_size"] = list(baseline_image_size)
    return report


def _mtime(path):
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return None


def _baseline_key(protocol, settings):
    """What a raw-pixels baseline depends on: the protocol's tracklets and the settings."""
    return (
        protocol.name,
        tuple(protocol.query_index.tolist()),
        tuple(protocol.gallery_index.tolist()),
        tuple(
            (t.frames[0], t.frames[-1], t.num_frames, t.pid, t.camid) for t in protocol.tracklets
        ),
        json.dumps(settings, sort_keys=True),  # the re-ranking settings are a dict
        # A dataset rebuilt at the same paths gets new files (and modification times).
        tuple(_mtime(t.frames[0]) for t in (protocol.tracklets[0], protocol.tracklets[-1])),
    )


def _remember_baseline(key, result):
    if len(_BASELINE_CACHE) >= _BASELINE_CACHE_SIZE:
        _BASELINE_CACHE.pop(next(iter(_BASELINE_CACHE)))
    _BASELINE_CACHE[key] = result
