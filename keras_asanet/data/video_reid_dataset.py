"""The base class of the video re-ID dataset readers: splits, counts and the attribute join."""

from __future__ import annotations

import os

from keras_asanet.data.attributes import AttributeSchema, builtin_attribute_csv
from keras_asanet.data.tracklet import Tracklet, split_summary


class VideoReIDDataset:
    """Train / query / gallery lists of `Tracklet`s plus counts and an attribute schema.

    Subclasses parse their layout in `_load()` and return the three splits with the original
    ids; this class relabels the training ids to `0..N-1` (sorted by original id, so the
    mapping is stable across runs and machines) and joins the attribute annotations.

    Args:
        root: dataset root folder.
        attributes: where the attribute annotations come from: `"auto"` (a
            `<name>_attributes.csv` at the dataset root if there is one, else the packaged
            file of Chen et al.), a path to a CSV in Chen et al.'s columns, or `None` for no
            attributes.
        verbose: print the summary table after loading.
    """

    name = "video_reid"
    schema_name = None
    #: An attribute CSV of this name at the root is used by `attributes="auto"`.
    root_attribute_file = None

    def __init__(self, root, attributes="auto", verbose=False):
        self.root = os.path.abspath(os.path.expanduser(os.fspath(root)))
        if not os.path.isdir(self.root):
            raise FileNotFoundError(
                f"{type(self).__name__}: dataset root {self.root!r} does not exist or is not a "
                f"folder; expected {self.layout_description()}"
            )
        self.attribute_schema = AttributeSchema.for_dataset(self.schema_name)
        self.attribute_file = self._resolve_attribute_file(attributes)
        table = (
            None
            if self.attribute_file is None
            else self.attribute_schema.read_csv(self.attribute_file)
        )
        train, query, gallery = self._load()
        for split, tracklets in (("train", train), ("query", query), ("gallery", gallery)):
            if not tracklets:
                raise ValueError(
                    f"{type(self).__name__} at {self.root!r}: the {split} split is empty."
                )
        train = self._relabel(train)
        if table is not None:
            train, query, gallery = (self._join(t, table) for t in (train, query, gallery))
        self.train, self.query, self.gallery = train, query, gallery
        if verbose:
            print(self.summary())

    # ------------------------------------------------------------ subclasses

    @classmethod
    def layout_description(cls) -> str:
        raise NotImplementedError

    def _load(self):
        """Returns `(train, query, gallery)` lists of `Tracklet` with original pids."""
        raise NotImplementedError

    # --------------------------------------------------------------- helpers

    def require_dir(self, *parts) -> str:
        path = os.path.join(self.root, *parts)
        if not os.path.isdir(path):
            raise FileNotFoundError(
                f"{type(self).__name__}: expected folder {path!r} is missing; expected "
                f"{self.layout_description()}"
            )
        return path

    def require_file(self, *parts) -> str:
        path = os.path.join(self.root, *parts)
        if not os.path.isfile(path):
            raise FileNotFoundError(
                f"{type(self).__name__}: expected file {path!r} is missing; expected "
                f"{self.layout_description()}"
            )
        return path

    def _resolve_attribute_file(self, attributes):
        if attributes is None or attributes is False:
            return None
        if attributes == "auto":
            local = os.path.join(self.root, self.root_attribute_file)
            return local if os.path.isfile(local) else builtin_attribute_csv(self.schema_name)
        path = os.fspath(attributes)
        if not os.path.isfile(path):
            raise FileNotFoundError(
                f"Attribute file {path!r} does not exist; pass a CSV in Chen et al.'s columns, "
                f"'auto' or None."
            )
        return path

    @staticmethod
    def _relabel(train):
        pids = sorted({t.original_pid for t in train})
        label = {pid: i for i, pid in enumerate(pids)}
        return [_replace(t, pid=label[t.original_pid]) for t in train]

    @staticmethod
    def _join(tracklets, table):
        out = []
        for t in tracklets:
            row = table.get((t.original_pid, t.camid + 1, t.tracklet_id))
            if row is None:
                out.append(t)
            else:
                out.append(_replace(t, attributes=row[0], quality=row[1]))
        return out

    # ---------------------------------------------------------------- counts

    @property
    def num_train_pids(self) -> int:
        return len({t.pid for t in self.train})

    @property
    def num_train_tracklets(self) -> int:
        return len(self.train)

    @property
    def num_train_cams(self) -> int:
        return len({t.camid for t in self.train})

    @property
    def num_query_pids(self) -> int:
        return len({t.pid for t in self.query})

    @property
    def num_gallery_pids(self) -> int:
        return len({t.pid for t in self.gallery})

    @property
    def num_cameras(self) -> int:
        return len({t.camid for t in self.train + self.query + self.gallery})

    def attribute_coverage(self, split: str) -> float:
        """Fraction of a split's tracklets that have an annotation row."""
        tracklets = getattr(self, split)
        return sum(t.attributes is not None for t in tracklets) / max(len(tracklets), 1)

    def summary(self) -> str:
        table = split_summary(
            type(self).__name__,
            {"train": self.train, "query": self.query, "gallery": self.gallery},
        )
        source = self.attribute_file or "none"
        cover = ", ".join(
            f"{s} {100 * self.attribute_coverage(s):.0f}%" for s in ("train", "query", "gallery")
        )
        return f"{table}\n  attributes: {source} (annotated: {cover})"

    def __repr__(self):
        return (
            f"{type(self).__name__}(root={self.root!r}, train={len(self.train)}, "
            f"query={len(self.query)}, gallery={len(self.gallery)})"
        )


def _replace(tracklet: Tracklet, **changes) -> Tracklet:
    import dataclasses

    return dataclasses.replace(tracklet, **changes)
