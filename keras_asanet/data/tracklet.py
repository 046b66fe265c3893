"""The `Tracklet` record every dataset reader returns, and the split container."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence


@dataclasses.dataclass(frozen=True)
class Tracklet:
    """One video tracklet: an ordered list of frame files of one person seen by one camera.

    Readers hand out plain Python records (no framework tensors) so that samplers, pipelines
    and evaluation work the same on every backend.

    Args:
        frames: frame file paths, in temporal order.
        pid: the identity label. For the training split it is relabelled to `0..N-1` (the
            classifier's target); for query and gallery it is the dataset's own id (0 marks a
            distractor).
        camid: 0-based camera index (MARS `C1` / Duke `C1` -> 0).
        tracklet_id: the tracklet number of the dataset (MARS `T` field, Duke folder number).
        original_pid: the dataset's own person id, kept after relabelling.
        attributes: the raw annotation row (Chen et al.) keyed by the schema's attribute names
            (ID-relevant attributes plus `motion` and `pose`), or `None` when the tracklet has
            no annotation row.
        quality: the seven 0/1 quality flags of the annotation row keyed by clean name
            (`occlusion`, `cut_out`, `multi_person`, ...), or `None`.
    """

    frames: tuple[str, ...] = dataclasses.field(repr=False)
    pid: int
    camid: int
    tracklet_id: int
    original_pid: int
    attributes: Mapping[str, int] | None = None
    quality: Mapping[str, int] | None = None

    def __post_init__(self):
        if len(self.frames) == 0:
            raise ValueError(
                f"Tracklet pid={self.original_pid} cam={self.camid} "
                f"tracklet={self.tracklet_id} has no frames; every tracklet needs at least one."
            )

    def __repr__(self):
        return (
            f"Tracklet(pid={self.pid}, camid={self.camid}, tracklet_id={self.tracklet_id}, "
            f"original_pid={self.original_pid}, num_frames={self.num_frames}, "
            f"annotated={self.attributes is not None})"
        )

    @property
    def num_frames(self) -> int:
        return len(self.frames)

    @property
    def motion(self) -> int | None:
        """Motion class (Chen et al.: 5 classes), or `None` without annotation."""
        return None if self.attributes is None else self.attributes.get("motion")

    @property
    def pose(self) -> int | None:
        """Pose / viewpoint class (Chen et al.: 6 classes), or `None` without annotation."""
        return None if self.attributes is None else self.attributes.get("pose")


def split_summary(name: str, splits: Mapping[str, Sequence[Tracklet]]) -> str:
    """A torchreid-style table of identities, tracklets, cameras and frame counts per split."""
    lines = [
        f"=> {name} loaded",
        "  ----------------------------------------------------------------",
        "  subset   | # ids | # tracklets | # cameras | # frames (min/avg/max)",
        "  ----------------------------------------------------------------",
    ]
    for split, tracklets in splits.items():
        pids = {t.original_pid for t in tracklets}
        cams = {t.camid for t in tracklets}
        lengths = [t.num_frames for t in tracklets] or [0]
        lines.append(
            f"  {split:<8} | {len(pids):5d} | {len(tracklets):11d} | {len(cams):9d} | "
            f"{min(lengths)}/{sum(lengths) / max(len(lengths), 1):.1f}/{max(lengths)}"
        )
    lines.append("  ----------------------------------------------------------------")
    return "\n".join(lines)
