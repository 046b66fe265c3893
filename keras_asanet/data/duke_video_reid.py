"""Reader of DukeMTMC-VideoReID in its published layout."""

from __future__ import annotations

import os
import re

from keras_asanet.data.tracklet import Tracklet
from keras_asanet.data.video_reid_dataset import VideoReIDDataset

_DUKE_FRAME = re.compile(
    r"^(?P<pid>\d+)_C(?P<cam>\d+)_F(?P<frame>\d+)_X(?P<x>\d+)\.(jpg|jpeg|png)$", re.I
)


class DukeVideoReID(VideoReIDDataset):
    """DukeMTMC-VideoReID (Wu et al., CVPR 2018), read from the layout it is published in.

    ```
    root/
      train/<pid>/<tracklet>/<pid>_C<cam>_F<frame>_X<n>.jpg
                          e.g. 0001/0001/0001_C6_F0099_X30823.jpg
      query/<pid>/<tracklet>/...
      gallery/<pid>/<tracklet>/...
    ```

    Frames are ordered by their `F` number; the camera comes from the `C` field. Training ids
    are relabelled `0..N-1`; query and gallery keep the dataset's ids (the 408 gallery-only
    distractor identities stay in the gallery). Camera ids are made 0-based.

    Args:
        root: the folder holding `train/`, `query/` and `gallery/`.
        attributes: `"auto"` (a `duke_attributes.csv` at `root` if present, else the packaged
            annotations of Chen et al.), a CSV path, or `None`.
        verbose: print the summary table.

    Example:

    ```python
    duke = DukeVideoReID("/data/DukeMTMC-VideoReID")
    duke.num_train_pids  # 702 on the real data
    ```
    """

    name = "duke"
    schema_name = "duke"
    root_attribute_file = "duke_attributes.csv"

    @classmethod
    def layout_description(cls) -> str:
        return (
            "the DukeMTMC-VideoReID layout: train/, query/ and gallery/, each holding "
            "<pid>/<tracklet>/<pid>_C<cam>_F<frame>_X<n>.jpg"
        )

    def _load(self):
        return tuple(self._split(split) for split in ("train", "query", "gallery"))

    def _split(self, split):
        split_dir = self.require_dir(split)
        out = []
        for pid_name in sorted(os.listdir(split_dir)):
            pid_dir = os.path.join(split_dir, pid_name)
            if not os.path.isdir(pid_dir):
                continue
            if not pid_name.isdigit():
                raise ValueError(f"{pid_dir}: identity folders must be numbers, got {pid_name!r}.")
            for track_name in sorted(os.listdir(pid_dir)):
                track_dir = os.path.join(pid_dir, track_name)
                if os.path.isdir(track_dir):
                    out.append(self._tracklet(track_dir, int(pid_name), track_name))
        return out

    def _tracklet(self, track_dir, pid, track_name):
        if not track_name.isdigit():
            raise ValueError(f"{track_dir}: tracklet folders must be numbers, got {track_name!r}.")
        frames = []
        for name in os.listdir(track_dir):
            m = _DUKE_FRAME.match(name)
            if m is None:
                if name.lower().endswith((".jpg", ".jpeg", ".png")):
                    raise ValueError(
                        f"{os.path.join(track_dir, name)}: frame name is not of the form "
                        "<pid>_C<cam>_F<frame>_X<n>.jpg"
                    )
                continue
            frames.append((int(m["frame"]), int(m["cam"]), int(m["pid"]), name))
        if not frames:
            raise ValueError(
                f"{track_dir}: empty tracklet (no frames of the form 0001_C6_F0099_X30823.jpg)."
            )
        frames.sort()
        cams = {f[1] for f in frames}
        pids = {f[2] for f in frames}
        if len(cams) != 1 or pids != {pid}:
            raise ValueError(
                f"{track_dir}: frames disagree with the folder (identity {pid}): cameras "
                f"{sorted(cams)}, identities {sorted(pids)}."
            )
        return Tracklet(
            frames=tuple(os.path.join(track_dir, f[3]) for f in frames),
            pid=pid,
            camid=cams.pop() - 1,
            tracklet_id=int(track_name),
            original_pid=pid,
        )
