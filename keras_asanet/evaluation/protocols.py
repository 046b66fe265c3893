"""Which tracklets are queries and which form the gallery: MARS usual / mixing, Duke, and
cross-dataset evaluation.

A protocol lists the tracklets whose features must be extracted (each once) and two index
arrays into that list, so that mixing the query set into the gallery costs no second
extraction. numpy-only.

MARS setups (named in every result, because published numbers use both):

* `"usual"` (torchreid, AGW `data_manager.py`): queries = the 1,980 `query_IDX` tracklets,
  gallery = the other 9,330 test tracklets; junk (pid -1) dropped when reading, distractors
  (pid 0) kept in the gallery; 1,840 queries have a cross-camera match and are scored.
* `"mixing"` (AP3D / TCLNet code, ASA-Net Table I "Mixing"): gallery = queries + gallery
  (11,310 tracklets). A query's own tracklet is removed from its gallery by the
  same-identity-same-camera rule, like every same-camera tracklet of its identity.

DukeMTMC-VideoReID: its `query/` vs `gallery/` folders (`"usual"`); `"mixing"` is also
accepted. Cross-dataset: a model trained on one dataset is scored on the other's test split
with the same protocol; only the feature is used, so its identity classifier is ignored.
"""

from __future__ import annotations

import dataclasses

import numpy as np

SETUPS = ("usual", "mixing")
DATASETS = ("mars", "duke")
_ALIASES = {
    "mars": "mars",
    "synthetic": "mars",  # the synthetic dataset is written in the MARS layout
    "duke": "duke",
    "dukev": "duke",
    "dukemtmc": "duke",
    "dukemtmc-videoreid": "duke",
    "dukemtmcvideoreid": "duke",
}


def canonical_dataset_name(name: str) -> str:
    """Maps a dataset name or alias to the protocol's canonical name.

    Args:
        name: `"mars"`, `"duke"` or an alias (`"DukeMTMC-VideoReID"`, `"dukev"`, ...), any
            case, `_` or `-`.

    Returns:
        `"mars"` or `"duke"`.

    Raises:
        ValueError: an unknown name (the message lists the known ones).

    Example:

    >>> canonical_dataset_name("DukeMTMC-VideoReID")
    'duke'
    """
    key = str(name).lower().replace("_", "-")
    if key not in _ALIASES:
        raise ValueError(
            f"Unknown dataset {name!r}; expected one of {sorted(_ALIASES)} "
            f"(canonical names: {', '.join(DATASETS)})."
        )
    return _ALIASES[key]


@dataclasses.dataclass(frozen=True)
class EvaluationProtocol:
    """The query / gallery layout of one evaluation.

    Args:
        name: label written into results, e.g. `"mars/usual"` or `"duke->mars/usual"`.
        dataset: the test dataset (`"mars"` or `"duke"`).
        setup: `"usual"` or `"mixing"`.
        trained_on: the dataset the model was trained on (differs from `dataset` for a
            cross-dataset evaluation).
        tracklets: the tracklets to extract features from, each once (queries first, then
            the gallery split).
        query_index: `(Q,)` int64 indices into `tracklets` of the queries.
        gallery_index: `(G,)` int64 indices into `tracklets` of the gallery.
    """

    name: str
    dataset: str
    setup: str
    trained_on: str
    tracklets: tuple
    query_index: np.ndarray
    gallery_index: np.ndarray

    @property
    def cross_dataset(self) -> bool:
        return self.trained_on != self.dataset

    @property
    def query_tracklets(self) -> list:
        return [self.tracklets[i] for i in self.query_index]

    @property
    def gallery_tracklets(self) -> list:
        return [self.tracklets[i] for i in self.gallery_index]

    def describe(self) -> str:
        """One line for logs and reports."""
        text = (
            f"{self.name}: {len(self.query_index)} queries vs {len(self.gallery_index)} "
            f"gallery tracklets ({len(self.tracklets)} extracted)"
        )
        if self.setup == "mixing":
            text += "; queries mixed into the gallery, own tracklet removed by the same-camera rule"
        if self.cross_dataset:
            text += f"; model trained on {self.trained_on}"
        return text

    def split(self, features, pids=None, camids=None):
        """Splits per-tracklet arrays (aligned with `tracklets`) into query and gallery parts.

        Args:
            features: `(len(tracklets), D)` array.
            pids, camids: optional `(len(tracklets),)` arrays; taken from the tracklets when
                omitted.

        Returns:
            `(query_features, gallery_features, query_pids, gallery_pids, query_camids,
            gallery_camids)`, ready for `evaluate_ranking`.
        """
        features = np.asarray(features)
        if features.ndim != 2 or features.shape[0] != len(self.tracklets):
            raise ValueError(
                f"features must have shape ({len(self.tracklets)}, D) (one row per tracklet of "
                f"protocol {self.name!r}), got {features.shape}."
            )
        pids = np.array([t.pid for t in self.tracklets]) if pids is None else np.asarray(pids)
        camids = (
            np.array([t.camid for t in self.tracklets]) if camids is None else np.asarray(camids)
        )
        for arg, arr in (("pids", pids), ("camids", camids)):
            if arr.shape != (len(self.tracklets),):
                raise ValueError(
                    f"{arg} must have shape ({len(self.tracklets)},), got {arr.shape}."
                )
        q, g = self.query_index, self.gallery_index
        return features[q], features[g], pids[q], pids[g], camids[q], camids[g]

    def evaluate(self, features, pids=None, camids=None, rerank=False, **kwargs):
        """Runs `evaluate_ranking` on features aligned with `tracklets` (kwargs: `metric`,
        `max_rank`, `max_memory`); the result is named after the protocol. With `rerank`
        (`True` for the defaults, or a dict of `k1`, `k2`, `lambda_value`), the distances are
        re-ranked first (`keras_asanet.evaluation.k_reciprocal_distance`, on the same metric)
        and the result's `metric` says so."""
        from keras_asanet.evaluation.ranking import evaluate_distance_matrix, evaluate_ranking

        kwargs.setdefault("name", self.name)
        parts = self.split(features, pids, camids)
        from keras_asanet.evaluation.reranking import k_reciprocal_distance, rerank_settings

        settings = rerank_settings(rerank)
        if settings is None:
            return evaluate_ranking(*parts, **kwargs)
        metric = kwargs.get("metric", "euclidean")
        qf, gf, q_pids, g_pids, q_camids, g_camids = parts
        result = evaluate_distance_matrix(
            k_reciprocal_distance(qf, gf, metric=metric, **settings),
            q_pids,
            g_pids,
            q_camids,
            g_camids,
            max_rank=kwargs.get("max_rank", 50),
            name=kwargs["name"],
        )
        result.metric = f"{metric}, k-reciprocal re-ranked"
        return result


def _label(name) -> str:
    """Canonical name of a known dataset, else the lower-cased name (a user's own dataset)."""
    key = str(name).lower().replace("_", "-")
    return _ALIASES.get(key, key)


def _check_split(dataset, split):
    tracklets = getattr(dataset, split, None)
    if tracklets is None:
        raise ValueError(f"dataset {getattr(dataset, 'name', dataset)!r} has no {split!r} split.")
    tracklets = list(tracklets)
    if not tracklets:
        raise ValueError(f"The {split!r} split of dataset {dataset.name!r} is empty.")
    junk = [t for t in tracklets if t.pid < 0]
    if junk:
        raise ValueError(
            f"The {split!r} split of dataset {dataset.name!r} holds {len(junk)} junk tracklet(s) "
            f"(pid {junk[0].pid}); junk must be dropped when reading, never evaluated."
        )
    return tracklets


def _build(dataset, setup, trained_on=None):
    if setup not in SETUPS:
        raise ValueError(f"setup must be one of {SETUPS}, got {setup!r}.")
    name = _label(dataset.name)
    trained = name if trained_on is None else _label(trained_on)
    query = _check_split(dataset, "query")
    gallery = _check_split(dataset, "gallery")
    nq, ng = len(query), len(gallery)
    query_index = np.arange(nq, dtype=np.int64)
    if setup == "usual":
        gallery_index = np.arange(nq, nq + ng, dtype=np.int64)
    else:
        gallery_index = np.arange(nq + ng, dtype=np.int64)
    label = f"{name}/{setup}" if trained == name else f"{trained}->{name}/{setup}"
    return EvaluationProtocol(
        name=label,
        dataset=name,
        setup=setup,
        trained_on=trained,
        tracklets=tuple(query) + tuple(gallery),
        query_index=query_index,
        gallery_index=gallery_index,
    )


def mars_protocol(dataset, setup="usual") -> EvaluationProtocol:
    """The MARS evaluation layout, `"usual"` or `"mixing"` (see the module docstring).

    Args:
        dataset: an object with `.name` (`"mars"`), `.query` and `.gallery` lists of
            `Tracklet` (junk dropped, distractors with pid 0 kept), e.g.
            `keras_asanet.data.Mars(root)`.
        setup: `"usual"` (query vs gallery, 1,840 scored queries on MARS) or `"mixing"`
            (query vs query + gallery, paper Table I).

    Returns:
        An `EvaluationProtocol`: extract features of `protocol.tracklets`, then
        `protocol.evaluate(features)`.

    Example:

    >>> protocol = mars_protocol(dataset, "mixing")            # doctest: +SKIP
    >>> feats, _, _ = extract_features(model, protocol.tracklets)  # doctest: +SKIP
    >>> print(protocol.evaluate(feats))                          # doctest: +SKIP

    Reference: Zheng et al., MARS (ECCV 2016); ASA-Net §IV-A and Table I.
    """
    if _label(dataset.name) == "duke":
        raise ValueError(f"mars_protocol needs the MARS dataset, got {dataset.name!r}.")
    return _build(dataset, setup)


def duke_protocol(dataset, setup="usual") -> EvaluationProtocol:
    """DukeMTMC-VideoReID: its query split against its gallery split (`setup="usual"`)."""
    if _label(dataset.name) == "mars":
        raise ValueError(f"duke_protocol needs DukeMTMC-VideoReID, got {dataset.name!r}.")
    return _build(dataset, setup)


def cross_dataset_protocol(test_dataset, trained_on, setup="usual") -> EvaluationProtocol:
    """A model trained on `trained_on` (`"mars"` / `"duke"`) scored on `test_dataset`'s test
    split. Only the feature is used, so the model's identity classifier (sized for the training
    dataset) plays no part. The result is named e.g. `"duke->mars/usual"`."""
    return _build(test_dataset, setup, trained_on=trained_on)


def get_protocol(dataset, setup="usual", trained_on=None) -> EvaluationProtocol:
    """The evaluation protocol of a dataset with query and gallery splits.

    Works for MARS, Duke or a user's own data in the same layout; cross-dataset when
    `trained_on` names another dataset (then only the target's test split is used).

    Args:
        dataset: a `VideoReIDDataset`.
        setup: `"usual"` (the standard query / gallery split) or `"mixing"` (the gallery
            holds the queries too, as in ASA-Net's Table I "Mixing"; see the module
            docstring).
        trained_on: the name of the dataset the model was trained on, or `None` for the
            same dataset.

    Returns:
        An `EvaluationProtocol`.

    Example:

    >>> protocol = get_protocol(mars, "usual")                          # doctest: +SKIP
    >>> result = protocol.evaluate(features, pids, camids)              # doctest: +SKIP
    """
    return _build(dataset, setup, trained_on=trained_on)
