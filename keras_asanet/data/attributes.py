"""Tracklet attribute schemas (Chen et al., PRCV 2019) and the annotation CSV reader.

ASA-Net predicts every class of a multi-class attribute as its own sigmoid slot and every binary
attribute as one slot (paper §III-A). `AttributeSchema` knows the attributes of a dataset, their
kinds and groups (ID-relevant vs ID-irrelevant = motion and pose), and turns an annotation row
into the two target vectors the attribute heads are trained on, with a mask for tracklets that
have no row.
"""

from __future__ import annotations

import csv
import dataclasses
import os
from collections.abc import Mapping, Sequence
from importlib import resources

import numpy as np

ID_RELEVANT = "id_relevant"
ID_IRRELEVANT = "id_irrelevant"
KEY_COLUMNS = ("person_id", "camera_id", "tracklets_id")

#: The seven 0/1 quality flags, by clean name, with the CSV spellings each may have.
QUALITY_FLAGS = {
    "occlusion": ("occlusion",),
    "cut_out": ("cut-out",),
    "multi_person": ("multi-person", "muti-person"),  # Duke's file spells it `muti-person`.
    "background_dominant": ("background-dominant",),
    "target_change": ("target-change",),
    "target_miss": ("target-miss",),
    "wrong_target": ("wrong-target",),
}


@dataclasses.dataclass(frozen=True)
class Attribute:
    """One annotated attribute.

    Args:
        name: clean snake_case name (`top_color`).
        column: the column header in the annotation CSV (`top color`).
        class_names: one name per class; two classes make a binary attribute.
        group: `"id_relevant"` or `"id_irrelevant"`.
    """

    name: str
    column: str
    class_names: tuple[str, ...]
    group: str

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def is_binary(self) -> bool:
        return self.num_classes == 2

    @property
    def num_slots(self) -> int:
        """Sigmoid outputs the head spends on it: 1 if binary, else one per class."""
        return 1 if self.is_binary else self.num_classes


def _binary(name, column=None, group=ID_RELEVANT):
    return Attribute(name, column or name.replace("_", " "), ("no", "yes"), group)


_MOTION = Attribute(
    "motion", "motion", ("walking", "running", "riding", "staying", "various"), ID_IRRELEVANT
)
_POSE = Attribute(
    "pose",
    "pose",
    ("frontal", "lateral_frontal", "lateral", "lateral_back", "back", "various"),
    ID_IRRELEVANT,
)


class AttributeSchema:
    """The attributes of one dataset and how they are encoded for the heads.

    Args:
        name: schema name (`"mars"`, `"duke"` or a user's own).
        attributes: the `Attribute`s, ID-relevant and ID-irrelevant, in head-slot order
            within each group.

    Example:

    >>> schema = AttributeSchema.for_dataset("mars")
    >>> schema.id_relevant_dim, schema.id_irrelevant_dim
    (32, 11)
    """

    def __init__(self, name: str, attributes: Sequence[Attribute]):
        names = [a.name for a in attributes]
        if len(set(names)) != len(names):
            raise ValueError(f"Attribute names must be unique, got {names}.")
        for a in attributes:
            if a.group not in (ID_RELEVANT, ID_IRRELEVANT):
                raise ValueError(
                    f"Attribute {a.name!r} has group {a.group!r}; expected "
                    f"{ID_RELEVANT!r} or {ID_IRRELEVANT!r}."
                )
            if a.num_classes < 2:
                raise ValueError(f"Attribute {a.name!r} needs at least 2 classes.")
        self.name = name
        self.attributes = tuple(attributes)
        self._by_name = {a.name: a for a in self.attributes}
        self._slices = {}
        for group in (ID_RELEVANT, ID_IRRELEVANT):
            start = 0
            for a in self.group(group):
                self._slices[a.name] = slice(start, start + a.num_slots)
                start += a.num_slots

    # ------------------------------------------------------------------ lookup

    @classmethod
    def for_dataset(cls, name: str) -> AttributeSchema:
        """The built-in schema of `"mars"` or `"duke"` (Chen et al.'s annotations)."""
        key = name.lower()
        if key not in _SCHEMAS:
            raise ValueError(
                f"Unknown attribute schema {name!r}; expected one of {sorted(_SCHEMAS)}."
            )
        return _SCHEMAS[key]

    def __getitem__(self, name: str) -> Attribute:
        if name not in self._by_name:
            raise KeyError(
                f"Unknown attribute {name!r} for schema {self.name!r}; known attributes: "
                f"{sorted(self._by_name)}."
            )
        return self._by_name[name]

    def __contains__(self, name: str) -> bool:
        return name in self._by_name

    def group(self, group: str) -> tuple[Attribute, ...]:
        """The attributes of `"id_relevant"` or `"id_irrelevant"`, in slot order."""
        if group not in (ID_RELEVANT, ID_IRRELEVANT):
            raise ValueError(f"group must be {ID_RELEVANT!r} or {ID_IRRELEVANT!r}, got {group!r}.")
        return tuple(a for a in self.attributes if a.group == group)

    @property
    def id_relevant(self) -> tuple[Attribute, ...]:
        return self.group(ID_RELEVANT)

    @property
    def id_irrelevant(self) -> tuple[Attribute, ...]:
        return self.group(ID_IRRELEVANT)

    @property
    def id_relevant_dim(self) -> int:
        """Width of the ID-relevant head (MARS 32, Duke 25)."""
        return sum(a.num_slots for a in self.id_relevant)

    @property
    def id_irrelevant_dim(self) -> int:
        """Width of the ID-irrelevant head (motion 5 + pose 6 = 11)."""
        return sum(a.num_slots for a in self.id_irrelevant)

    def slot_slice(self, name: str) -> slice:
        """The slots of attribute `name` inside its group's target vector."""
        self[name]
        return self._slices[name]

    # ---------------------------------------------------------------- encoding

    def validate_row(self, row: Mapping[str, int], where: str = "row") -> None:
        """Raises `ValueError` if `row` lacks an attribute or holds an out-of-range class."""
        for a in self.attributes:
            if a.name not in row:
                raise ValueError(f"{where}: attribute {a.name!r} is missing.")
            value = row[a.name]
            if not (0 <= int(value) < a.num_classes):
                raise ValueError(
                    f"{where}: attribute {a.name!r} has class {value}; "
                    f"expected 0..{a.num_classes - 1}."
                )

    def encode(self, row: Mapping[str, int] | None):
        """Encodes an annotation row into head targets.

        Args:
            row: attribute values keyed by clean name, or `None` for a tracklet without an
                annotation row.

        Returns:
            `(id_relevant, id_irrelevant, mask)`: float32 vectors of `id_relevant_dim` and
            `id_irrelevant_dim` slots (one-hot over a multi-class attribute's slots, 0/1 for a
            binary one) and a float32 scalar, 1 when annotated and 0 (with all-zero targets)
            when not.
        """
        re = np.zeros((self.id_relevant_dim,), "float32")
        ir = np.zeros((self.id_irrelevant_dim,), "float32")
        if row is None:
            return re, ir, np.float32(0.0)
        self.validate_row(row)
        for a in self.attributes:
            target = re if a.group == ID_RELEVANT else ir
            sl = self._slices[a.name]
            value = int(row[a.name])
            if a.is_binary:
                target[sl.start] = float(value)
            else:
                target[sl.start + value] = 1.0
        return re, ir, np.float32(1.0)

    def positive_ratios(self, rows) -> tuple[float, ...]:
        """The fraction of annotation rows with each head slot on, ID-relevant slots then
        ID-irrelevant ones (`id_relevant_dim + id_irrelevant_dim` floats).

        Why: the positive-ratio weighted attribute BCE (`ASANet(attribute_positive_ratios=)`)
        weighs each slot by how rare its positive side is in the training data.

        Args:
            rows: annotation rows (dicts keyed by clean name, e.g. the `attributes` of the
                training tracklets); `None` entries (unannotated tracklets) are skipped.

        Returns:
            A tuple of floats in [0, 1].

        Raises:
            ValueError: no annotated row.
        """
        encoded = [self.encode(row) for row in rows if row is not None]
        if not encoded:
            raise ValueError(
                "positive_ratios needs at least one annotated row (tracklet attributes); got none."
            )
        targets = np.stack([np.concatenate([re, ir]) for re, ir, _ in encoded])
        return tuple(float(v) for v in targets.mean(axis=0))

    def decode(self, scores, group: str) -> dict[str, np.ndarray]:
        """Turns head outputs `(N, group_dim)` (logits or probabilities centred so that 0 is
        the decision boundary of a binary slot, i.e. logits) into class indices per attribute:
        arg-max over a multi-class attribute's slots, `logit > 0` for a binary one."""
        scores = np.asarray(scores)
        expected = self.id_relevant_dim if group == ID_RELEVANT else self.id_irrelevant_dim
        if scores.ndim != 2 or scores.shape[1] != expected:
            raise ValueError(
                f"decode({group!r}) expects scores of shape (N, {expected}), got {scores.shape}."
            )
        out = {}
        for a in self.group(group):
            s = scores[:, self._slices[a.name]]
            out[a.name] = (s[:, 0] > 0).astype("int64") if a.is_binary else s.argmax(axis=1)
        return out

    # -------------------------------------------------------------- CSV reader

    def read_csv(self, path: str | os.PathLike) -> dict[tuple[int, int, int], tuple[dict, dict]]:
        """Reads an annotation CSV in Chen et al.'s columns.

        Args:
            path: the CSV file.

        Returns:
            A dict keyed by `(person_id, camera_id, tracklet_id)` as written in the file
            (1-based camera), each value `(attributes, quality)`: the attribute values keyed
            by clean name, and the seven quality flags keyed by clean name.
        """
        path = os.fspath(path)
        if not os.path.isfile(path):
            raise FileNotFoundError(
                f"Attribute file {path!r} does not exist; expected a CSV with columns "
                f"{', '.join(KEY_COLUMNS)}, motion, pose, the quality flags and the "
                f"{self.name} attributes."
            )
        with open(path, newline="") as f:
            reader = csv.reader(f)
            try:
                header = [h.strip() for h in next(reader)]
            except StopIteration:
                raise ValueError(f"Attribute file {path!r} is empty.") from None
            columns = self._resolve_columns(header, path)
            table = {}
            for line_no, line in enumerate(reader, start=2):
                if not line or all(not c.strip() for c in line):
                    continue
                if len(line) != len(header):
                    raise ValueError(
                        f"{path}:{line_no}: {len(line)} fields, expected {len(header)}."
                    )
                try:
                    values = [int(c) for c in line]
                except ValueError:
                    raise ValueError(f"{path}:{line_no}: non-integer field in {line!r}.") from None
                key = tuple(values[columns[k]] for k in KEY_COLUMNS)
                attrs = {a.name: values[columns[a.name]] for a in self.attributes}
                self.validate_row(attrs, where=f"{path}:{line_no}")
                quality = {q: values[columns[q]] for q in QUALITY_FLAGS if q in columns}
                if key in table:
                    raise ValueError(f"{path}:{line_no}: duplicate row for key {key}.")
                table[key] = (attrs, quality)
        return table

    def _resolve_columns(self, header, path):
        index = {h: i for i, h in enumerate(header)}
        columns = {}
        missing = []
        for k in KEY_COLUMNS:
            if k in index:
                columns[k] = index[k]
            else:
                missing.append(k)
        for a in self.attributes:
            if a.column in index:
                columns[a.name] = index[a.column]
            else:
                missing.append(a.column)
        for q, spellings in QUALITY_FLAGS.items():
            for s in spellings:
                if s in index:
                    columns[q] = index[s]
                    break
        if missing:
            raise ValueError(
                f"Attribute file {path!r} lacks column(s) {missing} required by the "
                f"{self.name!r} schema; its header is {header}."
            )
        return columns


def builtin_attribute_csv(dataset: str) -> str:
    """Path of the packaged attribute annotation CSV of a dataset.

    The tracklet attributes of Chen et al. (PRCV 2019) ship with the package, so the readers
    annotate MARS and DukeMTMC-VideoReID without a download.

    Args:
        dataset: `"mars"` or `"duke"` (any case).

    Returns:
        The CSV's path (a str).

    Raises:
        ValueError: another dataset name.

    Example:

    >>> import os
    >>> os.path.basename(builtin_attribute_csv("mars"))
    'mars_attributes.csv'
    """
    key = dataset.lower()
    if key not in _SCHEMAS:
        raise ValueError(f"No built-in attribute file for {dataset!r}; expected 'mars' or 'duke'.")
    return str(resources.files("keras_asanet.data") / "resources" / f"{key}_attributes.csv")


_COLOURS_MARS_TOP = (
    "black",
    "purple",
    "green",
    "blue",
    "gray",
    "white",
    "yellow",
    "red",
    "complex",
)
_COLOURS_MARS_BOTTOM = (
    "white",
    "purple",
    "black",
    "green",
    "dark_gray",
    "pink",
    "yellow",
    "blue",
    "brown",
    "complex",
)

MARS_SCHEMA = AttributeSchema(
    "mars",
    [
        Attribute("top_color", "top color", _COLOURS_MARS_TOP, ID_RELEVANT),
        Attribute("bottom_color", "bottom color", _COLOURS_MARS_BOTTOM, ID_RELEVANT),
        Attribute("age", "age", ("young", "teenager", "adult", "old"), ID_RELEVANT),
        _binary("top_length"),
        _binary("bottom_length"),
        _binary("shoulder_bag"),
        _binary("backpack"),
        _binary("hat"),
        _binary("hand_bag"),
        _binary("hair"),
        _binary("gender"),
        _binary("bottom_type"),
        _MOTION,
        _POSE,
    ],
)

# The Duke annotation README does not name the colour classes; they keep their indices.
DUKE_SCHEMA = AttributeSchema(
    "duke",
    [
        _binary("backpack"),
        _binary("bag"),
        _binary("handbag"),
        _binary("boots"),
        _binary("gender"),
        _binary("hat"),
        _binary("shoes"),
        _binary("top"),
        Attribute(
            "bottom_color", "bottom color", tuple(f"color_{i}" for i in range(8)), ID_RELEVANT
        ),
        Attribute("top_color", "top color", tuple(f"color_{i}" for i in range(9)), ID_RELEVANT),
        _MOTION,
        _POSE,
    ],
)

_SCHEMAS = {"mars": MARS_SCHEMA, "duke": DUKE_SCHEMA}
